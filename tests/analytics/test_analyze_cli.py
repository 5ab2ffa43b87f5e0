"""`patron analyze` and `patron analyze runs` against a real database on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patron import migrate
from patron.cli import app
from patron.db import get_engine, make_engine
from patron.settings import get_settings
from tests.analytics.helpers import CDNOW, CDNOW_HOLDOUT_DAYS

runner = CliRunner()


@pytest.fixture
def db_url(database_factory, monkeypatch) -> str:
    """A fresh migrated database of the backend under test, as PATRON_DATABASE_URL."""
    url = database_factory.new_url()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # Rich output unwrapped
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(output: str) -> str:
    return " ".join(output.split())


def runs_in(url: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT id, status, model FROM analysis_runs ORDER BY id"))]
    finally:
        engine.dispose()


@pytest.fixture
def cdnow_url(db_url) -> str:
    result = invoke("import", "orders", CDNOW, "--preset", "cdnow")
    assert result.exit_code == 0, result.output
    return db_url


def test_analyze_the_cdnow_sample_and_write_the_json_report(cdnow_url, tmp_path):
    report = tmp_path / "report.json"
    result = invoke(
        "analyze", "--as-of", "1998-06-30", "--model", "bgnbd", "--holdout-days", CDNOW_HOLDOUT_DAYS,
        "--horizon-days", "180", "--discount-rate", "0.08", "--margin", "0.3", "--json", report,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "Customers 2,357 (2,357 with purchases)" in out
    assert "BG/NBD (requested: bgnbd)" in out and "log-likelihood" in out
    assert "Holdout 273 days after 1997-09-30: BG/NBD RMSE" in out
    assert "sum of CLV over 180 days, 8% a year, margin 30%" in out
    [(run_id, status, model)] = runs_in(cdnow_url)
    assert (status, model) == ("completed", "bgnbd")
    data = json.loads(report.read_text())
    assert data["run_id"] == run_id and data["model"] == "bgnbd" and data["requested_model"] == "bgnbd"
    assert data["settings"] == {
        "time_unit": "days", "horizon_days": 180, "discount_rate": 0.08, "margin": 0.3, "holdout_days": 273,
    }  # fmt: skip
    fit = data["fits"]["bgnbd"]
    assert set(fit["params"]) == set(fit["standard_errors"]) == {"r", "alpha", "a", "b"}
    assert fit["log_likelihood"] < 0
    assert set(data["fits"]["gamma_gamma"]["params"]) == {"p", "q", "gamma"}
    calibration = data["validation"]["models"]["bgnbd"]["params"]
    assert calibration["r"] == pytest.approx(0.243, rel=2.5e-3)  # the published 39-week fit
    assert data["validation"]["calibration_end"] == "1997-09-30"
    assert data["timings"]["total"] > 0 and "fit" in data["timings"]
    assert f"{data['fits']['clv']['equity']:,.2f}" in out


def test_analyze_runs_lists_the_runs(cdnow_url):
    assert invoke("analyze", "--as-of", "1998-06-30", "--model", "bgnbd", "--holdout-days", "0").exit_code == 0
    assert invoke("analyze", "--as-of", "1998-03-31", "--margin", "costs").exit_code == 0
    result = invoke("analyze", "runs")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    (first, _, _), (second, _, _) = runs_in(cdnow_url)
    assert out.index(f"│ {second} │ 1998-03-31") < out.index(f"│ {first} │ 1998-06-30 │ completed │ BG/NBD")


def test_no_customers_is_a_clear_message_not_an_error(db_url):
    result = invoke("analyze")
    assert result.exit_code == 0, result.output
    assert "There are no customers: nothing to analyse." in flat(result.output)
    assert runs_in(db_url)[0][1] == "completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2026-13-01"], "--as-of must be a date as YYYY-MM-DD, not '2026-13-01'"),
        (["--as-of", (date.today() + timedelta(days=3)).isoformat()], "is in the future"),
        (["--model", "lifetimes"], "model must be one of auto, bgnbd, pareto, not 'lifetimes'"),
        (["--horizon-days", "a year"], "--horizon-days must be a whole number of days, not 'a year'"),
        (["--horizon-days", "0"], "horizon_days must be a whole number of days from 1 to 3650"),
        (["--discount-rate", "10%"], "--discount-rate must be a number such as 0.10, not '10%'"),
        (["--discount-rate", "2"], "discount_rate is an annual rate from 0 to 1"),
        (["--margin", "0"], "margin is the share of revenue kept as profit"),
        (["--margin", "most"], "--margin must be a number or 'costs', not 'most'"),
        (["--holdout-days", "-7"], "holdout_days must be a whole number of days >= 0"),
        (["--json", "/nonexistent-folder/report.json"], "--json: the folder /nonexistent-folder does not exist"),
    ],
)
def test_bad_options_exit_1_with_a_message_and_store_nothing(db_url, args, message):
    result = invoke("analyze", *args)
    assert result.exit_code == 1, result.output
    assert message in flat(result.output)
    assert runs_in(db_url) == []
