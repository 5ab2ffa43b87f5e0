"""The analytics page, the "Run analysis" form and the customer 360's value panel.

Pages that only read runs and scores use the usual rolled-back session. Running an
analysis and drawing the equity report read the orders through DuckDB, which sees only
committed data: those tests use an app on a fresh database of their own, filled by the
demo generator (fixed seed, so every run gives the same result).
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.api.app import create_app
from patron.db import session_scope
from patron.demo.generator import generate
from patron.models import AnalysisRun, Customer, CustomerInsight, CustomerScore
from patron.models.enums import AnalysisStatus
from patron.settings import Settings
from patron.users import service as users
from tests.factories import create_customer
from tests.web.conftest import PASSWORD, WebClient

_seq = itertools.count(1)
RUNNERS = ("admin", "analyst")
READERS = ("viewer", "marketer", "agent")


@pytest.fixture
def web(app, session):
    """web(role) -> a client signed in through /login as a new user with that role."""

    def make(role: str = "admin") -> WebClient:
        n = next(_seq)
        user = users.create_user(session, email=f"pages{n}@patron.example", password=PASSWORD, role=role)
        client = WebClient(app, follow_redirects=False)
        client.refresh_csrf("/login")
        assert client.submit("/login", {"email": user.email, "password": PASSWORD}).status_code == 303
        client.refresh_csrf("/analytics")
        return client

    return make


@pytest.fixture
def admin_web(web) -> WebClient:
    return web("admin")


def runs(session) -> int:
    return session.scalar(select(func.count()).select_from(AnalysisRun))


def kpi(html: str, name: str) -> str:
    match = re.search(rf'data-kpi="{name}">([^<]*)<', html)
    assert match, f"no {name} KPI on the page"
    return match.group(1).strip()


# --------------------------------------------------------------------------- no run, roles, CSRF, form


def test_empty_state_invites_a_first_run(admin_web, session):
    r = admin_web.get("/analytics")
    assert r.status_code == 200
    assert "No analysis yet" in r.text and "patron analyze" in r.text
    assert 'action="/analytics/runs"' in r.text
    assert re.search(r'<a href="/analytics" class="active" aria-current="page">', r.text)
    assert "data-analytics-chart" not in r.text and "plotly" not in r.text


@pytest.mark.parametrize("role", RUNNERS)
def test_admins_and_analysts_get_the_run_form(web, session, role):
    page = web(role).get("/analytics").text
    assert 'action="/analytics/runs"' in page and ">Run analysis</button>" in page


@pytest.mark.parametrize("role", READERS)
def test_other_roles_read_but_cannot_run(web, session, role):
    client = web(role)
    page = client.get("/analytics")
    assert page.status_code == 200
    assert 'action="/analytics/runs"' not in page.text
    assert f"Your role ({role}) cannot run analyses" in page.text
    r = client.submit("/analytics/runs", {"model": "auto"})
    assert r.status_code == 403
    assert runs(session) == 0


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_run_without_the_right_csrf_token_does_nothing(admin_web, session, token):
    r = admin_web.submit("/analytics/runs", {"model": "auto"}, token=token)
    assert r.status_code == 403
    assert "This form has expired" in r.text
    assert runs(session) == 0


@pytest.mark.parametrize(
    ("form", "status", "field", "message"),
    [
        ({"as_of": "31/12/2025"}, 422, "as_of", "enter a date as YYYY-MM-DD"),
        ({"horizon_days": "a year"}, 422, "horizon_days", "enter a whole number of days"),
        ({"discount_rate": "ten"}, 422, "discount_rate", "enter a percentage"),
        ({"as_of": (date.today() + timedelta(days=40)).isoformat()}, 400, "as_of", "is in the future"),
        ({"horizon_days": "0"}, 400, "horizon_days", "horizon_days must be a whole number of days from 1"),
        ({"margin": "150"}, 400, "margin", "above 0 and at most 100%"),
        ({"discount_rate": "-5"}, 400, "discount_rate", "enter an annual rate from 0 to 100%"),
        ({"model": "magic"}, 400, "model", "model must be one of auto, bgnbd, pareto"),
    ],
)
def test_bad_options_are_shown_beside_their_field(admin_web, session, form, status, field, message):
    r = admin_web.submit("/analytics/runs", form)
    assert r.status_code == status
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', r.text)
    assert error and message in error.group(1)
    if field != "model":  # what was typed is kept
        assert f'name="{field}" type="' in r.text and f'value="{form[field]}"' in r.text
    assert runs(session) == 0


# --------------------------------------------------------------------------- the 360's value panel


def _run(session, as_of: date, status=AnalysisStatus.completed) -> AnalysisRun:
    run = AnalysisRun(
        as_of=as_of,
        status=status,
        requested_model="auto",
        model="bgnbd" if status == AnalysisStatus.completed else None,
        settings={"horizon_days": 365, "discount_rate": 0.1, "margin": 0.4},
    )
    session.add(run)
    session.flush()
    return run


def _score(run, customer, **fields) -> CustomerScore:
    base = dict(run_id=run.id, customer_id=customer.id, as_of=run.as_of, orders=0, frequency=0, revenue=Decimal("0"))
    return CustomerScore(**{**base, **fields})


def test_360_without_any_run_says_how_to_get_scores(admin_web, session):
    customer = create_customer(session)
    page = admin_web.get(f"/customers/{customer.id}").text
    panel = page[page.index('id="value-outlook"') :]
    assert "No analysis has been run yet" in panel and "patron analyze" in panel
    assert 'id="insights"' not in page and "data-analytics-chart" not in page


def test_360_value_panel_shows_scores_their_meaning_and_the_trend(admin_web, session):
    ann = create_customer(session, first_name="Ann")
    earlier = _run(session, date(2026, 3, 31))
    latest = _run(session, date(2026, 6, 30))
    common = dict(orders=6, frequency=5, r_score=5, f_score=4, m_score=3, days_since_last=12.0, revenue=Decimal("640"))
    session.add_all(
        [
            _score(earlier, ann, **common, rfm_segment="Champions", p_alive=0.91, churn_band="low", clv=Decimal("300")),
            _score(
                latest,
                ann,
                **common,
                rfm_segment="Loyal",
                p_alive=0.42,
                churn_band="medium",
                expected_30=0.8,
                expected_90=2.14,
                expected_365=6.0,
                expected_spend=Decimal("55.10"),
                clv=Decimal("123.45"),
            ),
            CustomerInsight(
                customer_id=ann.id,
                as_of=latest.as_of,
                favourite_category="Books",
                favourite_brand="Quill & Co",
                brand_loyalty=0.8,
                discount_share=0.6,
                price_index=1.25,
                premium_share=0.3,
                preferred_channel="in_store",
                has_children_signal=True,
            ),
        ]
    )
    session.flush()
    page = admin_web.get(f"/customers/{ann.id}").text
    panel = page[page.index('id="value-outlook"') : page.index('id="what-they-buy"')]
    assert f'href="/analytics?run={latest.id}">as of 30 Jun 2026' in panel
    assert 'data-value="segment">Loyal<' in panel
    assert "R 5 · F 4 · M 3" in panel
    assert 'data-value="p_alive">0.42<' in panel
    assert "About 42 in 100 customers with a purchase history like this still buy from you" in panel
    assert "Medium · Cooling" in panel and "A timely reminder or a personal recommendation" in panel
    assert 'data-value="expected">0.8 · 2.1 · 6.0<' in panel
    assert 'data-value="clv">123.45<' in panel and "at 55.10 per purchase" in panel
    chart = json.loads(re.search(r'id="chart-history-data">([^<]*)<', panel).group(1))
    assert chart == {
        "kind": "history",
        "x": ["2026-03-31", "2026-06-30"],
        "clv": [300.0, 123.45],
        "p_alive": [0.91, 0.42],
    }
    assert '<script src="/static/js/analytics.js">' in page
    insights = page[page.index('id="insights"') :]
    assert 'data-insight="category">Books<' in insights
    assert "80% of their spend in their favourite category goes to one brand — loyal" in insights
    assert "60% of their spend — price-sensitive" in insights
    assert "pays 1.25× the usual price" in insights and "(upmarket)" in insights
    assert 'data-insight="channel">In store<' in insights
    assert "likely has children" in insights


def test_360_value_panel_edge_cases(admin_web, session):
    run = _run(session, date(2026, 6, 30))
    partial = _run(session, date(2026, 5, 31), status=AnalysisStatus.partial)
    never = create_customer(session)
    session.add(_score(run, never))
    newcomer = create_customer(session)  # created after the run: not scored
    unpredicted = create_customer(session)
    session.add(
        _score(
            partial,
            unpredicted,
            orders=2,
            frequency=1,
            r_score=2,
            f_score=2,
            m_score=2,
            days_since_last=5.0,
            rfm_segment="Hibernating",
        )
    )
    session.flush()
    page = admin_web.get(f"/customers/{never.id}").text
    assert "No purchases as of 30 Jun 2026, so no segment or predictions yet" in page
    page = admin_web.get(f"/customers/{newcomer.id}").text
    assert "This customer was not part of any analysis yet" in page
    page = admin_web.get(f"/customers/{unpredicted.id}").text
    assert 'data-value="segment">Hibernating<' in page
    assert "has no predictions" in page and 'data-value="p_alive"' not in page
    assert "data-analytics-chart" not in page  # a single run: no trend to draw


# --------------------------------------------------------------------------- running it for real


class Live:
    """The app on a generated database of its own (committed data, as DuckDB needs)."""

    def __init__(self, engine):
        self.engine = engine
        self.app = create_app(engine, Settings(secret_key="analytics-pages"))

    def client(self, role: str = "admin") -> WebClient:
        n = next(_seq)
        with session_scope(self.engine) as s:
            user = users.create_user(s, email=f"analytics{n}@patron.example", password=PASSWORD, role=role)
        client = WebClient(self.app, follow_redirects=False)
        client.refresh_csrf("/login")
        r = client.submit("/login", {"email": user.email, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        client.refresh_csrf("/analytics")
        return client


@pytest.fixture(scope="module")
def live(database_factory):
    engine = database_factory.new_engine()
    generate(engine, customers=300, seed=11, end=datetime.now(UTC).date())
    yield Live(engine)
    engine.dispose()


def test_run_from_the_form_and_read_the_results(live):
    admin = live.client("admin")
    r = admin.submit("/analytics/runs", {"model": "auto", "horizon_days": "365", "discount_rate": "10", "margin": "40"})
    assert r.status_code == 303, r.text
    run_id = int(re.fullmatch(r"/analytics\?run=(\d+)", r.headers["location"]).group(1))
    page = admin.get(r.headers["location"]).text

    with Session(live.engine) as s:
        run = s.get(AnalysisRun, run_id)
        assert run.status == AnalysisStatus.completed and run.actor.startswith("analytics")
        assert run.settings["margin"] == 0.4 and run.settings["discount_rate"] == 0.1
        equity = s.scalar(select(func.sum(CustomerScore.clv)).where(CustomerScore.run_id == run_id))
        buyers = s.scalar(select(func.count()).where(CustomerScore.run_id == run_id, CustomerScore.orders > 0))
        repeat = s.scalar(select(func.count()).where(CustomerScore.run_id == run_id, CustomerScore.frequency > 0))
        customers = s.scalar(select(func.count()).select_from(Customer))
        buyer = s.scalar(
            select(CustomerScore.customer_id)
            .where(CustomerScore.run_id == run_id, CustomerScore.frequency > 2)
            .order_by(CustomerScore.customer_id)
            .limit(1)
        )
    assert f"Analysis as of {run.as_of:%d %b %Y} finished: {buyers:,} buyers of {customers:,} customers scored." in page
    assert kpi(page, "equity") == f"{equity:,.0f}"
    assert kpi(page, "repeat") == f"{100 * repeat / buyers:.1f}%"
    assert kpi(page, "clv") == f"{(equity / buyers).quantize(Decimal('0.01')):,.2f}"
    assert f"{repeat:,} of {buyers:,} buyers bought on two or more days" in page
    for chart in ("trend", "segments", "channels", "cohorts"):
        data = json.loads(re.search(rf'id="chart-{chart}-data">([^<]*)<', page).group(1))
        assert data["kind"] in {chart, "heatmap"}
    segments = json.loads(re.search(r'id="chart-segments-data">([^<]*)<', page).group(1))
    assert sum(segments["customers"]) == buyers
    assert f"<strong>{run.model and {'bgnbd': 'BG/NBD', 'pareto': 'Pareto/NBD'}[run.model]}</strong>" in page
    assert "margin 40.0%" in page and "What the numbers mean, and what to do" in page
    assert f'data-run="{run_id}" class="current"' in page

    png = admin.get(f"/analytics/runs/{run_id}/tracking.png")
    if run.tracking_png:
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content == run.tracking_png and png.content.startswith(b"\x89PNG")
        assert f'src="/analytics/runs/{run_id}/tracking.png"' in page and 'id="by-frequency-table"' in page
    else:
        assert png.status_code == 404 and 'id="holdout-skipped"' in page

    # An analyst runs an earlier as-of; the buyer's 360 then charts both runs.
    analyst = live.client("analyst")
    earlier = (run.as_of - timedelta(days=60)).isoformat()
    r = analyst.submit("/analytics/runs", {"as_of": earlier, "model": "bgnbd", "holdout_days": "0"})
    assert r.status_code == 303, r.text
    page = analyst.get(r.headers["location"]).text
    assert "BG/NBD was requested for this run." in page and "Holdout validation skipped" in page
    detail = analyst.get(f"/customers/{buyer}").text
    chart = json.loads(re.search(r'id="chart-history-data">([^<]*)<', detail).group(1))
    assert chart["x"] == [earlier, run.as_of.isoformat()]
    # The page defaults to the run with the latest as-of, not the latest started.
    assert f'data-run="{run_id}" class="current"' in analyst.get("/analytics").text


def test_unknown_and_unfinished_runs(live):
    client = live.client("viewer")
    assert client.get("/analytics?run=999999").status_code == 404
    assert client.get("/analytics/runs/999999/tracking.png").status_code == 404
    with session_scope(live.engine) as s:
        failed = AnalysisRun(
            as_of=date(2026, 1, 1),
            status=AnalysisStatus.failed,
            requested_model="auto",
            message="the database went away",
        )
        s.add(failed)
        s.flush()
        failed_id = failed.id
    assert client.get(f"/analytics?run={failed_id}").status_code == 404
    page = client.get("/analytics").text
    assert f"The newest run (#{failed_id}, as of 01 Jan 2026) did not finish: the database went away" in page
