"""Customer equity as of an analysis run: value, retention, churn, acquisition payback and decline.

Everything is computed as of the run's as_of, set-based: aggregates over the run's
`customer_scores` are GROUP BY queries on the operational database (small results), and
aggregates over the order history run in DuckDB (`patron.analytics.engine`) with the
conventions of `patron.analytics.queries`: a purchase is an order that is not
cancelled, placed on or before as_of (UTC day), by a customer that is not merged; its
spend is the order total minus the refunds booked against it up to as_of.

Definitions used on the page and in the tests:

- equity: the sum of the run's CLV over all customers (customers without a CLV, such as
  those who never bought, count as 0);
- repeat-purchase rate: share of buyers (at least one purchase up to as_of) who bought
  on two or more different days (the run's frequency > 0);
- retention rate: of the customers who bought in the 12 months before the last 12
  months (as_of - 730 days, as_of - 365 days], the share who bought again in the last
  12 months (as_of - 365 days, as_of];
- churn rate: share of buyers with a churn band (the run has predictions) whose band is
  high or lost; the lapsed rate is the model-free companion: share of buyers whose
  last purchase is more than `LAPSED_DAYS` before as_of;
- CLV:CAC per acquisition channel: the channel's average CLV over all its customers
  (non-buyers count as 0, since acquiring them cost money too) divided by the average
  acquisition cost of its customers with a recorded cost; no cost recorded means no ratio;
- decliners: customers with at least `min_orders` orders before the recent window
  (the last `window_days` days up to as_of) and a history before it at least as long as
  the window, whose own rate from their first purchase to the window start predicts at
  least `min_expected` orders in the window, and who placed fewer than `drop` (50%) of
  those expected orders or spent less than `drop` of that expected spend in the window.
  The value at stake is the spend shortfall in the window: expected spend minus actual,
  and the list is sorted by it;
- sales trend: net revenue of the last `months` full calendar months before as_of
  (as_of's month counts when as_of is its last day) against the same months a year
  earlier, or against the preceding `months` months when there is no order history a
  year back; the alert fires when revenue fell by `threshold` (10%) or more.
"""

from __future__ import annotations

import calendar
import json
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import polars as pl
from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from patron.analytics import repository
from patron.analytics.engine import duckdb_connection
from patron.analytics.queries import cohort_retention, run_query
from patron.errors import InvalidInput, NotFound, PatronError
from patron.models import AnalysisRun, Customer, CustomerInsight, CustomerScore
from patron.models.enums import ChurnBand, RfmSegment

LAPSED_DAYS = 365
AT_RISK_BANDS = (ChurnBand.high, ChurnBand.lost)
UNKNOWN_CHANNEL = "unknown"
COHORTS_SHOWN = 24

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SegmentRow:
    """One RFM segment of a run: its size and what its customers are worth."""

    segment: str
    customers: int
    revenue: Decimal
    clv: Decimal | None
    average_clv: Decimal | None
    p_alive: float | None  # mean over the segment's customers with a prediction


@dataclass(frozen=True)
class ChannelRow:
    """One acquisition channel: customers, what acquiring them cost, and what they are worth."""

    channel: str
    customers: int
    buyers: int
    with_cost: int  # customers with a recorded acquisition cost
    average_cac: Decimal | None
    average_clv: Decimal | None  # over all the channel's customers, non-buyers as 0
    clv_cac: float | None  # None without cost data (or a zero cost)


@dataclass(frozen=True)
class Churn:
    """Churn by the model's bands and, model-free, by time since the last purchase."""

    scored: int  # buyers with a churn band
    at_risk: int  # of those, in the high or lost band
    rate: float | None
    bands: dict[str, int]
    buyers: int
    lapsed: int
    lapsed_rate: float | None
    lapsed_days: int = LAPSED_DAYS


@dataclass(frozen=True)
class Retention:
    """12-month retention: last year's buyers who bought again this year."""

    previous_start: date  # the earlier year is (previous_start, current_start]
    current_start: date  # the later year is (current_start, as_of]
    previous_buyers: int
    retained: int
    rate: float | None


@dataclass(frozen=True)
class Decline:
    """The decliners found by the rule in the module docstring (the top `limit` by value at stake)."""

    window_days: int
    min_orders: int
    drop: float
    min_expected: float
    total: int
    shortfall: float  # summed over every decliner, not only those listed
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class MonthRevenue:
    month: date  # first day of the month
    revenue: float
    orders: int


@dataclass(frozen=True)
class SalesTrend:
    """Recent full months' net revenue against a comparison period, and whether to raise the alarm."""

    comparison: str  # "year_earlier" | "preceding" | "none"
    recent: list[MonthRevenue]
    earlier: list[MonthRevenue]
    recent_revenue: float
    earlier_revenue: float | None
    change: float | None  # relative: -0.2 = 20% down
    threshold: float
    alert: bool
    history: list[MonthRevenue]  # every month from the earliest compared one to as_of's month


@dataclass(frozen=True)
class EquityReport:
    """Everything the analytics page shows, as of one run."""

    run: AnalysisRun
    as_of: date
    customers: int
    buyers: int
    equity: Decimal | None
    average_clv: Decimal | None  # per buyer
    repeat_buyers: int
    repeat_rate: float | None
    retention: Retention
    churn: Churn
    segments: list[SegmentRow]
    channels: list[ChannelRow]
    cohorts: pl.DataFrame
    decline: Decline
    trend: SalesTrend
    runs: list[AnalysisRun] = field(default_factory=list)


@dataclass(frozen=True)
class Outlook:
    """A customer's scores across runs and their latest purchase-history insights, for the 360 page."""

    latest: CustomerScore | None
    latest_run: AnalysisRun | None
    history: list[tuple[CustomerScore, AnalysisRun]]
    insight: CustomerInsight | None


# --------------------------------------------------------------------------- the report


def equity_report(session: Session, *, run_id: int | None = None, decliners_shown: int = 25) -> EquityReport | None:
    """The equity report as of the given run (default: the latest finished one); None when there is none."""
    if run_id is None:
        run = repository.latest_completed_run(session)
        if run is None:
            return None
    else:
        run = repository.get(session, run_id)
        if run is None:
            raise NotFound(f"analysis run {run_id} not found", detail={"field": "run_id"})
        if run.status not in repository.FINISHED:
            raise NotFound(f"analysis run {run_id} has no scores (status {run.status})", detail={"field": "run_id"})
    as_of = run.as_of
    totals = score_totals(session, run_id=run.id)
    history = order_history(session.get_bind().engine, as_of=as_of, decliners_shown=decliners_shown)
    decline = _with_scores(session, history.decline, run_id=run.id)
    return EquityReport(
        run=run,
        as_of=as_of,
        customers=totals["customers"],
        buyers=totals["buyers"],
        equity=totals["equity"],
        average_clv=totals["average_clv"],
        repeat_buyers=totals["repeat_buyers"],
        repeat_rate=_share(totals["repeat_buyers"], totals["buyers"]),
        retention=history.retention,
        churn=churn_summary(session, run_id=run.id),
        segments=segment_summary(session, run_id=run.id),
        channels=channel_value(session, run_id=run.id),
        cohorts=history.cohorts,
        decline=decline,
        trend=history.trend,
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"))


# --------------------------------------------------------------------------- over the run's scores


def score_totals(session: Session, *, run_id: int) -> dict[str, Any]:
    """Customers, buyers, repeat buyers, equity (sum of CLV) and CLV per buyer of one run."""
    s = CustomerScore
    bought = s.orders > 0
    row = session.execute(
        select(
            func.count(),
            func.count(case((bought, 1))),
            func.count(case((bought & (s.frequency > 0), 1))),
            func.sum(s.clv),
            func.count(s.clv),
        ).where(s.run_id == run_id)
    ).one()
    customers, buyers, repeat, equity, with_clv = row
    equity = _decimal(equity) if with_clv else None
    return {
        "customers": int(customers),
        "buyers": int(buyers),
        "repeat_buyers": int(repeat),
        "equity": equity,
        "average_clv": _decimal(equity / buyers) if equity is not None and buyers else None,
    }


def segment_summary(session: Session, *, run_id: int) -> list[SegmentRow]:
    """Customers, revenue, CLV and mean P(alive) per RFM segment of one run, in the segments' order."""
    s = CustomerScore
    rows = session.execute(
        select(
            s.rfm_segment,
            func.count(),
            func.sum(s.revenue),
            func.sum(s.clv),
            func.count(s.clv),
            func.avg(s.p_alive),
        )
        .where(s.run_id == run_id, s.rfm_segment.is_not(None))
        .group_by(s.rfm_segment)
    ).all()
    found = {RfmSegment(r[0]): r for r in rows}
    out = []
    for segment in RfmSegment:
        if segment not in found:
            continue
        _, n, revenue, clv, with_clv, p_alive = found[segment]
        clv = _decimal(clv) if with_clv else None
        out.append(
            SegmentRow(
                segment=segment.value,
                customers=int(n),
                revenue=_decimal(revenue) or Decimal("0.00"),
                clv=clv,
                average_clv=_decimal(clv / n) if clv is not None and n else None,
                p_alive=float(p_alive) if p_alive is not None else None,
            )
        )
    return out


def churn_summary(session: Session, *, run_id: int, lapsed_days: int = LAPSED_DAYS) -> Churn:
    """Buyers per churn band, the share in the high and lost bands, and the share lapsed past lapsed_days."""
    s = CustomerScore
    bands = dict(
        session.execute(
            select(s.churn_band, func.count())
            .where(s.run_id == run_id, s.churn_band.is_not(None))
            .group_by(s.churn_band)
        ).all()
    )
    counts = {band.value: int(bands.get(band, 0)) for band in ChurnBand}
    buyers, lapsed = session.execute(
        select(func.count(), func.count(case((s.days_since_last > lapsed_days, 1)))).where(
            s.run_id == run_id, s.orders > 0
        )
    ).one()
    scored = sum(counts.values())
    at_risk = sum(counts[b.value] for b in AT_RISK_BANDS)
    return Churn(
        scored=scored,
        at_risk=at_risk,
        rate=_share(at_risk, scored),
        bands=counts,
        buyers=int(buyers),
        lapsed=int(lapsed),
        lapsed_rate=_share(int(lapsed), int(buyers)),
        lapsed_days=lapsed_days,
    )


def channel_value(session: Session, *, run_id: int) -> list[ChannelRow]:
    """Per acquisition channel: customers, buyers, average acquisition cost, average CLV and CLV:CAC."""
    c, s = Customer, CustomerScore
    channel = func.coalesce(func.nullif(func.trim(c.acquisition_channel), ""), UNKNOWN_CHANNEL)
    rows = session.execute(
        select(
            channel,
            func.count(c.id),
            func.count(case((s.orders > 0, 1))),
            func.count(c.acquisition_cost),
            func.avg(c.acquisition_cost),
            func.sum(s.clv),
            func.count(s.clv),
        )
        .select_from(c)
        .outerjoin(s, (s.customer_id == c.id) & (s.run_id == run_id))
        .where(c.merged_into_id.is_(None))
        .group_by(channel)
        .order_by(channel)
    ).all()
    out = []
    for name, customers, buyers, with_cost, cac, clv, with_clv in rows:
        clv_each = Decimal(str(clv)) / customers if with_clv and customers else None
        cac_each = Decimal(str(cac)) if with_cost else None
        ratio = None
        if clv_each is not None and cac_each is not None and cac_each > 0:
            ratio = float(clv_each / cac_each)
        average_clv, average_cac = _decimal(clv_each), _decimal(cac_each)
        out.append(
            ChannelRow(
                channel=str(name),
                customers=int(customers),
                buyers=int(buyers),
                with_cost=int(with_cost),
                average_cac=average_cac,
                average_clv=average_clv,
                clv_cac=ratio,
            )
        )
    return out


# --------------------------------------------------------------------------- order history, read safely


@dataclass(frozen=True)
class OrderHistory:
    """The report's parts computed from the orders (DuckDB) as of one day."""

    retention: Retention
    cohorts: pl.DataFrame
    decline: Decline
    trend: SalesTrend


# Reading the same orders again within this many seconds reuses the last answer: the child
# process a SQLite read needs costs a second or two, and figures as of a past day only
# change when orders are back-dated.
HISTORY_TTL_SECONDS = 300.0
_history_cache: dict[tuple[str, date, int], tuple[float, OrderHistory]] = {}
_history_lock = threading.Lock()


def order_history(engine: Engine, *, as_of: date, decliners_shown: int = 25) -> OrderHistory:
    """Retention, cohorts, decliners and the sales trend as of as_of (read in a child process for SQLite)."""
    key = (engine.url.render_as_string(hide_password=True), as_of, decliners_shown)
    now = time.monotonic()
    with _history_lock:
        cached = _history_cache.get(key)
        if cached is not None and now - cached[0] < HISTORY_TTL_SECONDS:
            return cached[1]
    if engine.dialect.name == "sqlite":
        history = _history_in_child(engine, as_of=as_of, decliners_shown=decliners_shown)
    else:
        history = history_here(engine, as_of=as_of, decliners_shown=decliners_shown)
    with _history_lock:
        for stale in [k for k, (t, _) in _history_cache.items() if now - t >= HISTORY_TTL_SECONDS]:
            del _history_cache[stale]
        _history_cache[key] = (now, history)
    return history


def history_here(engine: Engine, *, as_of: date, decliners_shown: int = 25) -> OrderHistory:
    """order_history computed in this process (PostgreSQL; or SQLite in a process with no SQLite connection open)."""
    conn = duckdb_connection(engine)
    try:
        return OrderHistory(
            retention=retention_rate(conn, as_of=as_of),
            cohorts=cohort_curves(conn, as_of=as_of),
            decline=decliners(conn, as_of=as_of, limit=decliners_shown),
            trend=sales_trend(conn, as_of=as_of),
        )
    finally:
        conn.close()


def _history_in_child(engine: Engine, *, as_of: date, decliners_shown: int) -> OrderHistory:
    # DuckDB's SQLite scanner links its own SQLite. POSIX file locks belong to a process,
    # so when the scanner closes the database file, the locks this process's sqlite3
    # connections hold on it are gone: later reads and writes then failed ("locking
    # protocol") or crashed on the shared-memory index. A child process has locks of its own.
    with tempfile.TemporaryDirectory(prefix="patron-equity-") as folder:
        out = f"{folder}/history.pickle"
        request = {
            "url": engine.url.render_as_string(hide_password=False),
            "as_of": as_of.isoformat(),
            "decliners_shown": decliners_shown,
            "out": out,
        }
        with tempfile.TemporaryFile(mode="w+") as errors:
            done = subprocess.run(
                [sys.executable, "-m", "patron.analytics.equity"],
                input=json.dumps(request),
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                check=False,
            )
            errors.seek(0)
            stderr = errors.read()
        if done.returncode != 0:
            try:
                failure = json.loads(done.stdout)
            except ValueError:
                tail = "\n".join(stderr.strip().splitlines()[-5:])
                raise PatronError(
                    f"reading the order history failed (exit status {done.returncode}): {tail}", status=500
                ) from None
            raise PatronError(failure["message"], status=failure["status"])
        # The file was written by our own child into a folder only this user can read.
        with open(out, "rb") as fh:
            return pickle.load(fh)


def _child_main() -> int:
    """Compute order_history for the request on stdin and pickle it to the file it names."""
    from patron.db import make_engine

    request = json.loads(sys.stdin.read())
    engine = make_engine(request["url"])  # no connection is opened: DuckDB reads the file itself
    try:
        history = history_here(
            engine, as_of=date.fromisoformat(request["as_of"]), decliners_shown=request["decliners_shown"]
        )
    except PatronError as exc:
        print(json.dumps({"message": exc.message, "status": exc.status}))
        return 1
    with open(request["out"], "wb") as fh:
        pickle.dump(history, fh)
    return 0


# --------------------------------------------------------------------------- over the order history (DuckDB)

PURCHASES = """
live_customers AS (
    SELECT id AS customer_id FROM customers WHERE merged_into_id IS NULL
),
refunds AS (
    SELECT order_id, SUM(amount) AS refunded
    FROM order_returns
    WHERE CAST(returned_at AS DATE) <= :as_of
    GROUP BY order_id
),
purchases AS (
    SELECT o.customer_id,
           CAST(o.placed_at AS DATE) AS day,
           CAST(o.total - COALESCE(r.refunded, 0) AS DOUBLE) AS spend
    FROM orders AS o
    JOIN live_customers AS c ON c.customer_id = o.customer_id
    LEFT JOIN refunds AS r ON r.order_id = o.id
    WHERE o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :as_of
)"""

RETENTION = f"""
WITH {PURCHASES},
buyers AS (
    SELECT customer_id,
           MAX(CASE WHEN day > :previous_start AND day <= :current_start THEN 1 ELSE 0 END) AS bought_before,
           MAX(CASE WHEN day > :current_start THEN 1 ELSE 0 END) AS bought_since
    FROM purchases
    WHERE day > :previous_start
    GROUP BY customer_id
)
SELECT CAST(COALESCE(SUM(bought_before), 0) AS BIGINT) AS previous_buyers,
       CAST(COALESCE(SUM(bought_before * bought_since), 0) AS BIGINT) AS retained
FROM buyers
"""

DECLINERS = f"""
WITH {PURCHASES},
history AS (
    SELECT customer_id,
           MIN(day) AS first_purchase,
           MAX(day) AS last_purchase,
           SUM(CASE WHEN day <= :window_start THEN 1 ELSE 0 END) AS prior_orders,
           SUM(CASE WHEN day <= :window_start THEN spend ELSE 0 END) AS prior_spend,
           SUM(CASE WHEN day > :window_start THEN 1 ELSE 0 END) AS recent_orders,
           SUM(CASE WHEN day > :window_start THEN spend ELSE 0 END) AS recent_spend
    FROM purchases
    GROUP BY customer_id
),
rates AS (
    -- The prior period runs from the first purchase day to the window start, both included.
    SELECT customer_id, first_purchase, last_purchase, prior_orders, prior_spend, recent_orders, recent_spend,
           DATE_DIFF('day', first_purchase, :window_start) + 1 AS prior_days
    FROM history
    WHERE prior_orders >= :min_orders AND first_purchase <= :window_start
),
expected AS (
    SELECT *,
           CAST(prior_orders AS DOUBLE) * :window_days / prior_days AS expected_orders,
           prior_spend * :window_days / prior_days AS expected_spend
    FROM rates
    WHERE prior_days >= :window_days
),
flagged AS (
    SELECT *,
           GREATEST(expected_spend - recent_spend, 0.0) AS shortfall
    FROM expected
    WHERE expected_orders >= :min_expected
      AND (recent_orders < :drop_share * expected_orders
           OR (expected_spend > 0 AND recent_spend < :drop_share * expected_spend))
)
SELECT customer_id, first_purchase, last_purchase,
       CAST(prior_orders AS BIGINT) AS prior_orders, CAST(prior_days AS BIGINT) AS prior_days, prior_spend,
       CAST(recent_orders AS BIGINT) AS recent_orders, recent_spend, expected_orders, expected_spend, shortfall,
       COUNT(*) OVER () AS total, SUM(shortfall) OVER () AS total_shortfall
FROM flagged
ORDER BY shortfall DESC, customer_id
LIMIT :row_limit
"""

MONTHLY_REVENUE = f"""
WITH {PURCHASES}
SELECT YEAR(day) * 12 + MONTH(day) - 1 AS month_no,
       SUM(spend) AS revenue,
       COUNT(*) AS orders
FROM purchases
WHERE day >= :start
GROUP BY YEAR(day) * 12 + MONTH(day) - 1
ORDER BY month_no
"""

FIRST_PURCHASE = f"""
WITH {PURCHASES}
SELECT MIN(day) AS first_day FROM purchases
"""


def retention_rate(conn: duckdb.DuckDBPyConnection, *, as_of: date) -> Retention:
    """Of the buyers of the year before the last 12 months, the share who bought in the last 12 months."""
    current_start = as_of - timedelta(days=365)
    previous_start = current_start - timedelta(days=365)
    row = run_query(conn, RETENTION, as_of=as_of, previous_start=previous_start, current_start=current_start).row(
        0, named=True
    )
    previous, retained = int(row["previous_buyers"]), int(row["retained"])
    return Retention(
        previous_start=previous_start,
        current_start=current_start,
        previous_buyers=previous,
        retained=retained,
        rate=_share(retained, previous),
    )


def cohort_curves(conn: duckdb.DuckDBPyConnection, *, as_of: date, cohorts: int = COHORTS_SHOWN) -> pl.DataFrame:
    """queries.cohort_retention for the latest `cohorts` acquisition months."""
    df = cohort_retention(conn, as_of=as_of)
    if df.height == 0:
        return df
    months = df["cohort_month"].unique().sort().tail(cohorts)
    return df.filter(pl.col("cohort_month").is_in(months.implode()))


def decliners(
    conn: duckdb.DuckDBPyConnection,
    *,
    as_of: date,
    window_days: int = 90,
    min_orders: int = 3,
    drop: float = 0.5,
    min_expected: float = 1.0,
    limit: int = 50,
) -> Decline:
    """Customers buying well below their own earlier rate in the last window_days (rule: module docstring)."""
    if window_days < 1 or min_orders < 1 or not 0 < drop <= 1 or min_expected <= 0 or limit < 1:
        raise InvalidInput("decline rule: window_days, min_orders and limit >= 1, 0 < drop <= 1, min_expected > 0")
    df = run_query(
        conn,
        DECLINERS,
        as_of=as_of,
        window_start=as_of - timedelta(days=window_days),
        window_days=float(window_days),
        min_orders=min_orders,
        drop_share=float(drop),
        min_expected=float(min_expected),
        row_limit=limit,
    )
    total = int(df["total"][0]) if df.height else 0
    shortfall = float(df["total_shortfall"][0]) if df.height else 0.0
    return Decline(
        window_days=window_days,
        min_orders=min_orders,
        drop=drop,
        min_expected=min_expected,
        total=total,
        shortfall=shortfall,
        rows=df.drop("total", "total_shortfall").to_dicts(),
    )


def _with_scores(session: Session, decline: Decline, *, run_id: int) -> Decline:
    """The listed decliners with their names and the run's segment, P(alive) and CLV (one query)."""
    ids = [row["customer_id"] for row in decline.rows]
    if not ids:
        return decline
    c, s = Customer, CustomerScore
    found = {
        r.id: r
        for r in session.execute(
            select(c.id, c.first_name, c.last_name, c.email, s.rfm_segment, s.p_alive, s.churn_band, s.clv)
            .outerjoin(s, (s.customer_id == c.id) & (s.run_id == run_id))
            .where(c.id.in_(ids))
        )
    }
    rows = []
    for row in decline.rows:
        extra = found.get(row["customer_id"])
        name = f"{extra.first_name} {extra.last_name}".strip() if extra else ""
        rows.append(
            {
                **row,
                "name": name or (extra.email if extra else None) or f"Customer {row['customer_id']}",
                "rfm_segment": extra.rfm_segment if extra else None,
                "p_alive": extra.p_alive if extra else None,
                "churn_band": extra.churn_band if extra else None,
                "clv": extra.clv if extra else None,
            }
        )
    return Decline(**{**decline.__dict__, "rows": rows})


def _month_no(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(month_no: int) -> date:
    return date(month_no // 12, month_no % 12 + 1, 1)


def sales_trend(
    conn: duckdb.DuckDBPyConnection, *, as_of: date, months: int = 3, threshold: float = 0.10
) -> SalesTrend:
    """Net revenue of the last `months` full months against a year earlier (or the months before); alert on a fall."""
    if months < 1 or not 0 < threshold < 1:
        raise InvalidInput("sales trend: months >= 1 and 0 < threshold < 1")
    last_day = calendar.monthrange(as_of.year, as_of.month)[1]
    # The newest full month: as_of's own when as_of is its last day, else the one before.
    last_full = _month_no(as_of) - (0 if as_of.day == last_day else 1)
    recent_nos = list(range(last_full - months + 1, last_full + 1))
    year_nos = [m - 12 for m in recent_nos]
    preceding_nos = [m - months for m in recent_nos]
    first = run_query(conn, FIRST_PURCHASE, as_of=as_of)["first_day"][0]
    first_no = _month_no(first) if first is not None else None
    if first_no is not None and first_no <= year_nos[0]:
        comparison, earlier_nos = "year_earlier", year_nos
    elif first_no is not None and first_no <= preceding_nos[0]:
        comparison, earlier_nos = "preceding", preceding_nos
    else:
        comparison, earlier_nos = "none", []
    start_no = min([*recent_nos, *earlier_nos])
    rows = run_query(conn, MONTHLY_REVENUE, as_of=as_of, start=_month_start(start_no))
    by_month = {int(r["month_no"]): (float(r["revenue"] or 0.0), int(r["orders"])) for r in rows.to_dicts()}

    def month(no: int) -> MonthRevenue:
        revenue, orders = by_month.get(no, (0.0, 0))
        return MonthRevenue(month=_month_start(no), revenue=revenue, orders=orders)

    recent = [month(m) for m in recent_nos]
    earlier = [month(m) for m in earlier_nos]
    recent_revenue = sum(m.revenue for m in recent)
    earlier_revenue = sum(m.revenue for m in earlier) if earlier else None
    change = None
    if earlier_revenue is not None and earlier_revenue > 0:
        change = (recent_revenue - earlier_revenue) / earlier_revenue
    return SalesTrend(
        comparison=comparison,
        recent=recent,
        earlier=earlier,
        recent_revenue=recent_revenue,
        earlier_revenue=earlier_revenue,
        change=change,
        threshold=threshold,
        alert=change is not None and change <= -threshold,
        history=[month(m) for m in range(start_no, _month_no(as_of) + 1)],
    )


# --------------------------------------------------------------------------- one customer


def customer_outlook(session: Session, *, customer_id: int) -> Outlook | None:
    """The customer's scores across finished runs and their insights; None when no run has finished yet."""
    latest_run = repository.latest_completed_run(session)
    if latest_run is None:
        return None
    # The caller has the live customer (the 360 redirects merged ids to their survivor).
    history = repository.customer_score_history(session, customer_id)
    latest, run = history[-1] if history else (None, None)
    return Outlook(
        latest=latest,
        latest_run=run,
        history=history,
        insight=repository.customer_insight(session, customer_id),
    )


# --------------------------------------------------------------------------- one run, described

MODEL_LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"}


@dataclass(frozen=True)
class FitSummary:
    """One fitted model: its parameters with standard errors and its log-likelihood."""

    name: str
    label: str
    params: list[tuple[str, float, float | None]]  # (name, value, standard error)
    log_likelihood: float | None
    error: str | None = None
    customers: int | None = None


@dataclass(frozen=True)
class HoldoutSummary:
    """One purchase model's holdout errors (predicted against actual repeat purchases)."""

    name: str
    label: str
    rmse: float | None
    mae: float | None
    total_actual: float | None
    total_predicted: float | None
    total_error: float | None
    tracking_error: float | None
    error: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """What a run chose and why, its fits, its holdout check and its timings, from the run's JSON."""

    model: str | None
    model_label: str | None
    reason: str
    fits: list[FitSummary]
    holdout: list[HoldoutSummary]
    validation_skipped: str | None
    by_frequency: list[dict[str, Any]]
    timings: list[tuple[str, float]]


def describe_run(run: AnalysisRun) -> RunSummary:
    """The run's model choice with the reason, parameters with standard errors, holdout errors and timings."""
    fits_json = run.fits or {}
    validation = run.validation or {}
    fits = []
    for name in ("bgnbd", "pareto", "gamma_gamma"):
        fit = fits_json.get(name)
        if not isinstance(fit, dict):
            continue
        errors = fit.get("standard_errors") or {}
        fits.append(
            FitSummary(
                name=name,
                label=MODEL_LABELS[name],
                params=[(k, float(v), errors.get(k)) for k, v in (fit.get("params") or {}).items()],
                log_likelihood=fit.get("log_likelihood"),
                error=fit.get("error"),
                customers=fit.get("customers"),
            )
        )
    holdout = []
    for name, entry in (validation.get("models") or {}).items():
        metrics = entry.get("metrics") or {}
        holdout.append(
            HoldoutSummary(
                name=name,
                label=MODEL_LABELS.get(name, name),
                rmse=metrics.get("rmse"),
                mae=metrics.get("mae"),
                total_actual=metrics.get("total_actual"),
                total_predicted=metrics.get("total_predicted"),
                total_error=metrics.get("total_error"),
                tracking_error=metrics.get("tracking_error"),
                error=entry.get("error"),
            )
        )
    return RunSummary(
        model=run.model,
        model_label=MODEL_LABELS.get(run.model or "", run.model),
        reason=_model_reason(run, holdout),
        fits=fits,
        holdout=holdout,
        validation_skipped=validation.get("skipped"),
        by_frequency=list(validation.get("by_frequency") or []),
        timings=[(k, float(v)) for k, v in (run.timings or {}).items() if isinstance(v, int | float)],
    )


def _model_reason(run: AnalysisRun, holdout: list[HoldoutSummary]) -> str:
    if run.model is None:
        return "No purchase model could be used, so this run has RFM scores but no predictions."
    label = MODEL_LABELS.get(run.model, run.model)
    if run.requested_model != "auto":
        return f"{label} was requested for this run."
    chosen = (run.validation or {}).get("chosen")
    scored = {h.name: h for h in holdout if h.rmse is not None}
    if chosen == run.model and len(scored) > 1:
        others = ", ".join(f"{h.label} {h.rmse:.3f}" for n, h in scored.items() if n != chosen)
        return (
            f"{label} predicted the holdout period's repeat purchases per customer best "
            f"(RMSE {scored[chosen].rmse:.3f} against {others}), so it was refitted on all data and used."
        )
    if chosen and chosen != run.model:
        winner = MODEL_LABELS.get(chosen, chosen)
        return f"{winner} won the holdout check but did not converge on all data; {label} was used."
    if chosen == run.model:
        return f"{label} was the only model that could be checked on the holdout period."
    return (
        f"There was no holdout check, so both models were fitted on all data and {label}, "
        "with the higher log-likelihood, was used."
    )


if __name__ == "__main__":
    # Through the package's module, so what is pickled names patron.analytics.equity's classes, not __main__'s.
    from patron.analytics import equity

    raise SystemExit(equity._child_main())
