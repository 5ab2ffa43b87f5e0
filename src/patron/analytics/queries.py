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
  (`order_returns.amount`) up to the end of the period; money arrives as Float64;
- money is added up in whole cents as BIGINT (the views' money is DECIMAL(18, 2)): as
  exact as the decimals, and DuckDB adds BIGINTs far faster than the 38-digit decimals
  that decimal arithmetic and sums turn into. A sum of cents as DOUBLE divided by 100 is
  the same double as the decimal sum cast to DOUBLE (below 2^53 cents both are the
  correctly rounded quotient);
- per-customer rows come unordered; the Python side sorts them by customer_id.
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
WITH refunds AS (
    -- Only what had been refunded by the end of the period: later refunds were unknown then.
    SELECT order_id, CAST(SUM(CAST(amount * 100 AS BIGINT)) AS BIGINT) AS refunded_cents
    FROM order_returns
    WHERE CAST(returned_at AS DATE) <= :period_end
    GROUP BY order_id
),
purchase_days AS (
    -- Merged customers' orders are left to the final join with the live customers: a join
    -- of every order with the customers here cost more than grouping a few extra orders.
    SELECT o.customer_id,
           CAST(o.placed_at AS DATE) AS day,
           COUNT(*) AS n_orders,
           CAST(SUM(CAST(o.total * 100 AS BIGINT) - COALESCE(r.refunded_cents, 0)) AS BIGINT) AS cents
    FROM orders AS o
    LEFT JOIN refunds AS r ON r.order_id = o.id
    WHERE o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :as_of
    GROUP BY o.customer_id, CAST(o.placed_at AS DATE)
),
calibration AS (
    SELECT customer_id,
           MIN(day) AS first_purchase,
           MAX(day) AS last_purchase,
           SUM(n_orders) AS n_orders,
           COUNT(*) - 1 AS frequency,
           SUM(cents) AS cents,
           -- A customer's days are distinct, so this is the first day's spend; the repeat
           -- spend is the rest (no window numbering the days needed).
           ARG_MIN(cents, day) AS first_day_cents
    FROM purchase_days
    WHERE day <= :period_end
    GROUP BY customer_id
),
holdout AS (
    SELECT customer_id, COUNT(*) AS purchase_days
    FROM purchase_days
    WHERE day > :period_end
    GROUP BY customer_id
)
SELECT c.id AS customer_id,
       p.first_purchase,
       p.last_purchase,
       CAST(COALESCE(p.n_orders, 0) AS BIGINT) AS n_orders,
       COALESCE(p.frequency, 0) AS frequency,
       CAST(DATE_DIFF('day', p.first_purchase, p.last_purchase) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS recency,
       CAST(DATE_DIFF('day', p.first_purchase, :period_end) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS T,
       CASE WHEN p.frequency > 0 THEN (CAST(p.cents - p.first_day_cents AS DOUBLE) / 100) / p.frequency ELSE 0.0 END
           AS monetary_value,
       CAST(COALESCE(p.cents, 0) AS DOUBLE) / 100 AS revenue,
       -- Defined only for customers who had bought by the end of calibration (as in lifetimes).
       CASE WHEN p.customer_id IS NOT NULL THEN COALESCE(h.purchase_days, 0) END AS frequency_holdout,
       CAST(DATE_DIFF('day', :period_end, :as_of) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS duration_holdout
FROM customers AS c
LEFT JOIN calibration AS p ON p.customer_id = c.id
LEFT JOIN holdout AS h ON h.customer_id = c.id
WHERE c.merged_into_id IS NULL
"""

CUSTOMER_SUMMARIES_WITH_HOLDOUT = """
WITH refunds AS (
    -- Per period, only what had been refunded by its end: later refunds were unknown then.
    SELECT order_id,
           CAST(SUM(CAST(amount * 100 AS BIGINT)) AS BIGINT) AS refunded_cents,
           CAST(SUM(CASE WHEN CAST(returned_at AS DATE) <= :calibration_end
                         THEN CAST(amount * 100 AS BIGINT) ELSE 0 END) AS BIGINT) AS calibration_refunded_cents
    FROM order_returns
    WHERE CAST(returned_at AS DATE) <= :as_of
    GROUP BY order_id
),
purchase_days AS (
    SELECT o.customer_id,
           CAST(o.placed_at AS DATE) AS day,
           COUNT(*) AS n_orders,
           CAST(SUM(CAST(o.total * 100 AS BIGINT) - COALESCE(r.refunded_cents, 0)) AS BIGINT) AS cents,
           CAST(SUM(CAST(o.total * 100 AS BIGINT) - COALESCE(r.calibration_refunded_cents, 0)) AS BIGINT)
               AS calibration_cents
    FROM orders AS o
    LEFT JOIN refunds AS r ON r.order_id = o.id
    WHERE o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :as_of
    GROUP BY o.customer_id, CAST(o.placed_at AS DATE)
),
histories AS (
    -- Both periods in one pass. A customer's first day is in the calibration period
    -- whenever any of their days is, so MIN(day) and ARG_MIN(..., day) serve both.
    SELECT customer_id,
           MIN(day) AS first_purchase,
           MAX(day) AS last_purchase,
           SUM(n_orders) AS n_orders,
           COUNT(*) AS n_days,
           SUM(cents) AS cents,
           ARG_MIN(cents, day) AS first_day_cents,
           MAX(CASE WHEN day <= :calibration_end THEN day END) AS calibration_last_purchase,
           SUM(CASE WHEN day <= :calibration_end THEN n_orders END) AS calibration_n_orders,
           COUNT(CASE WHEN day <= :calibration_end THEN day END) AS calibration_days,
           SUM(CASE WHEN day <= :calibration_end THEN calibration_cents END) AS calibration_cents,
           ARG_MIN(calibration_cents, day) AS calibration_first_day_cents
    FROM purchase_days
    GROUP BY customer_id
)
SELECT c.id AS customer_id,
       h.first_purchase,
       h.last_purchase,
       CAST(COALESCE(h.n_orders, 0) AS BIGINT) AS n_orders,
       COALESCE(h.n_days - 1, 0) AS frequency,
       CAST(DATE_DIFF('day', h.first_purchase, h.last_purchase) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS recency,
       CAST(DATE_DIFF('day', h.first_purchase, :as_of) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS T,
       CASE WHEN h.n_days > 1 THEN (CAST(h.cents - h.first_day_cents AS DOUBLE) / 100) / (h.n_days - 1) ELSE 0.0 END
           AS monetary_value,
       CAST(COALESCE(h.cents, 0) AS DOUBLE) / 100 AS revenue,
       CASE WHEN h.calibration_days > 0 THEN h.first_purchase END AS calibration_first_purchase,
       h.calibration_last_purchase,
       CAST(COALESCE(h.calibration_n_orders, 0) AS BIGINT) AS calibration_n_orders,
       CASE WHEN h.calibration_days > 0 THEN h.calibration_days - 1 ELSE 0 END AS calibration_frequency,
       CAST(DATE_DIFF('day', h.first_purchase, h.calibration_last_purchase) AS DOUBLE) / CAST(:unit_days AS DOUBLE)
           AS calibration_recency,
       CASE WHEN h.calibration_days > 0
            THEN CAST(DATE_DIFF('day', h.first_purchase, :calibration_end) AS DOUBLE) / CAST(:unit_days AS DOUBLE)
       END AS calibration_T,
       CASE WHEN h.calibration_days > 1
            THEN (CAST(h.calibration_cents - h.calibration_first_day_cents AS DOUBLE) / 100) / (h.calibration_days - 1)
            ELSE 0.0
       END AS calibration_monetary_value,
       CAST(COALESCE(h.calibration_cents, 0) AS DOUBLE) / 100 AS calibration_revenue,
       CASE WHEN h.calibration_days > 0 THEN h.n_days - h.calibration_days END AS frequency_holdout,
       CAST(DATE_DIFF('day', :calibration_end, :as_of) AS DOUBLE) / CAST(:unit_days AS DOUBLE) AS duration_holdout
FROM customers AS c
LEFT JOIN histories AS h ON h.customer_id = c.id
WHERE c.merged_into_id IS NULL
"""

FIRST_PURCHASE_DAY = """
SELECT MIN(CAST(o.placed_at AS DATE)) AS first_day
FROM orders AS o
JOIN customers AS c ON c.id = o.customer_id
WHERE c.merged_into_id IS NULL AND o.status <> 'cancelled' AND CAST(o.placed_at AS DATE) <= :as_of
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
product_names AS (
    -- Cleaned once per product rather than once per line sold.
    SELECT id AS product_id,
           NULLIF(TRIM(SPLIT_PART(category_path, '/', 1)), '') AS top_category,
           NULLIF(TRIM(category_path), '') AS category,
           NULLIF(TRIM(brand), '') AS brand,
           tier
    FROM products
),
-- Names as numbers in name order: the lines carry and group by integers, and "then the
-- alphabetically first name" becomes "then the lowest code".
top_categories AS (
    SELECT top_category, ROW_NUMBER() OVER (ORDER BY top_category) AS code
    FROM (SELECT DISTINCT top_category FROM product_names WHERE top_category IS NOT NULL) AS names
),
brands AS (
    SELECT brand, ROW_NUMBER() OVER (ORDER BY brand) AS code
    FROM (SELECT DISTINCT brand FROM product_names WHERE brand IS NOT NULL) AS names
),
categories AS (
    SELECT category, ROW_NUMBER() OVER (ORDER BY category) AS code
    FROM (SELECT DISTINCT category FROM product_names WHERE category IS NOT NULL) AS names
),
channels AS (
    SELECT channel, ROW_NUMBER() OVER (ORDER BY channel) AS code
    FROM (SELECT DISTINCT channel FROM window_orders WHERE channel IS NOT NULL) AS names
),
radix AS (
    -- Above every code of its kind; see the rank keys below.
    SELECT (SELECT COUNT(*) FROM top_categories) + 1 AS top_categories,
           (SELECT COUNT(*) FROM brands) + 1 AS brands,
           (SELECT COUNT(*) FROM channels) + 1 AS channels
),
product_codes AS (
    SELECT p.product_id,
           t.code AS top_code,
           b.code AS brand_code,
           c.code AS category_code,
           p.tier,
           COALESCE(LOWER(p.top_category) IN (:children_categories), FALSE) AS for_children
    FROM product_names AS p
    LEFT JOIN top_categories AS t ON t.top_category = p.top_category
    LEFT JOIN brands AS b ON b.brand = p.brand
    LEFT JOIN categories AS c ON c.category = p.category
),
lines AS (
    SELECT w.customer_id,
           p.top_code,
           p.brand_code,
           p.category_code,
           p.tier,
           p.for_children,
           l.unit_price,
           l.quantity * CAST(l.unit_price * 100 AS BIGINT) - CAST(l.discount * 100 AS BIGINT) AS cents,
           l.discount > 0 AS discounted
    FROM window_orders AS w
    JOIN order_lines AS l ON l.order_id = w.order_id
    JOIN product_codes AS p ON p.product_id = l.product_id
),
category_prices AS (
    -- A leaf category's mean unit price over every line sold in the window.
    SELECT category_code, CAST(SUM(unit_price) AS DOUBLE) / COUNT(*) AS mean_price
    FROM lines
    WHERE category_code IS NOT NULL
    GROUP BY category_code
),
totals AS (
    SELECT l.customer_id,
           CAST(SUM(l.cents) AS BIGINT) AS cents,
           CAST(SUM(CASE WHEN l.discounted THEN l.cents ELSE 0 END) AS BIGINT) AS discounted_cents,
           CAST(SUM(CASE WHEN l.tier = 'premium' THEN l.cents ELSE 0 END) AS BIGINT) AS premium_cents,
           CAST(SUM(CASE WHEN l.tier = 'standard' THEN l.cents ELSE 0 END) AS BIGINT) AS standard_cents,
           CAST(SUM(CASE WHEN l.tier = 'value' THEN l.cents ELSE 0 END) AS BIGINT) AS value_cents,
           AVG(CAST(l.unit_price AS DOUBLE) / NULLIF(cp.mean_price, 0)) AS price_index,
           BOOL_OR(l.for_children) AS has_children_signal
    FROM lines AS l
    LEFT JOIN category_prices AS cp ON cp.category_code = l.category_code
    GROUP BY l.customer_id
),
customer_brands AS (
    -- One pass over the lines for every by-value ranking below.
    SELECT customer_id, top_code, brand_code, CAST(SUM(cents) AS BIGINT) AS cents
    FROM lines
    GROUP BY customer_id, top_code, brand_code
),
-- Rankings: the winner of each group is ARG_MIN over the rank key
-- -amount * radix + code, smallest for the largest amount and, among equal amounts, for
-- the lowest code (the alphabetically first name). An ARG_MIN per group is much cheaper
-- than numbering every group's rows with a ROW_NUMBER() window; the key is an exact BIGINT
-- (an overflow is an error in both engines, never a wrong winner), and a row without a
-- name has a NULL key and never wins.
-- ARG_MIN's argument is never NULL where its key is not: DuckDB's arg_min would skip such
-- a row, Spark's min_by returns its NULL.
category_spend AS (
    -- Each top category's value and its best brand.
    SELECT b.customer_id,
           b.top_code,
           CAST(SUM(b.cents) AS BIGINT) AS cents,
           ARG_MIN(b.brand_code, -b.cents * r.brands + b.brand_code) AS brand_code,
           ARG_MIN(b.cents, -b.cents * r.brands + b.brand_code) AS brand_cents
    FROM customer_brands AS b
    CROSS JOIN radix AS r
    WHERE b.top_code IS NOT NULL
    GROUP BY b.customer_id, b.top_code
),
favourite_categories AS (
    SELECT s.customer_id,
           ARG_MIN(s.top_code, -s.cents * r.top_categories + s.top_code) AS top_code,
           ARG_MIN(s.cents, -s.cents * r.top_categories + s.top_code) AS cents,
           -- 0: the category has no named brand.
           ARG_MIN(COALESCE(s.brand_code, 0), -s.cents * r.top_categories + s.top_code) AS brand_code,
           ARG_MIN(COALESCE(s.brand_cents, 0), -s.cents * r.top_categories + s.top_code) AS brand_cents
    FROM category_spend AS s
    CROSS JOIN radix AS r
    GROUP BY s.customer_id
),
brand_spend AS (
    SELECT customer_id, brand_code, CAST(SUM(cents) AS BIGINT) AS cents
    FROM customer_brands
    WHERE brand_code IS NOT NULL
    GROUP BY customer_id, brand_code
),
favourite_brands AS (
    SELECT s.customer_id, ARG_MIN(s.brand_code, -s.cents * r.brands + s.brand_code) AS brand_code
    FROM brand_spend AS s
    CROSS JOIN radix AS r
    GROUP BY s.customer_id
),
channel_orders AS (
    SELECT w.customer_id, k.code, COUNT(*) AS n_orders
    FROM window_orders AS w
    LEFT JOIN channels AS k ON k.channel = w.channel
    GROUP BY w.customer_id, k.code
),
order_counts AS (
    SELECT o.customer_id,
           CAST(SUM(o.n_orders) AS BIGINT) AS n_orders,
           ARG_MIN(o.code, -o.n_orders * r.channels + o.code) AS channel_code
    FROM channel_orders AS o
    CROSS JOIN radix AS r
    GROUP BY o.customer_id
)
-- Only customers with orders in the window: the others have nothing to say (window_orders
-- holds live customers' orders only).
SELECT oc.customer_id,
       oc.n_orders,
       CAST(COALESCE(t.cents, 0) AS DOUBLE) / 100 AS spend,
       tc.top_category AS favourite_category,
       fb.brand AS favourite_brand,
       tb.brand AS top_category_brand,
       CASE WHEN fc.brand_code > 0
            THEN (CAST(fc.brand_cents AS DOUBLE) / 100) / NULLIF(CAST(fc.cents AS DOUBLE) / 100, 0)
       END AS brand_loyalty,
       (CAST(t.discounted_cents AS DOUBLE) / 100) / NULLIF(CAST(t.cents AS DOUBLE) / 100, 0) AS discount_share,
       t.price_index,
       (CAST(t.premium_cents AS DOUBLE) / 100) / NULLIF(CAST(t.cents AS DOUBLE) / 100, 0) AS premium_share,
       (CAST(t.standard_cents AS DOUBLE) / 100) / NULLIF(CAST(t.cents AS DOUBLE) / 100, 0) AS standard_share,
       (CAST(t.value_cents AS DOUBLE) / 100) / NULLIF(CAST(t.cents AS DOUBLE) / 100, 0) AS value_share,
       ch.channel AS preferred_channel,
       COALESCE(t.has_children_signal, FALSE) AS has_children_signal
FROM order_counts AS oc
LEFT JOIN channels AS ch ON ch.code = oc.channel_code
LEFT JOIN totals AS t ON t.customer_id = oc.customer_id
LEFT JOIN favourite_categories AS fc ON fc.customer_id = oc.customer_id
LEFT JOIN top_categories AS tc ON tc.code = fc.top_code
LEFT JOIN brands AS tb ON tb.code = fc.brand_code
LEFT JOIN favourite_brands AS f ON f.customer_id = oc.customer_id
LEFT JOIN brands AS fb ON fb.code = f.brand_code
"""

ORDERS_AFTER = """
SELECT COUNT(*) AS n FROM orders WHERE status <> 'cancelled' AND CAST(placed_at AS DATE) > :as_of
"""

COST_MARGIN = """
SELECT SUM(l.quantity * l.unit_price - l.discount) AS revenue,
       SUM(l.quantity * p.unit_cost) AS cost
FROM orders AS o
JOIN order_lines AS l ON l.order_id = o.id
JOIN products AS p ON p.id = l.product_id
WHERE o.status <> 'cancelled'
  AND p.unit_cost IS NOT NULL
  AND CAST(o.placed_at AS DATE) > :window_start AND CAST(o.placed_at AS DATE) <= :as_of
"""

QUERIES = {
    "customer_summaries": CUSTOMER_SUMMARIES,
    "customer_summaries_with_holdout": CUSTOMER_SUMMARIES_WITH_HOLDOUT,
    "first_purchase_day": FIRST_PURCHASE_DAY,
    "daily_transactions": DAILY_TRANSACTIONS,
    "cohort_retention": COHORT_RETENTION,
    "purchase_insights": PURCHASE_INSIGHTS,
    "orders_after": ORDERS_AFTER,
    "cost_margin": COST_MARGIN,
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
    as_of, period_end = _summary_period(as_of, calibration_end, unit)
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


def customer_summaries_with_holdout(
    conn: Backend,
    *,
    as_of: date,
    calibration_end: date,
    unit: Unit = "days",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """customer_summaries up to as_of, and up to calibration_end with the holdout, from one pass over the orders.

    The same two frames as the two customer_summaries calls; grouping the orders by
    customer and day, the costly part, is done once instead of twice.
    """
    as_of, calibration_end = _summary_period(as_of, calibration_end, unit)
    df = run_query(
        conn,
        CUSTOMER_SUMMARIES_WITH_HOLDOUT,
        as_of=as_of,
        calibration_end=calibration_end,
        unit_days=float(UNIT_DAYS[unit]),
    )
    period = [name for name in SUMMARY_SCHEMA if name not in ("customer_id", "frequency_holdout", "duration_holdout")]
    summaries = _cast(df, {name: SUMMARY_SCHEMA[name] for name in ("customer_id", *period)})
    calibration = df.select(
        "customer_id",
        *(pl.col(f"calibration_{name}").alias(name) for name in period),
        "frequency_holdout",
        "duration_holdout",
    )
    return summaries.sort("customer_id"), _cast(calibration, SUMMARY_SCHEMA).sort("customer_id")


def first_purchase_day(conn: Backend, *, as_of: date) -> date | None:
    """The earliest first_purchase of customer_summaries(as_of=as_of), without computing them; None if none."""
    as_of = _utc_day(as_of, "as_of")
    return run_query(conn, FIRST_PURCHASE_DAY, as_of=as_of)["first_day"].cast(pl.Date).item()


def _summary_period(as_of: date, calibration_end: date | None, unit: str) -> tuple[date, date]:
    as_of = _utc_day(as_of, "as_of")
    if unit not in UNIT_DAYS:
        raise InvalidInput(f"unit must be one of {sorted(UNIT_DAYS)}, not {unit!r}")
    period_end = as_of if calibration_end is None else _utc_day(calibration_end, "calibration_end")
    if period_end > as_of:
        raise InvalidInput("calibration_end must not be after as_of")
    return as_of, period_end


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

    One row per customer with orders (not cancelled) in the window; the others have none.
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


def orders_after(conn: Backend, *, as_of: date) -> int:
    """Orders (not cancelled) dated after as_of (UTC days), which a run as of as_of leaves out."""
    as_of = _utc_day(as_of, "as_of")
    return int(run_query(conn, ORDERS_AFTER, as_of=as_of)["n"].item())


def cost_margin(conn: Backend, *, as_of: date, window_days: int = 365) -> float | None:
    """Gross margin (1 - cost / revenue) of the lines sold in the window whose product has a unit cost."""
    as_of = _utc_day(as_of, "as_of")
    revenue, cost = run_query(conn, COST_MARGIN, window_start=as_of - timedelta(days=window_days), as_of=as_of).row(0)
    if revenue is None or cost is None or revenue <= 0:
        return None
    return 1.0 - float(cost) / float(revenue)
