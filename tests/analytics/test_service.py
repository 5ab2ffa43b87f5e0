"""analyze() end to end on SQLite and PostgreSQL: the CDNOW sample through the real importer, and
every kind of bad input (no customers, no purchases, one customer, no repeat buyers, same-day
orders, zero and negative totals, orders after as_of, models that do not converge)."""

from __future__ import annotations

import math
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select, update

from patron.analytics import repository, service
from patron.analytics.models import BGNBD, GammaGamma, ParetoNBD
from patron.analytics.reader import read_inputs
from patron.db import session_scope
from patron.errors import InvalidInput, NotFound
from patron.models import AnalysisRun, CustomerInsight, CustomerScore, Product
from patron.models.enums import AnalysisStatus
from tests.analytics.helpers import (
    CDNOW,
    CDNOW_AS_OF,
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_DAYS,
    add_order,
    add_raw_order,
    at,
    build,
    cdnow_purchase_days,
    count_scores,
    import_cdnow,
    load_run,
    refund,
    scores_of,
)
from tests.factories import create_customer

MODELS = {"bgnbd": BGNBD, "pareto": ParetoNBD}


def analyze(engine, **options):
    with session_scope(engine) as session:
        return service.analyze(session, **options)


def summaries(engine, *, as_of: date, calibration_end: date | None = None) -> pl.DataFrame:
    """The buyers' summaries as analyze() reads them (customer_summaries in days).

    Through the reader, not duckdb_connection() here: on SQLite, DuckDB's own SQLite in this
    process would break the locks (and the mapped -shm file) of the engine's connections.
    """
    holdout = (as_of - calibration_end).days if calibration_end else 0
    with read_inputs(engine, as_of=as_of, holdout_days=holdout, cost_margin=False, insights=False) as inputs:
        if calibration_end:
            return inputs.calibration
        return inputs.summaries.filter(pl.col("first_purchase").is_not_null())


def rfm_columns(frame: pl.DataFrame):
    return (frame[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))


# --------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow_engine(database_factory):
    engine = database_factory.new_engine()
    import_cdnow(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def cdnow_run(cdnow_engine):
    """One auto run with the published 39-week calibration period."""
    run = analyze(cdnow_engine, as_of=CDNOW_AS_OF, holdout_days=CDNOW_HOLDOUT_DAYS, actor="test")
    return load_run(cdnow_engine, run.id)


def test_cdnow_run_completes_with_a_model_chosen_by_holdout_rmse(cdnow_run):
    run = cdnow_run
    assert run.status == AnalysisStatus.completed
    assert run.customers == run.buyers == 2357
    assert run.validation["calibration_end"] == CDNOW_CALIBRATION_END.isoformat() == "1997-09-30"
    rmse = {name: m["metrics"]["rmse"] for name, m in run.validation["models"].items()}
    assert set(rmse) == {"bgnbd", "pareto"}
    assert run.model == run.validation["chosen"] == min(rmse, key=rmse.get)
    assert run.finished_at is not None and run.timings["total"] > 0
    assert set(run.timings) >= {"read", "summaries", "insights_query", "rfm", "validation", "fit", "score", "write"}
    assert run.tracking_png.startswith(b"\x89PNG\r\n\x1a\n")


def test_calibration_fits_equal_models_fitted_directly_on_the_same_summaries(cdnow_engine, cdnow_run):
    calibration = summaries(cdnow_engine, as_of=CDNOW_AS_OF, calibration_end=CDNOW_CALIBRATION_END)
    x, t_x, age = rfm_columns(calibration)
    for name, model_class in MODELS.items():
        direct = model_class().fit(x, t_x, age)
        stored = cdnow_run.validation["models"][name]
        assert stored["params"] == pytest.approx(direct.params_, rel=1e-12)
        assert stored["standard_errors"] == pytest.approx(direct.standard_errors_, rel=1e-9)
        assert stored["log_likelihood"] == pytest.approx(direct.log_likelihood_, rel=1e-12)


def test_calibration_fits_reproduce_the_published_cdnow_figures(cdnow_engine, cdnow_run):
    """Fader, Hardie & Lee (2005), in weeks: the pipeline fits in days, so alpha and beta are 7 times larger."""
    bgnbd = cdnow_run.validation["models"]["bgnbd"]["params"]
    assert bgnbd["r"] == pytest.approx(0.243, rel=2.5e-3)
    assert bgnbd["alpha"] / 7 == pytest.approx(4.414, rel=2.5e-3)
    assert bgnbd["a"] == pytest.approx(0.793, rel=2.5e-3)
    assert bgnbd["b"] == pytest.approx(2.426, rel=2.5e-3)
    pareto = cdnow_run.validation["models"]["pareto"]["params"]
    assert pareto["r"] == pytest.approx(0.553, rel=2.5e-3)
    assert pareto["alpha"] / 7 == pytest.approx(10.578, rel=2.5e-3)
    assert pareto["s"] == pytest.approx(0.606, rel=2.5e-3)
    assert pareto["beta"] / 7 == pytest.approx(11.669, rel=2.5e-3)
    # Changing the unit from weeks to days adds -x log 7 per customer to the log-likelihood.
    x = summaries(cdnow_engine, as_of=CDNOW_AS_OF, calibration_end=CDNOW_CALIBRATION_END)["frequency"].sum()
    weekly = cdnow_run.validation["models"]["bgnbd"]["log_likelihood"] + x * math.log(7)
    assert weekly == pytest.approx(-9582.4, abs=0.1)


def test_full_period_fits_equal_direct_fits(cdnow_engine, cdnow_run):
    full = summaries(cdnow_engine, as_of=CDNOW_AS_OF)
    x, t_x, age = rfm_columns(full)
    direct = MODELS[cdnow_run.model]().fit(x, t_x, age)
    assert cdnow_run.fits[cdnow_run.model]["params"] == pytest.approx(direct.params_, rel=1e-12)
    m = full["monetary_value"].to_numpy()
    usable = (x > 0) & (m > 0)
    spend = GammaGamma().fit(x[usable], m[usable])
    assert cdnow_run.fits["gamma_gamma"]["params"] == pytest.approx(spend.params_, rel=1e-12)
    assert cdnow_run.fits["gamma_gamma"]["customers"] == int(usable.sum())


def test_holdout_totals_equal_the_actual_holdout_purchases(cdnow_run):
    # Counted from the file itself: purchase days after the calibration end, per customer.
    days = cdnow_purchase_days()
    holdout = sum(1 for d in days.values() for day in d if CDNOW_CALIBRATION_END < day <= CDNOW_AS_OF)
    assert holdout > 1000
    report = cdnow_run.validation
    assert report["actual_total"] == holdout
    assert sum(row["actual_total"] for row in report["by_frequency"]) == holdout
    for result in report["models"].values():
        assert result["metrics"]["total_actual"] == holdout
        predicted = sum(row["predicted_total"][cdnow_run.model] for row in report["by_frequency"])
        assert predicted == pytest.approx(report["models"][cdnow_run.model]["metrics"]["total_predicted"])
    # Every CDNOW customer was acquired in the first quarter of 1997, so the tracking series'
    # holdout counts the same purchases.
    assert report["tracking"]["holdout_actual"] == holdout


def test_by_frequency_groups_count_calibration_repeat_purchases(cdnow_run):
    days = cdnow_purchase_days()
    repeats = [sum(1 for day in d if day <= CDNOW_CALIBRATION_END) - 1 for d in days.values()]
    expected = [sum(1 for r in repeats if r == k) for k in range(7)] + [sum(1 for r in repeats if r >= 7)]
    rows = cdnow_run.validation["by_frequency"]
    assert [row["frequency"] for row in rows] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert [row["customers"] for row in rows] == expected


def test_tracking_series_cover_every_week_from_the_first_purchase(cdnow_run):
    track = cdnow_run.validation["tracking"]
    weeks = math.ceil(((CDNOW_AS_OF - date(1997, 1, 1)).days + 1) / 7)
    assert track["week_start"][0] == "1997-01-01" and len(track["week_start"]) == weeks
    days = cdnow_purchase_days()
    all_repeats = sum(len(d) - 1 for d in days.values())
    assert sum(track["actual"]) == all_repeats
    for series in track["expected"].values():
        assert len(series) == weeks and all(v >= 0 for v in series)
        # The model tracks the cumulative repeat purchases within 15% over 78 weeks.
        assert sum(series) == pytest.approx(all_repeats, rel=0.15)


def test_every_customer_has_scores_matching_the_fitted_models(cdnow_engine, cdnow_run):
    scores = scores_of(cdnow_engine, cdnow_run.id)
    assert len(scores) == 2357
    full = summaries(cdnow_engine, as_of=CDNOW_AS_OF)
    x, t_x, age = rfm_columns(full)
    model = MODELS[cdnow_run.model]().fit(x, t_x, age)
    ids = full["customer_id"].to_list()
    for i in (0, 1, 500, 2356):
        row = scores[ids[i]]
        assert row.frequency == x[i] and row.recency_days == t_x[i] and row.age_days == age[i]
        for h in (30, 90, 365):
            assert getattr(row, f"expected_{h}") == pytest.approx(model.expected_purchases(h, x[i], t_x[i], age[i]))
        assert row.p_alive == pytest.approx(model.probability_alive(x[i], t_x[i], age[i]))
        assert row.r_score in range(1, 6) and row.rfm_segment is not None and row.churn_band is not None
    equity = sum(float(s.clv) for s in scores.values())
    assert equity == pytest.approx(cdnow_run.fits["clv"]["equity"], abs=0.01 * len(scores))


def test_insights_are_stored_for_customers_who_bought_in_the_last_year(cdnow_engine, cdnow_run):
    days = cdnow_purchase_days()
    window = CDNOW_AS_OF - timedelta(days=365)
    expected = sum(1 for d in days.values() if any(window < day <= CDNOW_AS_OF for day in d))
    with session_scope(cdnow_engine) as session:
        rows = session.scalars(select(CustomerInsight)).all()
        assert len(rows) == expected
        assert {r.as_of for r in rows} == {CDNOW_AS_OF}
        assert {r.preferred_channel for r in rows} == {"online"}


def test_bgnbd_one_time_buyers_get_a_churn_band_from_their_activity(cdnow_engine):
    run = analyze(cdnow_engine, as_of=CDNOW_AS_OF, model="bgnbd", holdout_days=0)
    assert run.model == "bgnbd"
    assert run.validation == {"skipped": "holdout validation skipped (holdout of 0 days requested)"}
    scores = scores_of(cdnow_engine, run.id)
    once = [s for s in scores.values() if s.frequency == 0]
    assert once and all(s.p_alive == 1.0 for s in once)
    # Silent for over a year after a single purchase: lost, whatever BG/NBD's P(alive) says.
    assert {s.churn_band for s in once} >= {"lost"}
    params = run.fits["bgnbd"]["params"]
    model = BGNBD()
    model.params_ = params
    new_365 = model.expected_purchases_new(365.0)
    for s in once[:50]:
        assert s.churn_band == service.churn_band(np.array([s.expected_365 / new_365]))[0]


def test_customer_scores_history_and_later_insights_survive_an_older_run(cdnow_engine, cdnow_run):
    older = analyze(cdnow_engine, as_of=date(1998, 1, 31), model="bgnbd", holdout_days=0)
    assert "insights were kept: they are as of 1998-06-30" in older.message
    customer_id = next(iter(scores_of(cdnow_engine, cdnow_run.id)))
    with session_scope(cdnow_engine) as session:
        live_id, history = service.customer_scores(session, customer_id)
        assert live_id == customer_id
        as_ofs = [score.as_of for score, _ in history]
        assert as_ofs == sorted(as_ofs) and {older.as_of, CDNOW_AS_OF} <= set(as_ofs)
        # The older run did not touch the insights computed as of a later day.
        assert {row.as_of for row in session.scalars(select(CustomerInsight))} == {CDNOW_AS_OF}
        with pytest.raises(NotFound):
            service.customer_scores(session, 10**9)
        assert service.latest_completed_run(session).as_of == CDNOW_AS_OF


# --------------------------------------------------------------------------- bad input


def test_no_customers(fresh_engine):
    run = analyze(fresh_engine)
    assert run.status == AnalysisStatus.completed
    assert run.customers == 0 and "no customers" in run.message
    assert count_scores(fresh_engine, run.id) == 0


def test_customers_without_purchases_get_rows_without_scores(fresh_engine):
    ids = build(fresh_engine, [[], []])
    run = analyze(fresh_engine, as_of=date(2026, 6, 30))
    assert run.status == AnalysisStatus.partial and run.model is None
    assert "No customer has bought anything" in run.message
    scores = scores_of(fresh_engine, run.id)
    assert set(scores) == set(ids)
    for s in scores.values():
        assert s.orders == 0 and s.revenue == 0 and s.r_score is None and s.rfm_segment is None and s.clv is None


def test_a_single_customer_keeps_rfm_when_the_models_cannot_be_fitted(fresh_engine):
    (cid,) = build(fresh_engine, [[(at(2026, 1, 5), "20.00"), (at(2026, 2, 9), "30.00"), (at(2026, 4, 1), "25.00")]])
    run = analyze(fresh_engine, as_of=date(2026, 6, 30))
    assert run.status == AnalysisStatus.partial
    assert "did not converge" in run.message and "RFM scores are stored" in run.message
    assert "error" in run.fits["bgnbd"] and "error" in run.fits["pareto"]
    (score,) = scores_of(fresh_engine, run.id).values()
    assert score.customer_id == cid and score.orders == 3 and score.frequency == 2
    assert score.r_score == 1 and score.rfm_segment == "Lost"  # alone: nobody is worse
    assert score.days_since_last == 90 and float(score.revenue) == 75.0
    assert score.expected_30 is None and score.p_alive is None and score.clv is None


def test_nobody_with_repeat_purchases(fresh_engine):
    build(fresh_engine, [[(at(2026, 1, d), "10.00")] for d in (3, 10, 17, 24)])
    run = analyze(fresh_engine, as_of=date(2026, 6, 30))
    assert run.status == AnalysisStatus.partial
    assert "Nobody has made a repeat purchase yet" in run.message
    assert "nobody made a repeat purchase" in run.validation["skipped"]
    scores = scores_of(fresh_engine, run.id)
    assert len(scores) == 4 and all(s.r_score is not None and s.expected_365 is None for s in scores.values())


def test_models_that_do_not_converge_leave_a_partial_run_with_rfm(fresh_engine):
    # Everyone bought again on their last possible day: no finite maximum of either likelihood.
    build(
        fresh_engine,
        [
            [(at(2026, 5, 1), "10.00"), (at(2026, 6, 30), "10.00")],
            [(at(2026, 5, 1), "12.00"), (at(2026, 6, 30), "9.00")],
        ],
    )
    run = analyze(fresh_engine, as_of=date(2026, 6, 30), model="pareto")
    assert run.status == AnalysisStatus.partial and run.model is None
    assert "The purchase model did not converge" in run.message
    assert set(run.fits) == {"time_unit", "pareto"} and "error" in run.fits["pareto"]
    assert all(s.rfm_segment is not None for s in scores_of(fresh_engine, run.id).values())


def test_same_day_orders_count_as_one_purchase_day(fresh_engine):
    history = [(at(2026, 3, 1, 9), "10.00"), (at(2026, 3, 1, 18), "5.00"), (at(2026, 4, 1), "7.50")]
    (cid,) = build(fresh_engine, [history])
    run = analyze(fresh_engine, as_of=date(2026, 6, 30))
    assert "1 order(s) fell on a day their customer had already bought on" in run.message
    score = scores_of(fresh_engine, run.id)[cid]
    assert score.orders == 3 and score.frequency == 1 and score.recency_days == 31
    assert float(score.average_spend) == 7.5


@pytest.fixture
def cdnow_fresh(fresh_engine):
    import_cdnow(fresh_engine)
    return fresh_engine


def test_zero_and_negative_totals(cdnow_fresh):
    engine = cdnow_fresh
    with session_scope(engine) as session:
        refunded = create_customer(session)
        add_order(session, refunded, at(1998, 1, 5), "40.00")
        for when in (at(1998, 2, 5), at(1998, 3, 5)):
            refund(session, add_order(session, refunded, when, "25.00"), "25.00", when + timedelta(days=2))
        free = create_customer(session)
        add_order(session, free, at(1998, 2, 1), "0.00")
        negative = create_customer(session)
        add_order(session, negative, at(1998, 1, 10), "30.00")
        add_raw_order(session, negative, at(1998, 4, 10), "-50.00")
        ids = refunded.id, free.id, negative.id
    run = analyze(engine, as_of=CDNOW_AS_OF, holdout_days=0)
    assert run.status == AnalysisStatus.completed, run.message
    assert "zero or negative net revenue" in run.message
    assert "repeat purchases net to zero or less" in run.message
    scores = scores_of(engine, run.id)
    r, f, n = (scores[i] for i in ids)
    assert r.frequency == 2 and float(r.revenue) == 40.0 and float(r.average_spend) == 0.0
    assert float(r.expected_spend) == 0.0 and float(r.clv) == 0.0 and r.expected_365 > 0
    assert float(f.revenue) == 0.0 and f.m_score == min(s.m_score for s in scores.values())
    assert float(n.revenue) == -20.0 and float(n.expected_spend) == 0.0 and float(n.clv) == 0.0
    population = run.fits["gamma_gamma"]["params"]
    assert float(f.expected_spend) == pytest.approx(
        population["p"] * population["gamma"] / (population["q"] - 1), abs=0.005
    )


def test_orders_after_as_of_are_left_out(cdnow_fresh):
    engine = cdnow_fresh
    with session_scope(engine) as session:
        late = create_customer(session)
        add_order(session, late, at(1998, 3, 1), "10.00")
        add_order(session, late, at(1998, 7, 15), "10.00")  # after as_of
        add_raw_order(session, late, datetime.now(UTC) + timedelta(days=40), "10.00")  # dated in the future
        late_id = late.id
    run = analyze(engine, as_of=CDNOW_AS_OF, holdout_days=0)
    assert "2 order(s) placed after 1998-06-30 were left out" in run.message
    score = scores_of(engine, run.id)[late_id]
    assert score.orders == 1 and score.frequency == 0 and score.days_since_last == 121


def test_margin_from_unit_costs(cdnow_fresh):
    engine = cdnow_fresh
    with session_scope(engine) as session:
        session.execute(update(Product).values(unit_cost=Decimal("5.00")))  # the one CD product
    # Revenue and cost of the lines sold in the year up to as_of, from the file: margin 1 - cost / revenue.
    window = CDNOW_AS_OF - timedelta(days=365)
    cds = dollars = 0.0
    for line in CDNOW.read_text().splitlines():
        if line.strip():
            _, _, day, n, amount = line.split()
            if window < date(int(day[:4]), int(day[4:6]), int(day[6:])) <= CDNOW_AS_OF:
                cds += int(n)
                dollars += float(amount)
    by_cost = analyze(engine, as_of=CDNOW_AS_OF, margin=None, model="bgnbd", holdout_days=0)
    assert by_cost.settings["margin_from"] == "unit costs"
    assert by_cost.settings["margin"] == pytest.approx(1 - 5.0 * cds / dollars, rel=1e-6)
    full = analyze(engine, as_of=CDNOW_AS_OF, margin=1.0, model="bgnbd", holdout_days=0)
    ratio = by_cost.fits["clv"]["equity"] / full.fits["clv"]["equity"]
    assert ratio == pytest.approx(by_cost.settings["margin"], rel=1e-5)


def test_margin_falls_back_to_one_without_unit_costs(cdnow_fresh):
    run = analyze(cdnow_fresh, as_of=CDNOW_AS_OF, margin=None, model="bgnbd", holdout_days=0)
    assert run.settings["margin"] == 1.0 and "margin 1 is used" in run.message


def test_holdout_is_skipped_with_a_reason_when_history_is_short(fresh_engine):
    build(fresh_engine, [[(at(2026, 6, 1), "10.00"), (at(2026, 6, 20), "10.00")], [(at(2026, 6, 2), "5.00")]])
    run = analyze(fresh_engine, as_of=date(2026, 6, 30))
    assert run.validation["skipped"].startswith("no holdout validation: purchases span 29 days")
    assert run.tracking_png is None
    run = analyze(fresh_engine, as_of=date(2026, 6, 30), holdout_days=40)
    assert "leaves no calibration period" in run.validation["skipped"]
    with session_scope(fresh_engine) as session, pytest.raises(NotFound):
        service.tracking_png(session, run.id)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"as_of": date.today() + timedelta(days=2)}, "as_of"),
        ({"model": "lifetimes"}, "model"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 3651}, "horizon_days"),
        ({"horizon_days": True}, "horizon_days"),
        ({"discount_rate": -0.01}, "discount_rate"),
        ({"discount_rate": 1.5}, "discount_rate"),
        ({"discount_rate": float("nan")}, "discount_rate"),
        ({"margin": 0}, "margin"),
        ({"margin": 1.2}, "margin"),
        ({"holdout_days": -7}, "holdout_days"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(session, options, field):
    before = session.scalar(select(func.count()).select_from(AnalysisRun))
    with pytest.raises(InvalidInput) as caught:
        service.analyze(session, **options)
    assert caught.value.detail == {"field": field}
    assert session.scalar(select(func.count()).select_from(AnalysisRun)) == before


def test_churn_band_thresholds():
    p = np.array([0.95, 0.7, 0.69, 0.4, 0.39, 0.1, 0.099, 0.0])
    assert service.churn_band(p).tolist() == ["low", "low", "medium", "medium", "high", "high", "lost", "lost"]


def test_a_run_refused_after_its_insights_were_written_leaves_nothing_behind(fresh_engine):
    """The insights are written in a thread while the models are fitted: a refusal rolls back both."""
    as_of = date(2026, 6, 30)
    ids = build(fresh_engine, [[(at(2026, 1, 5), "20.00"), (at(2026, 3, 9), "35.00"), (at(2026, 5, 1), "9.00")]] * 3)
    first = analyze(fresh_engine, as_of=as_of, holdout_days=0)
    with session_scope(fresh_engine) as session:
        before = {row.customer_id: row.updated_at for row in session.scalars(select(CustomerInsight))}
        assert set(before) == set(ids)
        # A buggy import: a revenue beyond what the scores table stores.
        big = create_customer(session)
        add_raw_order(session, big, at(2026, 2, 1), "9000000000.00")
        add_raw_order(session, big, at(2026, 4, 1), "9000000000.00")
    with pytest.raises(InvalidInput, match="revenue of 10\\^10 or more"):
        analyze(fresh_engine, as_of=as_of, holdout_days=0)
    with session_scope(fresh_engine) as session:
        assert session.scalars(select(AnalysisRun.id)).all() == [first.id]
        after = {row.customer_id: row.updated_at for row in session.scalars(select(CustomerInsight))}
        assert after == before  # the refused run's replacement of the insights was rolled back
    assert not [t.name for t in threading.enumerate() if t.name.startswith("patron-analytics-")]


REFUSE_INSIGHTS = {
    "sqlite": [
        "CREATE TRIGGER refuse_insights BEFORE INSERT ON customer_insights "
        "BEGIN SELECT RAISE(ABORT, 'insights refused by the test trigger'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_insights() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'insights refused by the test trigger'; END $$",
        "CREATE TRIGGER refuse_insights BEFORE INSERT ON customer_insights "
        "FOR EACH ROW EXECUTE FUNCTION refuse_insights()",
    ],
}


@pytest.mark.parametrize("holdout_days", [0, None], ids=["no-holdout", "holdout"])
def test_a_failed_insights_write_fails_the_run_with_its_own_error_and_writes_nothing(fresh_engine, holdout_days):
    """The insights and the scores share one transaction, written in whichever order they are ready.

    A database error in the insights' write (a real trigger) must surface as itself, not as
    the scores' write failing on the broken transaction after it, and nothing of the run stays.
    """
    as_of = date(2026, 6, 30)
    build(fresh_engine, [[(at(2025, 9, 5), "20.00"), (at(2026, 3, 9), "35.00"), (at(2026, 5, 1), "9.00")]] * 40)
    first = analyze(fresh_engine, as_of=as_of, holdout_days=0)
    with fresh_engine.begin() as conn:
        for statement in REFUSE_INSIGHTS[fresh_engine.dialect.name]:
            conn.exec_driver_sql(statement)
    with pytest.raises(Exception, match="insights refused by the test trigger"):
        analyze(fresh_engine, as_of=as_of, holdout_days=holdout_days)
    with session_scope(fresh_engine) as session:
        assert session.scalars(select(AnalysisRun.id)).all() == [first.id]
        assert session.scalar(select(func.count()).select_from(CustomerScore)) == first.customers
        assert session.scalar(select(func.count()).select_from(CustomerInsight)) == 40
    assert not [t.name for t in threading.enumerate() if t.name.startswith("patron-analytics-")]


def _filenode(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_relation_filenode('customer_insights')").scalar()


@pytest.mark.parametrize("reader_holds_the_table", [False, True], ids=["truncated", "deleted"])
def test_postgresql_replaces_the_insights_whole_even_while_a_reader_holds_them(
    postgres_engine, monkeypatch, reader_holds_the_table
):
    """The old insights are truncated right before the new go in (a new file for the table);
    a reader holding the table past the lock timeout makes the run delete them instead."""
    # A bought within a year of both days; B's only order leaves the window by the second.
    a, _ = build(postgres_engine, [[(at(2025, 9, 5), "20.00"), (at(2026, 3, 9), "35.00")], [(at(2025, 8, 1), "9.00")]])
    analyze(postgres_engine, as_of=date(2026, 6, 30), holdout_days=0)
    before = _filenode(postgres_engine)
    monkeypatch.setattr(repository, "TRUNCATE_LOCK_TIMEOUT", "200ms")
    with postgres_engine.connect() as reader:
        if reader_holds_the_table:
            reader.execute(select(func.count()).select_from(CustomerInsight))  # holds its lock until the end
        analyze(postgres_engine, as_of=date(2026, 8, 15), holdout_days=0)
        reader.rollback()
    assert (_filenode(postgres_engine) == before) is reader_holds_the_table
    with session_scope(postgres_engine) as session:
        assert {(r.customer_id, r.as_of) for r in session.scalars(select(CustomerInsight))} == {(a, date(2026, 8, 15))}


def test_postgresql_truncation_leaves_the_lock_timeout_as_it_was(postgres_engine):
    with postgres_engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '7s'")
        repository.replace_insights(conn, pl.DataFrame(schema=repository.INSIGHT_COLUMNS))
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "7s"
