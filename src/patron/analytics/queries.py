"""Per-customer analytics queries, written once in DuckDB SQL and run on DuckDB or Spark.

Each query is one SQL text below. Before it runs, SQLGlot parses it, puts the
parameters in as typed literals and writes it out in the target engine's dialect
(DuckDB or Spark SQL), so there is no second hand-written copy to drift apart. The
text reads the typed views that `patron.analytics.engine` sets up (`orders`,
`order_lines`, `order_returns`, `customers`, `products`).

Conventions shared by every query:

- a purchase is an order that is not cancelled, placed on or before `as_of`, by a
  customer that is not merged into another (merges move the orders to the survivor);
- days are UTC calendar days of `orders.placed_at`;
- an order's spend is `orders.total` minus the refunds and returns booked against it
  (`order_returns.amount`) up to the end of the period; money arrives as Float64.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp

from patron.errors import InvalidInput

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    Backend = duckdb.DuckDBPyConnection | SparkSession

Unit = Literal["days", "weeks"]
UNIT_DAYS = {"days": 1, "weeks": 7}
CHILDREN_CATEGORIES = ("Kids", "Baby")

# --------------------------------------------------------------------------- SQL

CUSTOMER_SUMMARIES = """
WITH live_customers AS (
    SELECT id AS customer_id FROM customers WHERE merged_into_id IS NULL
),
refunds AS (
    -- Only what had been refunded by the end of the period: later refunds were unknown then.
    SELECT order_id, SUM(amount) AS refunded
    FROM order_returns
    WHERE CAST(returned_at AS DATE) <= :period_end
    GROUP BY order_id
),
purchase_days AS (
    SELECT o.customer_id,
           CAST(o.placed_at AS DATE) AS day,
           COUNT(*) AS n_orders,
           SUM(o.total - COALESCE(r.refunded, 0)) AS spend
    FROM orders AS o
    JOIN live_customers AS c ON c.customer_id = o.customer_id
    LEFT JOIN refunds AS r ON r.order_id = o.id
    WHERE o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :as_of
    GROUP BY o.customer_id, CAST(o.placed_at AS DATE)
),
calibration_days AS (
    SELECT customer_id, day, n_orders, spend,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day) AS day_no
    FROM purchase_days
    WHERE day <= :period_end
),
calibration AS (
    SELECT customer_id,
           MIN(day) AS first_purchase,
           MAX(day) AS last_purchase,
           SUM(n_orders) AS n_orders,
           COUNT(*) - 1 AS frequency,
           SUM(spend) AS revenue,
           SUM(CASE WHEN day_no > 1 THEN spend END) AS repeat_spend
    FROM calibration_days
    GROUP BY customer_id
),
holdout AS (
    SELECT customer_id, COUNT(*) AS purchase_days
    FROM purchase_days
    WHERE day > :period_end
    GROUP BY customer_id
)
SELECT c.customer_id,
       p.first_purchase,
       p.last_purchase,
       CAST(COALESCE(p.n_orders, 0) AS BIGINT) AS n_orders,
       COALESCE(p.frequency, 0) AS frequency,
       CAST(DATE_DIFF('day', p.first_purchase, p.last_purchase) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS recency,
       CAST(DATE_DIFF('day', p.first_purchase, :period_end) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS T,
       CASE WHEN p.frequency > 0 THEN CAST(p.repeat_spend AS DOUBLE) / p.frequency ELSE 0.0 END AS monetary_value,
       CAST(COALESCE(p.revenue, 0) AS DOUBLE) AS revenue,
       -- Defined only for customers who had bought by the end of calibration (as in lifetimes).
       CASE WHEN p.customer_id IS NOT NULL THEN COALESCE(h.purchase_days, 0) END AS frequency_holdout,
       CAST(DATE_DIFF('day', :period_end, :as_of) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS duration_holdout
FROM live_customers AS c
LEFT JOIN calibration AS p ON p.customer_id = c.customer_id
LEFT JOIN holdout AS h ON h.customer_id = c.customer_id
ORDER BY c.customer_id
"""

DAILY_TRANSACTIONS = """
WITH live_customers AS (
    SELECT id AS customer_id FROM customers WHERE merged_into_id IS NULL
),
purchase_days AS (
    SELECT DISTINCT o.customer_id, CAST(o.placed_at AS DATE) AS day
    FROM orders AS o
    JOIN live_customers AS c ON c.customer_id = o.customer_id
    WHERE o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :end_day
),
first_days AS (
    SELECT customer_id, MIN(day) AS first_day FROM purchase_days GROUP BY customer_id
)
SELECT d.day,
       COUNT(*) FILTER (WHERE d.day = f.first_day) AS first_purchases,
       COUNT(*) FILTER (WHERE d.day > f.first_day) AS repeat_purchases
FROM purchase_days AS d
JOIN first_days AS f ON f.customer_id = d.customer_id
WHERE d.day >= :start_day
GROUP BY d.day
ORDER BY d.day
"""

COHORT_RETENTION = """
WITH live_customers AS (
    SELECT id AS customer_id FROM customers WHERE merged_into_id IS NULL
),
active_months AS (
    -- Months as one running number (year * 12 + month - 1): no dialect's date_trunc needed.
    SELECT DISTINCT o.customer_id,
           YEAR(CAST(o.placed_at AS DATE)) * 12 + MONTH(CAST(o.placed_at AS DATE)) - 1 AS month_no
    FROM orders AS o
    JOIN live_customers AS c ON c.customer_id = o.customer_id
    WHERE o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :as_of
),
cohorts AS (
    SELECT customer_id, MIN(month_no) AS cohort_no FROM active_months GROUP BY customer_id
),
sizes AS (
    SELECT cohort_no, COUNT(*) AS cohort_size FROM cohorts GROUP BY cohort_no
)
SELECT k.cohort_no,
       a.month_no - k.cohort_no AS months_since,
       s.cohort_size,
       COUNT(*) AS active_customers
FROM active_months AS a
JOIN cohorts AS k ON k.customer_id = a.customer_id
JOIN sizes AS s ON s.cohort_no = k.cohort_no
GROUP BY k.cohort_no, a.month_no - k.cohort_no, s.cohort_size
ORDER BY k.cohort_no, months_since
"""

PURCHASE_INSIGHTS = """
WITH live_customers AS (
    SELECT id AS customer_id FROM customers WHERE merged_into_id IS NULL
),
window_orders AS (
    SELECT o.id AS order_id, o.customer_id, o.channel
    FROM orders AS o
    JOIN live_customers AS c ON c.customer_id = o.customer_id
    WHERE o.status <> 'cancelled'
      AND CAST(o.placed_at AS DATE) > :window_start
      AND CAST(o.placed_at AS DATE) <= :as_of
),
lines AS (
    SELECT w.customer_id,
           NULLIF(TRIM(SPLIT_PART(p.category_path, '/', 1)), '') AS top_category,
           NULLIF(TRIM(p.category_path), '') AS category,
           NULLIF(TRIM(p.brand), '') AS brand,
           p.tier,
           l.unit_price,
           l.quantity * l.unit_price - l.discount AS value,
           l.discount > 0 AS discounted
    FROM window_orders AS w
    JOIN order_lines AS l ON l.order_id = w.order_id
    JOIN products AS p ON p.id = l.product_id
),
category_prices AS (
    -- A leaf category's mean unit price over every line sold in the window.
    SELECT category, CAST(SUM(unit_price) AS DOUBLE) / COUNT(*) AS mean_price
    FROM lines
    WHERE category IS NOT NULL
    GROUP BY category
),
totals AS (
    SELECT l.customer_id,
           SUM(l.value) AS spend,
           SUM(CASE WHEN l.discounted THEN l.value ELSE 0 END) AS discounted_spend,
           SUM(CASE WHEN l.tier = 'premium' THEN l.value ELSE 0 END) AS premium_spend,
           SUM(CASE WHEN l.tier = 'standard' THEN l.value ELSE 0 END) AS standard_spend,
           SUM(CASE WHEN l.tier = 'value' THEN l.value ELSE 0 END) AS value_spend,
           AVG(CAST(l.unit_price AS DOUBLE) / NULLIF(cp.mean_price, 0)) AS price_index,
           BOOL_OR(COALESCE(LOWER(l.top_category) IN (:children_categories), FALSE)) AS has_children_signal
    FROM lines AS l
    LEFT JOIN category_prices AS cp ON cp.category = l.category
    GROUP BY l.customer_id
),
customer_brands AS (
    -- One pass over the lines for every by-value ranking below.
    SELECT customer_id, top_category, brand, SUM(value) AS spend
    FROM lines
    GROUP BY customer_id, top_category, brand
),
category_spend AS (
    SELECT customer_id, top_category, SUM(spend) AS spend,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY SUM(spend) DESC, top_category) AS rank_no
    FROM customer_brands
    WHERE top_category IS NOT NULL
    GROUP BY customer_id, top_category
),
brand_spend AS (
    SELECT customer_id, brand,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY SUM(spend) DESC, brand) AS rank_no
    FROM customer_brands
    WHERE brand IS NOT NULL
    GROUP BY customer_id, brand
),
top_category_brands AS (
    SELECT b.customer_id, b.brand, b.spend,
           ROW_NUMBER() OVER (PARTITION BY b.customer_id ORDER BY b.spend DESC, b.brand) AS rank_no
    FROM customer_brands AS b
    JOIN category_spend AS cs
      ON cs.customer_id = b.customer_id AND cs.top_category = b.top_category AND cs.rank_no = 1
    WHERE b.brand IS NOT NULL
),
channels AS (
    SELECT customer_id, channel, COUNT(*) AS n_orders,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY COUNT(*) DESC, channel) AS rank_no
    FROM window_orders
    GROUP BY customer_id, channel
),
order_counts AS (
    SELECT customer_id, COUNT(*) AS n_orders FROM window_orders GROUP BY customer_id
)
SELECT c.customer_id,
       COALESCE(oc.n_orders, 0) AS n_orders,
       CAST(COALESCE(t.spend, 0) AS DOUBLE) AS spend,
       cs.top_category AS favourite_category,
       bs.brand AS favourite_brand,
       tb.brand AS top_category_brand,
       CAST(tb.spend AS DOUBLE) / NULLIF(CAST(cs.spend AS DOUBLE), 0) AS brand_loyalty,
       CAST(t.discounted_spend AS DOUBLE) / NULLIF(CAST(t.spend AS DOUBLE), 0) AS discount_share,
       t.price_index,
       CAST(t.premium_spend AS DOUBLE) / NULLIF(CAST(t.spend AS DOUBLE), 0) AS premium_share,
       CAST(t.standard_spend AS DOUBLE) / NULLIF(CAST(t.spend AS DOUBLE), 0) AS standard_share,
       CAST(t.value_spend AS DOUBLE) / NULLIF(CAST(t.spend AS DOUBLE), 0) AS value_share,
       ch.channel AS preferred_channel,
       COALESCE(t.has_children_signal, FALSE) AS has_children_signal
FROM live_customers AS c
LEFT JOIN order_counts AS oc ON oc.customer_id = c.customer_id
LEFT JOIN totals AS t ON t.customer_id = c.customer_id
LEFT JOIN category_spend AS cs ON cs.customer_id = c.customer_id AND cs.rank_no = 1
LEFT JOIN brand_spend AS bs ON bs.customer_id = c.customer_id AND bs.rank_no = 1
LEFT JOIN top_category_brands AS tb ON tb.customer_id = c.customer_id AND tb.rank_no = 1
LEFT JOIN channels AS ch ON ch.customer_id = c.customer_id AND ch.rank_no = 1
ORDER BY c.customer_id
"""

QUERIES = {
    "customer_summaries": CUSTOMER_SUMMARIES,
    "daily_transactions": DAILY_TRANSACTIONS,
    "cohort_retention": COHORT_RETENTION,
    "purchase_insights": PURCHASE_INSIGHTS,
}

# Result schemas: both engines' answers are cast to these, so they compare column by column.
SUMMARY_SCHEMA = {
    "customer_id": pl.Int64,
    "first_purchase": pl.Date,
    "last_purchase": pl.Date,
    "n_orders": pl.Int64,
    "frequency": pl.Int64,
    "recency": pl.Float64,
    "T": pl.Float64,
    "monetary_value": pl.Float64,
    "revenue": pl.Float64,
    "frequency_holdout": pl.Int64,
    "duration_holdout": pl.Float64,
}
INSIGHTS_SCHEMA = {
    "customer_id": pl.Int64,
    "n_orders": pl.Int64,
    "spend": pl.Float64,
    "favourite_category": pl.String,
    "favourite_brand": pl.String,
    "top_category_brand": pl.String,
    "brand_loyalty": pl.Float64,
    "discount_share": pl.Float64,
    "price_index": pl.Float64,
    "premium_share": pl.Float64,
    "standard_share": pl.Float64,
    "value_share": pl.Float64,
    "preferred_channel": pl.String,
    "has_children_signal": pl.Boolean,
}


# --------------------------------------------------------------------------- rendering


@cache
def _parsed(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="duckdb")


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool) or value is None:
        return exp.convert(value)
    if isinstance(value, datetime):
        raise TypeError("query parameters take dates, not datetimes")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {value!r} is not finite")
    return exp.convert(value)


def render_sql(sql: str, dialect: Literal["duckdb", "spark"], **params: Any) -> str:
    """The query text with its parameters as literals, in the engine's dialect."""
    tree = _parsed(sql).copy()
    lists = {name: value for name, value in params.items() if isinstance(value, list | tuple)}
    for node in list(tree.find_all(exp.In)):
        # `x IN (:name)` with a list parameter becomes `x IN ('a', 'b')`; an empty list
        # becomes a NULL comparison, which is never true.
        if len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Placeholder):
            name = node.expressions[0].name
            if name in lists:
                items = [_literal(v) for v in lists[name]] or [exp.null()]
                node.set("expressions", items)
    scalars = {name: _literal(value) for name, value in params.items() if name not in lists}
    missing = {p.name for p in tree.find_all(exp.Placeholder)} - set(scalars)
    if missing:
        raise ValueError(f"missing query parameters: {sorted(missing)}")
    tree = exp.replace_placeholders(tree, **scalars)
    return tree.sql(dialect=dialect)


def _is_duckdb(conn: Any) -> bool:
    return isinstance(conn, duckdb.DuckDBPyConnection)


def run_query(conn: Backend, sql: str, **params: Any) -> pl.DataFrame:
    """Run one query text on DuckDB or on a Spark session and return the rows as polars."""
    if _is_duckdb(conn):
        return conn.execute(render_sql(sql, "duckdb", **params)).pl()
    if not hasattr(conn, "createDataFrame"):
        raise TypeError(f"expected a DuckDB connection or a SparkSession, got {type(conn).__name__}")
    return pl.from_arrow(conn.sql(render_sql(sql, "spark", **params)).toArrow())


def _cast(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def _utc_day(value: date, name: str) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} is a naive datetime; pass a date or a timezone-aware datetime")
        return value.astimezone(UTC).date()
    if not isinstance(value, date):
        raise InvalidInput(f"{name} must be a date")
    return value


# --------------------------------------------------------------------------- queries


def customer_summaries(
    conn: Backend,
    *,
    as_of: date,
    calibration_end: date | None = None,
    unit: Unit = "days",
) -> pl.DataFrame:
    """Frequency, recency, T and spend per unmerged customer (lifetimes' RFM convention)."""
    as_of = _utc_day(as_of, "as_of")
    if unit not in UNIT_DAYS:
        raise InvalidInput(f"unit must be one of {sorted(UNIT_DAYS)}, not {unit!r}")
    period_end = as_of if calibration_end is None else _utc_day(calibration_end, "calibration_end")
    if period_end > as_of:
        raise InvalidInput("calibration_end must not be after as_of")
    df = run_query(
        conn,
        CUSTOMER_SUMMARIES,
        as_of=as_of,
        period_end=period_end,
        unit_days=float(UNIT_DAYS[unit]),
    )
    df = _cast(df, SUMMARY_SCHEMA).sort("customer_id")
    if calibration_end is None:
        df = df.drop("frequency_holdout", "duration_holdout")
    return df


def daily_transactions(conn: Backend, *, start: date, end: date, unit: Unit = "days") -> pl.DataFrame:
    """First and repeat purchase days per day (or 7-day period) from start to end, with a running total.

    A repeat purchase is a customer's purchase day after their first one, so the counts
    are what BG/NBD-type models predict; periods without purchases are present with 0.
    Columns: period (0, 1, ...), period_start, first_purchases, repeat_purchases,
    cumulative_repeat_purchases.
    """
    start, end = _utc_day(start, "start"), _utc_day(end, "end")
    if end < start:
        raise InvalidInput("end must not be before start")
    if unit not in UNIT_DAYS:
        raise InvalidInput(f"unit must be one of {sorted(UNIT_DAYS)}, not {unit!r}")
    rows = run_query(conn, DAILY_TRANSACTIONS, start_day=start, end_day=end)
    rows = rows.select(
        pl.col("day").cast(pl.Date),
        pl.col("first_purchases").cast(pl.Int64),
        pl.col("repeat_purchases").cast(pl.Int64),
    )
    calendar = pl.DataFrame({"day": pl.date_range(start, end, interval="1d", eager=True)})
    step = UNIT_DAYS[unit]
    daily = calendar.join(rows, on="day", how="left").with_columns(
        pl.col("first_purchases", "repeat_purchases").fill_null(0),
        period=((pl.col("day") - pl.lit(start)).dt.total_days() // step).cast(pl.Int64),
    )
    out = (
        daily.group_by("period")
        .agg(
            pl.col("day").min().alias("period_start"),
            pl.col("first_purchases").sum(),
            pl.col("repeat_purchases").sum(),
        )
        .sort("period")
    )
    return out.with_columns(cumulative_repeat_purchases=pl.col("repeat_purchases").cum_sum())


def cohort_retention(conn: Backend, *, as_of: date) -> pl.DataFrame:
    """Acquisition month x months since acquisition: active customers and the share retained.

    A customer's cohort is the month of their first purchase; they are active in a month
    when they bought in it. Every month from acquisition to as_of's month is listed
    (0 active when nobody bought). Columns: cohort_month, months_since, cohort_size,
    active_customers, retention.
    """
    as_of = _utc_day(as_of, "as_of")
    rows = run_query(conn, COHORT_RETENTION, as_of=as_of)
    rows = rows.select(
        pl.col("cohort_no").cast(pl.Int64),
        pl.col("months_since").cast(pl.Int64),
        pl.col("cohort_size").cast(pl.Int64),
        pl.col("active_customers").cast(pl.Int64),
    )
    last_month = as_of.year * 12 + as_of.month - 1
    cohorts = rows.select("cohort_no", "cohort_size").unique()
    grid = cohorts.with_columns(
        months_since=pl.int_ranges(0, last_month - pl.col("cohort_no") + 1, dtype=pl.Int64)
    ).explode("months_since")
    out = grid.join(rows.drop("cohort_size"), on=["cohort_no", "months_since"], how="left").with_columns(
        pl.col("active_customers").fill_null(0),
        cohort_month=pl.date(pl.col("cohort_no") // 12, pl.col("cohort_no") % 12 + 1, 1),
    )
    return out.select(
        "cohort_month",
        "months_since",
        "cohort_size",
        "active_customers",
        retention=pl.col("active_customers") / pl.col("cohort_size"),
    ).sort("cohort_month", "months_since")


def purchase_insights(
    conn: Backend,
    *,
    as_of: date,
    window_days: int = 365,
    children_categories: tuple[str, ...] = CHILDREN_CATEGORIES,
) -> pl.DataFrame:
    """What each unmerged customer bought in the window_days up to as_of: tastes, price level, channel.

    Line value is quantity x unit_price - line discount. Columns: n_orders and spend in
    the window; favourite_category (top level of category_path) and favourite_brand by
    value; top_category_brand and brand_loyalty (its share of the favourite category's
    value); discount_share (share of value bought with a line discount); price_index
    (mean of unit_price / the leaf category's mean unit price in the window; 1 = typical);
    premium_share, standard_share, value_share (products.tier by value);
    preferred_channel (most orders; ties alphabetical); has_children_signal (bought from
    a top-level category in children_categories, case-insensitive).
    """
    as_of = _utc_day(as_of, "as_of")
    if window_days < 1:
        raise InvalidInput("window_days must be at least 1")
    df = run_query(
        conn,
        PURCHASE_INSIGHTS,
        as_of=as_of,
        window_start=as_of - timedelta(days=window_days),
        children_categories=[c.strip().lower() for c in children_categories],
    )
    return _cast(df, INSIGHTS_SCHEMA).sort("customer_id")
