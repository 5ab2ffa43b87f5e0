"""Customer equity: hand-computed cases on SQLite and PostgreSQL.

DuckDB reads the database through its own connection, so the data is committed to a
fresh database of this module. The orders below are chosen so every figure can be
worked out by hand (as_of = 2026-06-30, a month end, so June is the newest full month;
the decline window is the 90 days after 2026-04-01). The run's scores are written
directly with round values: the aggregates, not the models, are under test here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from patron.analytics import equity
from patron.analytics.engine import duckdb_connection
from patron.db import READ_ONLY, session_scope
from patron.errors import InvalidInput, NotFound
from patron.models import AnalysisRun, Customer, CustomerInsight, CustomerScore
from patron.models.enums import AnalysisStatus
from patron.orders import service as orders
from patron.orders.schemas import OrderCreate, OrderReturnCreate
from tests.factories import create_customer

AS_OF = date(2026, 6, 30)
D = date


def at(y, m, d) -> datetime:
    return datetime(y, m, d, 12, tzinfo=UTC)


def _order(s, customer, day: date, total: str, *, status: str = "fulfilled"):
    data = OrderCreate(
        customer_id=customer.id,
        placed_at=at(day.year, day.month, day.day),
        channel="online",
        status=status,
        subtotal=Decimal(total),
    )
    return orders.create_order(s, data=data)


def _refund(s, order, amount: str, day: date) -> None:
    orders.record_return(
        s,
        order.id,
        data=OrderReturnCreate(kind="refund", amount=Decimal(amount), returned_at=at(day.year, day.month, day.day)),
    )


PRIOR = (D(2026, 1, 1), D(2026, 1, 31), D(2026, 3, 2), D(2026, 4, 1))  # 4 orders in 91 days up to the window start


def _build(s) -> dict[str, int]:
    a = create_customer(s, acquisition_channel="social", acquisition_cost=Decimal("20"))
    b = create_customer(s, acquisition_channel="social", acquisition_cost=Decimal("40"))
    c = create_customer(s, acquisition_channel="social")
    d = create_customer(s, acquisition_channel="referral", acquisition_cost=Decimal("0"))
    e = create_customer(s)
    f = create_customer(s, acquisition_channel="search", acquisition_cost=Decimal("10"))
    h = create_customer(s, acquisition_channel="search", acquisition_cost=Decimal("30"))
    i = create_customer(s)
    n = create_customer(s, acquisition_channel="search", acquisition_cost=Decimal("10"))
    g = create_customer(s, acquisition_channel="social", acquisition_cost=Decimal("1000"))

    # A: 4 orders of 100 before the window, one in it (and a cancelled one that must not count).
    for day in PRIOR:
        _order(s, a, day, "100.00")
    _order(s, a, D(2026, 5, 15), "100.00")
    _order(s, a, D(2026, 6, 20), "500.00", status="cancelled")
    # B: same history, then 2 orders of 100 in the window: just above half the expected pace.
    for day in PRIOR:
        _order(s, b, day, "100.00")
    _order(s, b, D(2026, 5, 1), "100.00")
    _order(s, b, D(2026, 6, 1), "100.00")
    # C: same history, then 3 small orders: enough orders, far too little spend.
    for day in PRIOR:
        _order(s, c, day, "100.00")
    for day in (D(2026, 4, 15), D(2026, 5, 15), D(2026, 6, 15)):
        last_c = _order(s, c, day, "10.00")
    _refund(s, last_c, "10.00", D(2026, 7, 5))  # after as_of: not known yet
    # D: only 2 orders before the window.
    _order(s, d, D(2026, 1, 1), "60.00")
    _order(s, d, D(2026, 2, 1), "60.00")
    # E: 4 orders, but a history of 32 days before the window: too short to judge.
    for day in (D(2026, 3, 1), D(2026, 3, 10), D(2026, 3, 20), D(2026, 4, 1)):
        _order(s, e, day, "50.00")
    # F: 3 orders over a year and a half: expects 0.6 orders per 90 days, so silence is normal.
    for day in (D(2025, 1, 1), D(2025, 6, 1), D(2025, 12, 1)):
        _order(s, f, day, "150.00")
    # H bought once, in the year before last.
    _order(s, h, D(2024, 12, 1), "1000.00")
    # I: first on the boundary of the year before last (not inside it), then in May, partly refunded.
    _order(s, i, D(2024, 6, 30), "40.00")
    i2 = _order(s, i, D(2026, 5, 1), "80.00")
    _refund(s, i2, "30.00", D(2026, 5, 5))
    # G was merged into A: its orders and its acquisition count nowhere.
    for day in (D(2025, 3, 1), D(2025, 5, 1), D(2026, 1, 1), D(2026, 1, 20), D(2026, 2, 1), D(2026, 3, 1)):
        _order(s, g, day, "999.00")
    g.merged_into_id = a.id
    s.flush()
    # Blank channel text counts as unknown, like a missing one.
    s.execute(update(Customer).where(Customer.id == i.id).values(acquisition_channel="  "))
    return {name: x.id for name, x in dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h, i=i, n=n).items()}


# customer: (orders, frequency, segment, p_alive, band, clv, revenue, days_since_last)
SCORES = {
    "a": (5, 4, "Champions", 0.9, "low", "100.00", "500.00", 46.0),
    "b": (6, 5, "Loyal", 0.5, "medium", "50.00", "600.00", 29.0),
    "c": (7, 6, "Champions", 0.2, "high", "10.00", "430.00", 15.0),
    "d": (2, 1, "At risk", 0.05, "lost", "1.00", "120.00", 400.0),
    "e": (4, 3, "New", 0.95, "low", "40.00", "200.00", 90.0),
    "f": (3, 2, "Hibernating", 0.3, "high", "5.00", "450.00", 211.0),
    "h": (1, 0, "Lost", 1.0, "lost", "0.50", "1000.00", 576.0),
    "i": (2, 1, "Promising", 0.8, "low", "20.00", "90.00", 60.0),
    "n": (0, 0, None, None, None, None, "0.00", None),
}


def _run(s, as_of: date, status=AnalysisStatus.completed, **fields) -> AnalysisRun:
    run = AnalysisRun(as_of=as_of, status=status, requested_model="auto", model="bgnbd", **fields)
    s.add(run)
    s.flush()
    return run


def _score(run: AnalysisRun, customer_id: int, orders_, frequency, segment, p_alive, band, clv, revenue, since):
    return CustomerScore(
        run_id=run.id,
        customer_id=customer_id,
        as_of=run.as_of,
        orders=orders_,
        frequency=frequency,
        days_since_last=since,
        revenue=Decimal(revenue),
        rfm_segment=segment,
        p_alive=p_alive,
        churn_band=band,
        clv=Decimal(clv) if clv is not None else None,
        r_score=3 if orders_ else None,
        f_score=3 if orders_ else None,
        m_score=3 if orders_ else None,
    )


@pytest.fixture(scope="module")
def world(database_factory):
    engine = database_factory.new_engine()
    with session_scope(engine) as s:
        ids = _build(s)
        earlier = _run(s, D(2026, 3, 31))
        s.add(_score(earlier, ids["a"], 4, 3, "Loyal", 0.95, "low", "80.00", "400.00", 0.0))
        run = _run(s, AS_OF, settings={"horizon_days": 365, "discount_rate": 0.1, "margin": 1.0})
        s.add_all(_score(run, ids[name], *values) for name, values in SCORES.items())
        s.add(CustomerInsight(customer_id=ids["a"], as_of=AS_OF, favourite_category="Books", brand_loyalty=0.75))
        failed = _run(s, AS_OF, status=AnalysisStatus.failed, message="boom")
        run_ids = {"earlier": earlier.id, "run": run.id, "failed": failed.id}
    conn = duckdb_connection(engine)
    yield SimpleNamespace(engine=engine, conn=conn, runs=run_ids, **ids)
    conn.close()
    engine.dispose()


@pytest.fixture
def s(world):
    # Read-only, as the pages that show these reports are (GET requests): a transaction that
    # took SQLite's write lock beside this process's DuckDB scanner of the same file (the
    # fixture's `conn`) crashed the process.
    with Session(world.engine.execution_options(**{READ_ONLY: True})) as session:
        yield session


# --------------------------------------------------------------------------- scores


def test_totals_equity_and_repeat_rate(world, s):
    totals = equity.score_totals(s, run_id=world.runs["run"])
    # 9 live customers scored, N never bought, H bought once.
    assert totals == {
        "customers": 9,
        "buyers": 8,
        "repeat_buyers": 7,
        "equity": Decimal("226.50"),
        "average_clv": Decimal("28.31"),  # 226.50 / 8
    }


def test_segments_in_segment_order_with_value(world, s):
    rows = equity.segment_summary(s, run_id=world.runs["run"])
    assert [r.segment for r in rows] == ["Champions", "Loyal", "New", "Promising", "At risk", "Hibernating", "Lost"]
    champions = rows[0]
    assert champions.customers == 2
    assert champions.revenue == Decimal("930.00")
    assert champions.clv == Decimal("110.00")
    assert champions.average_clv == Decimal("55.00")
    assert champions.p_alive == pytest.approx(0.55)
    assert sum(r.customers for r in rows) == 8  # N has no segment


def test_churn_bands_and_lapsed(world, s):
    churn = equity.churn_summary(s, run_id=world.runs["run"])
    assert churn.bands == {"low": 3, "medium": 1, "high": 2, "lost": 2}
    assert (churn.scored, churn.at_risk, churn.rate) == (8, 4, 0.5)
    # D (400 days) and H (576 days) have not bought for more than a year.
    assert (churn.buyers, churn.lapsed, churn.lapsed_rate) == (8, 2, 0.25)


def test_clv_cac_by_channel(world, s):
    rows = {r.channel: r for r in equity.channel_value(s, run_id=world.runs["run"])}
    assert list(rows) == ["referral", "search", "social", "unknown"]
    social = rows["social"]  # A, B, C; the merged G and its cost of 1000 are left out
    assert (social.customers, social.buyers, social.with_cost) == (3, 3, 2)
    assert social.average_cac == Decimal("30.00")
    assert social.average_clv == Decimal("53.33")  # 160 / 3
    assert social.clv_cac == pytest.approx(160 / 3 / 30)
    search = rows["search"]  # F, H and N, who never bought (CLV 0 but acquired at a cost)
    assert (search.customers, search.buyers, search.with_cost) == (3, 2, 3)
    assert search.average_cac == Decimal("16.67")
    assert search.average_clv == Decimal("1.83")
    assert search.clv_cac == pytest.approx(0.11)  # (5.5 / 3) / (50 / 3)
    referral = rows["referral"]  # a free channel: a cost of 0 recorded, so no ratio
    assert (referral.with_cost, referral.average_cac, referral.clv_cac) == (1, Decimal("0.00"), None)
    unknown = rows["unknown"]  # E (no channel) and I (blank channel), no cost data
    assert (unknown.customers, unknown.with_cost, unknown.average_cac, unknown.clv_cac) == (2, 0, None, None)
    assert unknown.average_clv == Decimal("30.00")


# --------------------------------------------------------------------------- order history


def test_decliners_by_pace_and_spend(world):
    decline = equity.decliners(world.conn, as_of=AS_OF)
    # C: 4 x 100 in the 91 days to 2026-04-01 predicts 400 * 90 / 91 in the window; spent 30.
    # A: predicts 3.96 orders, placed 1 (its cancelled order does not count).
    # B placed 2 >= 1.98 and spent 200 >= 197.80; D has 2 earlier orders; E's history is
    # 32 days; F's pace predicts 0.59 orders; G is merged.
    assert [r["customer_id"] for r in decline.rows] == [world.c, world.a]
    assert decline.total == 2
    c, a = decline.rows
    assert (c["prior_orders"], c["prior_days"], c["recent_orders"]) == (4, 91, 3)
    assert c["expected_orders"] == pytest.approx(4 * 90 / 91)
    assert c["expected_spend"] == pytest.approx(400 * 90 / 91)
    assert c["recent_spend"] == pytest.approx(30.0)  # the refund after as_of is not known yet
    assert c["shortfall"] == pytest.approx(400 * 90 / 91 - 30)
    assert (a["recent_orders"], a["recent_spend"]) == (1, pytest.approx(100.0))
    assert a["shortfall"] == pytest.approx(400 * 90 / 91 - 100)
    assert decline.shortfall == pytest.approx(800 * 90 / 91 - 130)


def test_decline_rule_is_configurable(world):
    loose = equity.decliners(world.conn, as_of=AS_OF, min_expected=0.5)
    assert world.f in [r["customer_id"] for r in loose.rows]  # F's 0.59 expected orders now count
    strict = equity.decliners(world.conn, as_of=AS_OF, drop=0.2)
    # At 20%: A placed 1 of 3.96 (25%) and C spent 30 of 395.60 (7.6%).
    assert [r["customer_id"] for r in strict.rows] == [world.c]
    top = equity.decliners(world.conn, as_of=AS_OF, limit=1)
    assert [r["customer_id"] for r in top.rows] == [world.c]
    assert top.total == 2  # the count is of every decliner, not only those listed
    with pytest.raises(InvalidInput):
        equity.decliners(world.conn, as_of=AS_OF, drop=0)


def test_retention_of_last_years_buyers(world):
    r = equity.retention_rate(world.conn, as_of=AS_OF)
    assert (r.previous_start, r.current_start) == (D(2024, 6, 30), D(2025, 6, 30))
    # F (2025) bought again in December 2025; H (Dec 2024) did not; I's 2024-06-30 is on the
    # boundary, outside the earlier year; merged G's 2025 orders count nowhere.
    assert (r.previous_buyers, r.retained, r.rate) == (2, 1, 0.5)


def test_sales_trend_against_the_same_months_a_year_earlier(world):
    t = equity.sales_trend(world.conn, as_of=AS_OF)
    assert t.comparison == "year_earlier"
    assert [m.month for m in t.recent] == [D(2026, 4, 1), D(2026, 5, 1), D(2026, 6, 1)]
    assert [m.month for m in t.earlier] == [D(2025, 4, 1), D(2025, 5, 1), D(2025, 6, 1)]
    # April: A, B, C, E on the 1st (350) + C's 10; May: A 100, B 100, C 10, I 80 - 30;
    # June: B 100 + C 10 (A's order is cancelled, C's refund comes after as_of).
    assert [m.revenue for m in t.recent] == pytest.approx([360.0, 260.0, 110.0])
    assert [m.orders for m in t.recent] == [5, 4, 2]
    assert [m.revenue for m in t.earlier] == pytest.approx([0.0, 0.0, 150.0])  # F in June; G is merged
    assert t.recent_revenue == pytest.approx(730.0)
    assert t.earlier_revenue == pytest.approx(150.0)
    assert t.change == pytest.approx(580 / 150)
    assert t.alert is False
    assert t.history[0].month == D(2025, 4, 1) and t.history[-1].month == D(2026, 6, 1)
    assert len(t.history) == 15


def test_sales_trend_alert_when_revenue_falls(world):
    # As of mid-March the newest full month is February: Dec 2025 - Feb 2026 against Dec 2024 - Feb 2025.
    t = equity.sales_trend(world.conn, as_of=D(2026, 3, 15))
    assert [m.month for m in t.recent] == [D(2025, 12, 1), D(2026, 1, 1), D(2026, 2, 1)]
    # F 150 in December; A, B, C 2 x 100 each and D 60 in January; D 60 in February.
    assert t.recent_revenue == pytest.approx(150 + 600 + 60 + 60)
    assert t.earlier_revenue == pytest.approx(1150.0)  # H in December 2024, F in January 2025
    assert t.change == pytest.approx(870 / 1150 - 1)  # -24.3%
    assert t.alert is True
    assert equity.sales_trend(world.conn, as_of=D(2026, 3, 15), threshold=0.25).alert is False


def test_sales_trend_falls_back_to_the_preceding_months(world):
    # History starts 2024-06-30: as of 2025-03-15 there is no year-earlier Dec 2023 - Feb 2024.
    t = equity.sales_trend(world.conn, as_of=D(2025, 3, 15))
    assert t.comparison == "preceding"
    assert [m.month for m in t.earlier] == [D(2024, 9, 1), D(2024, 10, 1), D(2024, 11, 1)]
    assert (t.recent_revenue, t.earlier_revenue) == (pytest.approx(1150.0), 0.0)
    assert t.change is None and t.alert is False  # nothing to compare a fall with
    none = equity.sales_trend(world.conn, as_of=D(2024, 8, 15))
    assert (none.comparison, none.earlier, none.alert) == ("none", [], False)


def test_cohort_curves_keep_the_latest_cohorts(world):
    df = equity.cohort_curves(world.conn, as_of=AS_OF, cohorts=2)
    assert sorted(set(df["cohort_month"].to_list())) == [D(2026, 1, 1), D(2026, 3, 1)]
    january = df.filter(df["cohort_month"] == D(2026, 1, 1)).sort("months_since")
    # A, B, C, D first bought in January; in February only D bought (A, B, C bought on Jan 31
    # and Mar 2); from April D is gone, and A's June order was cancelled.
    assert january["cohort_size"][0] == 4
    assert january["active_customers"].to_list() == [4, 1, 3, 3, 3, 2]


# --------------------------------------------------------------------------- report and runs


def test_report_as_of_the_latest_finished_run(world, s):
    report = equity.equity_report(s)
    assert report.run.id == world.runs["run"]  # the failed run after it is passed over
    assert report.as_of == AS_OF
    assert (report.customers, report.buyers, report.equity) == (9, 8, Decimal("226.50"))
    assert report.repeat_rate == pytest.approx(7 / 8)
    assert report.retention.rate == 0.5
    assert [r["customer_id"] for r in report.decline.rows] == [world.c, world.a]
    # Decliners carry the run's view of them.
    c = report.decline.rows[0]
    assert (c["rfm_segment"], c["churn_band"], c["clv"]) == ("Champions", "high", Decimal("10.00"))
    assert report.trend.comparison == "year_earlier"
    earlier = equity.equity_report(s, run_id=world.runs["earlier"])
    assert (earlier.as_of, earlier.equity, earlier.customers) == (D(2026, 3, 31), Decimal("80.00"), 1)
    with pytest.raises(NotFound):
        equity.equity_report(s, run_id=world.runs["failed"])


def test_no_run_means_no_report(session):
    assert equity.equity_report(session) is None


def test_customer_outlook_across_runs(world, s):
    outlook = equity.customer_outlook(s, customer_id=world.a)
    assert [score.as_of for score, _ in outlook.history] == [D(2026, 3, 31), AS_OF]
    assert outlook.latest.clv == Decimal("100.00") and outlook.latest_run.id == world.runs["run"]
    assert outlook.insight.favourite_category == "Books"
    nobody = equity.customer_outlook(s, customer_id=world.n)
    assert nobody.latest.orders == 0 and nobody.insight is None


def test_describe_run_explains_the_model_choice():
    run = AnalysisRun(
        as_of=AS_OF,
        status=AnalysisStatus.completed,
        requested_model="auto",
        model="pareto",
        fits={
            "pareto": {
                "params": {"r": 0.5, "s": 0.6},
                "standard_errors": {"r": 0.01, "s": 0.02},
                "log_likelihood": -9.5,
            },
            "gamma_gamma": {"error": "q <= 1"},
        },
        validation={
            "chosen": "pareto",
            "models": {"bgnbd": {"metrics": {"rmse": 1.5}}, "pareto": {"metrics": {"rmse": 1.25, "mae": 0.5}}},
        },
        timings={"fit": 0.25, "total": 1.0},
    )
    summary = equity.describe_run(run)
    assert summary.model_label == "Pareto/NBD"
    assert "RMSE 1.250 against BG/NBD 1.500" in summary.reason
    assert summary.fits[0].params == [("r", 0.5, 0.01), ("s", 0.6, 0.02)]
    assert summary.fits[1].error == "q <= 1"
    assert [h.rmse for h in summary.holdout] == [1.5, 1.25]
    assert summary.timings == [("fit", 0.25), ("total", 1.0)]
    run.requested_model = "bgnbd"
    run.model = "bgnbd"
    assert equity.describe_run(run).reason == "BG/NBD was requested for this run."
    run.model = None
    assert "no predictions" in equity.describe_run(run).reason
