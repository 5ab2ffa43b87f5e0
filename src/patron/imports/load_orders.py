"""Set-based upsert of a converted orders batch.

Rows of one order share its `order_id` (and must be next to each other in the file);
with a `sku` column each row is one order line, without one each row is a whole order.
The order's customer is found by (source, customer_id) or by email, following merges to
the survivor; unknown customers and products are created as stubs or the order is
rejected, as the mapping says. An order is written whole or not at all: if one of its
rows is bad, all its rows are rejected with the reason.

Re-importing an order compares it with what is stored: identical is `unchanged`,
anything different (header fields, amounts or lines) is `updated` in place. With
`returns_prefix`, orders whose id starts with it are returns of goods bought earlier:
each row becomes a return against the customer's latest earlier purchase of that SKU.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import polars as pl
from sqlalchemy.engine import Connection

from patron import events
from patron.imports import staging as st
from patron.imports.loaders import LoadContext, Outcome, publish, reject_rows
from patron.imports.mapping import Mapping
from patron.imports.sources import EMPTY_LINE, RawBatch, Rejected
from patron.models.customer import survivor_sql

# The customer a matched row is now (itself, or the one it was merged into).
SURVIVOR = survivor_sql("c")

ORDER_STAGE = {
    "order_ext": "text",
    "customer_ext": "text",
    "customer_email": "text",
    "first_name": "text",
    "last_name": "text",
    "country": "text",
    "placed_at": "ts",
    "channel": "text",
    "store_code": "text",
    "status": "text",
    "currency": "text",
    "subtotal": "cents",
    "discount": "cents",
    "shipping_fee": "cents",
    "tax": "cents",
    "total": "cents",
}
LINE_STAGE = {
    "order_ext": "text",
    "line_no": "int",
    "sku": "text",
    "product_name": "text",
    "quantity": "int",
    "unit_price": "cents",
    "discount": "cents",
}
RETURN_STAGE = {
    "return_ext": "text",
    "customer_ext": "text",
    "customer_email": "text",
    "sku": "text",
    "quantity": "int",
    "amount": "cents",
    "returned_at": "ts",
    "row_no": "int",
    "customer_id": "int",
    "product_id": "int",
    "order_line_id": "int",
    "order_id": "int",
    "existing": "int",
    "reject": "text",
}
TEMP_TABLES = (
    "stage_orders",
    "stage_lines",
    "res_lines",
    "res_orders",
    "new_customers",
    "missing_products",
    "changed_lines",
    "fin_orders",
    "stage_returns",
)
ORDER_LEVEL = [
    "customer_id",
    "customer_email",
    "customer_first_name",
    "customer_last_name",
    "customer_name",
    "customer_country",
    "placed_at",
    "channel",
    "store_code",
    "status",
    "currency",
    "subtotal",
    "discount",
    "shipping_fee",
    "tax",
    "total",
]
DEFAULTS = {"channel": "online", "status": "placed", "currency": "USD"}


@dataclass
class Shaped:
    """A batch shaped into orders, lines and returns, with the rows rejected on the way."""

    orders: pl.DataFrame
    lines: pl.DataFrame
    returns: pl.DataFrame
    rejected: list[Rejected]


def prepare(mapping: Mapping, batch: RawBatch, frame: pl.DataFrame) -> Shaped:
    """Everything that needs no database: group rows into orders and check them."""
    rejected: list[Rejected] = []
    frame = _with_order_ids(frame, mapping)
    bad, frame = _reject_orders_of_bad_rows(frame, mapping, batch)
    rejected += bad
    if frame.height == 0:
        return Shaped(frame, frame, frame, rejected)
    frame = _complete(frame)
    prefix = mapping.returns_prefix
    returns = frame.filter(pl.col("order_id").str.starts_with(prefix)) if prefix else frame.clear()
    sales = frame.filter(~pl.col("order_id").str.starts_with(prefix)) if prefix else frame
    bad, sales = _check_rows(sales)
    rejected += bad
    orders, lines, bad = _orders_and_lines(sales)
    rejected += bad
    return Shaped(orders, lines, returns, rejected)


def write(ctx: LoadContext, shaped: Shaped) -> Outcome:
    out = Outcome(rejected=list(shaped.rejected))
    if shaped.orders.height:
        _write_orders(ctx, shaped.orders, shaped.lines, out)
    staged_returns = _write_returns(ctx, shaped.returns, out) if shaped.returns.height else False
    if shaped.orders.height or staged_returns:
        publish(ctx, _written_orders(ctx, orders=shaped.orders.height > 0, returns=staged_returns))
    st.drop(ctx.conn, *TEMP_TABLES)
    return out


def _written_orders(ctx: LoadContext, *, orders: bool, returns: bool) -> list[events.Event]:
    """The batch's new orders, changed orders and returns, as one event each."""
    queries = []
    if orders:
        queries.append(
            (events.OrdersRecorded, "SELECT new_id FROM fin_orders WHERE reject IS NULL AND order_id IS NULL")
        )
        queries.append(
            (
                events.OrdersUpdated,
                "SELECT order_id FROM fin_orders WHERE reject IS NULL AND order_id IS NOT NULL "
                "AND (changed = 1 OR lines_changed = 1)",
            )
        )
    if returns:
        queries.append(
            (events.OrdersReturned, "SELECT DISTINCT order_id FROM stage_returns WHERE existing = 0 AND reject IS NULL")
        )
    found = []
    for event, sql in queries:
        ids = [oid for (oid,) in st.fetch(ctx.conn, sql)]
        if ids:
            found.append(event(order_ids=ids, via="import"))
    return found


# -- shaping the batch (Polars) --------------------------------------------------------------


def _with_order_ids(frame: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    template = mapping.order_id_template
    if "order_id" in frame.columns or not template:
        return frame
    before, _, after = template.partition("{row}")
    return frame.with_columns(
        pl.concat_str([pl.lit(before), pl.col("_row").cast(pl.String), pl.lit(after)]).alias("order_id")
    )


def _reject_orders_of_bad_rows(
    frame: pl.DataFrame, mapping: Mapping, batch: RawBatch
) -> tuple[list[Rejected], pl.DataFrame]:
    """Rows the converter rejected take the rest of their order with them, and so do rows
    the reader could not split that lie between two rows of one order."""
    column = next((c for c, m in mapping.column_maps.items() if m.field == "order_id"), None)
    if column is None or column not in batch.columns:
        return [], frame
    rows, ids = batch.rows, batch.columns[column]
    # An unreadable row has no order id; rows of an order are adjacent, so one inside an
    # order belongs to it. (Between two orders it is only reported: it may be either's.)
    unreadable = []
    for r in batch.rejected:
        if r.reason == EMPTY_LINE:
            continue
        i = bisect.bisect(rows, r.row)
        if 0 < i < len(rows) and ids[i - 1] is not None and (ids[i] or "").strip() == ids[i - 1].strip():
            unreadable.append((ids[i - 1].strip(), r.row))
    if frame.height == len(rows) and not unreadable:
        return [], frame
    raw = pl.DataFrame({"_row": rows, "order_id": ids}, schema={"_row": pl.Int64, "order_id": pl.String})
    raw = raw.with_columns(pl.col("order_id").str.strip_chars()).filter(~pl.col("_row").is_in(frame["_row"].implode()))
    inside = pl.DataFrame(unreadable, schema={"order_id": pl.String, "_row": pl.Int64}, orient="row")
    bad = (
        pl.concat([raw.select("order_id", "_row"), inside])
        .group_by("order_id")
        .agg(pl.col("_row").min().alias("_bad_row"))
    )
    return _reject_with(frame, bad)


def _reject_with(frame: pl.DataFrame, bad: pl.DataFrame) -> tuple[list[Rejected], pl.DataFrame]:
    joined = frame.join(bad, on="order_id", how="left")
    mask = joined["_bad_row"].is_not_null()
    rejected = [
        Rejected(
            row=r, column="order_id", value=o, reason=f"order {o} has a rejected row ({b}), so none of it is imported"
        )
        for r, o, b in joined.filter(mask).select("_row", "order_id", "_bad_row").iter_rows()
    ]
    return rejected, frame.filter(~mask)


def _complete(frame: pl.DataFrame) -> pl.DataFrame:
    """Add absent optional columns, so later steps can name them."""
    types = {"quantity": pl.Int64, "placed_at": pl.Datetime("us", "UTC")}
    for name in [*ORDER_LEVEL, "sku", "product_name", "quantity", "unit_price", "line_discount", "line_total"]:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=types.get(name, _money_or_text(name))).alias(name))
    if "customer_name" in frame.columns:
        parts = pl.col("customer_name").str.strip_chars()
        frame = frame.with_columns(
            pl.coalesce("customer_first_name", parts.str.replace(r"\s*\S+$", "").replace("", None)).alias(
                "customer_first_name"
            ),
            pl.coalesce("customer_last_name", parts.str.extract(r"(\S+)$")).alias("customer_last_name"),
        )
    return frame


def _money_or_text(name: str):
    money = {"subtotal", "discount", "shipping_fee", "tax", "total", "unit_price", "line_discount", "line_total"}
    return pl.Int64 if name in money else pl.String


def _check_rows(sales: pl.DataFrame) -> tuple[list[Rejected], pl.DataFrame]:
    """Row checks; an order with a failing row is rejected whole (its other rows say why)."""
    has_lines = sales["sku"].is_not_null().any()
    q = pl.col("quantity").fill_null(1)
    if has_lines:
        # A line total without a unit price: round the unit price up to the cent and book
        # the rounding as a line discount, so the line still costs exactly what the file says.
        unit = pl.coalesce("unit_price", (pl.col("line_total") + q - 1) // q)
        disc = pl.coalesce(
            "line_discount", pl.when(pl.col("unit_price").is_null()).then(unit * q - pl.col("line_total")).otherwise(0)
        )
        sales = sales.with_columns(quantity=q, unit_price=unit, line_discount=disc)
        sales = sales.with_columns(
            (pl.col("quantity") * pl.col("unit_price") - pl.col("line_discount")).alias("_amount")
        )
    else:
        sales = sales.with_columns(pl.lit(None, dtype=pl.Int64).alias("_amount"))
    checks = [
        (
            # Per order: exports such as Shopify's give the email on an order's first row only.
            (pl.col("customer_id").is_null() & pl.col("customer_email").is_null()).all().over("order_id"),
            "no customer id or email (a guest sale): skipped",
            "customer_id",
        )
    ]
    if has_lines:
        checks += [
            (pl.col("sku").is_null(), "no sku for this order line", "sku"),
            (pl.col("quantity") <= 0, "quantity must be positive (returns are recorded separately)", "quantity"),
            (pl.col("unit_price").is_null(), "give unit_price or line_total for the line", "unit_price"),
            (pl.col("line_total") < 0, "line_total must not be negative", "line_total"),
            (pl.col("_amount") < 0, "line_discount is larger than quantity * unit_price", "line_discount"),
        ]
    why = pl.lit(None, dtype=pl.String)
    where = pl.lit(None, dtype=pl.String)
    for mask, reason, column in reversed(checks):
        why = pl.when(mask.fill_null(False)).then(pl.lit(reason)).otherwise(why)
        where = pl.when(mask.fill_null(False)).then(pl.lit(column)).otherwise(where)
    sales = sales.with_columns(_why=why, _where=where)
    failing = sales.filter(pl.col("_why").is_not_null())
    if failing.height == 0:
        return [], sales
    rejected = [
        Rejected(row=r, column=c, value=None, reason=w)
        for r, c, w in failing.select("_row", "_where", "_why").iter_rows()
    ]
    bad = failing.group_by("order_id").agg(pl.col("_row").min().alias("_bad_row"))
    others, sales = _reject_with(sales.filter(pl.col("_why").is_null()), bad)
    return rejected + others, sales


def _orders_and_lines(sales: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[Rejected]]:
    if sales.height == 0:
        return sales.clear(), sales.clear(), []
    has_lines = sales["sku"].is_not_null().any()
    sales = sales.with_columns(pl.coalesce("customer_id", pl.lit(None, dtype=pl.String)).alias("customer_id"))
    first = [pl.col(c).drop_nulls().first().alias(c) for c in ORDER_LEVEL]
    orders = sales.group_by("order_id", maintain_order=True).agg(
        *first,
        pl.col("customer_id").drop_nulls().n_unique().alias("_ids"),
        pl.col("customer_email").drop_nulls().n_unique().alias("_emails"),
        pl.col("_amount").sum().alias("_lines_sum"),
        pl.col("_row").min().alias("first_row"),
        pl.col("_row").alias("rows"),
        pl.len().alias("n_rows"),
    )
    orders = orders.with_columns(
        *(pl.col(c).fill_null(v) for c, v in DEFAULTS.items()),
        pl.col("shipping_fee").fill_null(0),
        pl.col("tax").fill_null(0),
    )
    given_sub, given_disc, total = pl.col("subtotal"), pl.col("discount"), pl.col("total")
    if has_lines:
        lines_sum = pl.col("_lines_sum")
        # A subtotal below the lines' sum with no discount column: the difference is an
        # order-level discount the export only shows in the subtotal (Shopify does this).
        disc = pl.coalesce(given_disc, pl.when(given_sub < lines_sum).then(lines_sum - given_sub).otherwise(0))
        sub_bad = given_sub.is_not_null() & (
            (given_disc.is_not_null() & (given_sub != lines_sum)) | (given_sub > lines_sum)
        )
        orders = orders.with_columns(subtotal=lines_sum, discount=disc, _sub_bad=sub_bad, _given_sub=given_sub)
    else:
        disc = given_disc.fill_null(0)
        sub = pl.coalesce(given_sub, total - pl.col("shipping_fee") - pl.col("tax") + disc)
        orders = orders.with_columns(subtotal=sub, discount=disc, _sub_bad=pl.lit(False), _given_sub=given_sub)
    computed = pl.col("subtotal") - pl.col("discount") + pl.col("shipping_fee") + pl.col("tax")
    orders = orders.with_columns(_computed=computed)
    problems = [
        (pl.col("_ids") > 1, pl.lit("rows of this order name different customers")),
        (pl.col("_emails") > 1, pl.lit("rows of this order give different customer emails")),
        (pl.col("placed_at").is_null(), pl.lit("no placed_at date for this order")),
        (pl.col("subtotal").is_null(), pl.lit("give subtotal or total for an order without lines")),
        (
            pl.col("_sub_bad").fill_null(False),
            pl.format("subtotal {} does not match the sum of the lines ({})", _money("_given_sub"), _money("subtotal")),
        ),
        (pl.col("discount") > pl.col("subtotal"), pl.lit("discount is larger than the subtotal")),
        (pl.col("_computed") < 0, pl.lit("the order total would be negative")),
        (
            total.is_not_null() & (total != pl.col("_computed")),
            pl.format(
                "total {} does not equal subtotal - discount + shipping_fee + tax ({})",
                _money("total"),
                _money("_computed"),
            ),
        ),
    ]
    reason = pl.lit(None, dtype=pl.String)
    for mask, why in reversed(problems):
        reason = pl.when(mask.fill_null(False)).then(why).otherwise(reason)
    orders = orders.with_columns(_reason=reason, total=pl.col("_computed"))
    bad = orders.filter(pl.col("_reason").is_not_null())
    rejected = [
        Rejected(row=r, column="order_id", value=o, reason=f"order {o}: {why}")
        for o, rows, why in bad.select("order_id", "rows", "_reason").iter_rows()
        for r in rows
    ]
    orders = orders.filter(pl.col("_reason").is_null())
    lines = (
        sales.filter(pl.col("order_id").is_in(orders["order_id"].implode()) & pl.col("sku").is_not_null())
        .with_columns((pl.col("_row").rank("ordinal").over("order_id")).cast(pl.Int64).alias("line_no"))
        .select(
            pl.col("order_id").alias("order_ext"),
            "line_no",
            "sku",
            "product_name",
            "quantity",
            "unit_price",
            pl.col("line_discount").alias("discount"),
        )
    )
    return orders, lines, rejected


def _money(column: str) -> pl.Expr:
    c = pl.col(column)
    return pl.format("{}.{}", c // 100, (c % 100).cast(pl.String).str.zfill(2))


# -- writing (set-based SQL) --------------------------------------------------------------------


def _write_orders(ctx: LoadContext, orders: pl.DataFrame, lines: pl.DataFrame, out: Outcome) -> None:
    """Resolve, classify and write the batch's orders with a few set-based statements.

    Each step builds a new temporary table from joins (CREATE TABLE AS) instead of
    updating the staged rows in place: on PostgreSQL, repeated UPDATEs of a staging
    table bloat it and force nested-loop plans; joins let the planner hash.
    """
    conn, mapping = ctx.conn, ctx.mapping
    staged = orders.select(
        pl.col("order_id").alias("order_ext"),
        pl.col("customer_id").alias("customer_ext"),
        "customer_email",
        pl.col("customer_first_name").alias("first_name"),
        pl.col("customer_last_name").alias("last_name"),
        pl.col("customer_country").alias("country"),
        "placed_at",
        "channel",
        "store_code",
        "status",
        "currency",
        "subtotal",
        "discount",
        "shipping_fee",
        "tax",
        "total",
    )
    st.load(conn, "stage_orders", staged, ORDER_STAGE)
    st.load(conn, "stage_lines", lines, LINE_STAGE)
    x = conn.exec_driver_sql
    if mapping.unknown_products == "stub":
        out.stubs["products"] += _stub_products(conn)
    st.create_as(
        conn,
        "res_lines",
        "SELECT l.*, p.id AS product_id FROM stage_lines l LEFT JOIN products p ON p.sku = l.sku",
        index=("order_ext",),
    )
    source = _quote(mapping.source)
    st.create_as(
        conn,
        "res_orders",
        "SELECT s.*, COALESCE("
        f"(SELECT {SURVIVOR} FROM customer_external_ids x JOIN customers c "
        f"ON c.id = x.customer_id WHERE x.source = {source} AND x.external_id = s.customer_ext), "
        f"(SELECT {SURVIVOR} FROM customers c WHERE c.email = s.customer_email)) AS customer_id, "
        "(SELECT id FROM stores WHERE stores.code = s.store_code) AS store_id, "
        "(SELECT id FROM orders o WHERE o.external_id = s.order_ext) AS order_id FROM stage_orders s",
        index=("order_ext",),
    )
    stubbed = "NULL"
    if mapping.unknown_customers == "stub":
        out.stubs["customers"] += _stub_customers(conn, mapping.source)
        stubbed = "(SELECT id FROM new_customers n WHERE n.k = COALESCE(r.customer_ext, '@' || r.customer_email))"
    st.create_as(
        conn,
        "missing_products",
        "SELECT order_ext, MIN(sku) AS sku FROM res_lines WHERE product_id IS NULL GROUP BY order_ext",
        index=("order_ext",),
    )
    c = lambda col: st.cents(col, conn)  # noqa: E731
    d = lambda a, b: st.distinct(a, b, conn)  # noqa: E731
    differs = " OR ".join(
        [
            "l.id IS NULL",
            "l.product_id <> rl.product_id",
            "l.quantity <> rl.quantity",
            f"{c('l.unit_price')} <> rl.unit_price",
            f"{c('l.discount')} <> rl.discount",
        ]
    )
    # A first import of these orders (the common case) has nothing to compare or update.
    existing = conn.exec_driver_sql("SELECT 1 FROM res_orders WHERE order_id IS NOT NULL LIMIT 1").first() is not None
    if not existing:
        st.create(conn, "changed_lines", {"order_ext": "text"})
    else:
        _changed_lines(conn, differs)
    started = _ts_literal(conn, ctx.run_started_at)
    # Returns recorded in Patron set an order's status; a file saying only 'placed' (the
    # default) must not undo that when the same order is imported again.
    kept_status = (
        "CASE WHEN o.status IN ('partially_returned', 'returned') AND r.status = 'placed' THEN o.status "
        "ELSE r.status END"
    )
    header_differs = " OR ".join(
        [
            d("o.customer_id", "r.cid"),
            d("o.placed_at", "r.placed_at"),
            d("o.channel", "r.channel"),
            d("o.store_id", "r.store_id"),
            d("o.status", kept_status),
            d("o.currency", "r.currency"),
            *(d(c(f"o.{m}"), f"r.{m}") for m in ("subtotal", "discount", "shipping_fee", "tax", "total")),
        ]
    )
    # Rows of an order must be adjacent: an order this run already wrote, coming back in a
    # later batch, would otherwise replace the lines it had.
    reject = (
        "CASE WHEN r.cid IS NULL THEN 'unknown customer ' || COALESCE(r.customer_ext, r.customer_email) "
        "|| ' (not in Patron; import customers first or allow stubs)' "
        "WHEN r.store_code IS NOT NULL AND r.store_id IS NULL THEN 'unknown store code ' || r.store_code "
        "WHEN mp.sku IS NOT NULL THEN 'unknown product ' || mp.sku || ' (import products first or allow stubs)' "
        f"WHEN o.id IS NOT NULL AND (o.created_at >= {started} OR o.updated_at >= {started}) THEN 'order ' "
        "|| r.order_ext || ' appears again after other orders in this file; keep the rows of each order together' "
        "END"
    )
    # Without stored orders in the batch PostgreSQL would still hash the whole orders table
    # for this join (a scan per batch that grows with the table); SQLite looks ids up.
    stored = "o.id = r.order_id" if existing or not st.is_pg(conn) else "FALSE"
    new_id = (
        "nextval(pg_get_serial_sequence('orders', 'id'))"
        if st.is_pg(conn)
        else "(SELECT COALESCE(MAX(id), 0) FROM orders) + ROW_NUMBER() OVER ()"
    )
    st.create_as(
        conn,
        "fin_orders",
        f"SELECT r.*, {reject} AS reject, CASE WHEN o.id IS NULL THEN 0 WHEN ({header_differs}) THEN 1 ELSE 0 END "
        f"AS changed, CASE WHEN cl.order_ext IS NULL THEN 0 ELSE 1 END AS lines_changed, {kept_status} AS kept_status, "
        f"CASE WHEN r.order_id IS NULL THEN {new_id} END AS new_id "
        f"FROM (SELECT r.*, COALESCE(r.customer_id, {stubbed}) AS cid FROM res_orders r) r "
        f"LEFT JOIN orders o ON {stored} LEFT JOIN missing_products mp ON mp.order_ext = r.order_ext "
        "LEFT JOIN changed_lines cl ON cl.order_ext = r.order_ext",
        index=("order_ext",),
    )
    m = lambda col: st.money(col, conn)  # noqa: E731
    now = st.now_sql(conn)
    ok = "f.reject IS NULL"
    x(
        "INSERT INTO orders (id, external_id, customer_id, placed_at, channel, store_id, status, currency, subtotal, "
        "discount, shipping_fee, tax, total, created_at, updated_at) "
        "SELECT f.new_id, f.order_ext, f.cid, f.placed_at, f.channel, f.store_id, f.status, f.currency, "
        f"{m('f.subtotal')}, {m('f.discount')}, {m('f.shipping_fee')}, {m('f.tax')}, {m('f.total')}, {now}, {now} "
        f"FROM fin_orders f WHERE {ok} AND f.order_id IS NULL"
    )
    sets = (
        [f"{f} = f.{f}" for f in ("placed_at", "channel", "store_id", "currency")]
        + ["status = f.kept_status"]
        + [f"{f} = {m('f.' + f)}" for f in ("subtotal", "discount", "shipping_fee", "tax", "total")]
    )
    if existing:
        x(
            f"UPDATE orders SET customer_id = f.cid, {', '.join(sets)}, updated_at = {now} FROM fin_orders f "
            f"WHERE orders.id = f.order_id AND {ok} AND (f.changed = 1 OR f.lines_changed = 1)"
        )
        x(
            "DELETE FROM order_lines WHERE order_id IN "
            f"(SELECT f.order_id FROM fin_orders f WHERE {ok} AND f.lines_changed = 1)"
        )
    x(
        "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price, discount) "
        "SELECT COALESCE(f.order_id, f.new_id), rl.line_no, rl.product_id, rl.quantity, "
        f"{m('rl.unit_price')}, {m('rl.discount')} FROM res_lines rl JOIN fin_orders f ON f.order_ext = rl.order_ext "
        f"WHERE {ok} AND (f.order_id IS NULL OR f.lines_changed = 1)"
    )
    results = pl.DataFrame(
        st.fetch(
            conn,
            "SELECT order_ext, reject, CASE WHEN order_id IS NULL THEN 1 ELSE 0 END, changed, lines_changed "
            "FROM fin_orders",
        ),
        schema={"order_ext": pl.String, "reject": pl.String, "is_new": pl.Int64, "changed": pl.Int64, "lc": pl.Int64},
        orient="row",
    )
    joined = orders.select("order_id", "rows", "n_rows").join(results, left_on="order_id", right_on="order_ext")
    for order_id, rows, n, reason, is_new, changed, lines_changed in joined.iter_rows():
        if reason is not None:
            out.rejected += [Rejected(row=r, column="order_id", value=order_id, reason=reason) for r in rows]
        elif is_new:
            out.inserted += n
        elif changed or lines_changed:
            out.updated += n
        else:
            out.unchanged += n


def _changed_lines(conn: Connection, differs: str) -> None:
    """Stored orders of this batch whose lines differ from the file's (or differ in number)."""
    st.create_as(
        conn,
        "changed_lines",
        "SELECT DISTINCT rl.order_ext FROM res_lines rl JOIN res_orders r ON r.order_ext = rl.order_ext "
        "LEFT JOIN order_lines l ON l.order_id = r.order_id AND l.line_no = rl.line_no "
        f"WHERE r.order_id IS NOT NULL AND ({differs}) "
        "UNION SELECT r.order_ext FROM res_orders r WHERE r.order_id IS NOT NULL AND "
        "(SELECT COUNT(*) FROM order_lines l WHERE l.order_id = r.order_id) <> "
        "(SELECT COUNT(*) FROM res_lines rl WHERE rl.order_ext = r.order_ext)",
        index=("order_ext",),
    )


def _resolve_customers(conn: Connection, stage: str, source: str) -> None:
    """customer_id := the survivor of the customer with this external id, else this email."""
    conn.exec_driver_sql(
        f"UPDATE {stage} SET customer_id = (SELECT {SURVIVOR} FROM customer_external_ids x "
        f"JOIN customers c ON c.id = x.customer_id WHERE x.source = {_quote(source)} "
        f"AND x.external_id = {stage}.customer_ext) WHERE customer_ext IS NOT NULL"
    )
    conn.exec_driver_sql(
        f"UPDATE {stage} SET customer_id = (SELECT {SURVIVOR} FROM customers c "
        f"WHERE c.email = {stage}.customer_email) WHERE customer_id IS NULL AND customer_email IS NOT NULL"
    )


def _stub_customers(conn: Connection, source: str) -> int:
    """Create a minimal customer for each unknown one (by external id, else by email)."""
    key = "COALESCE(customer_ext, '@' || customer_email)"
    # The UTC day of the first order, as a DATE (PostgreSQL) or SQLite's 'YYYY-MM-DD' text:
    # SQLite's CAST(... AS DATE) would turn '2024-01-02' into the number 2024.
    first_day = "CAST(MIN(placed_at) AT TIME ZONE 'UTC' AS DATE)" if st.is_pg(conn) else "substr(MIN(placed_at), 1, 10)"
    new_id = (
        "nextval(pg_get_serial_sequence('customers', 'id'))"
        if st.is_pg(conn)
        else "(SELECT COALESCE(MAX(id), 0) FROM customers) + ROW_NUMBER() OVER ()"
    )
    st.create_as(
        conn,
        "new_customers",
        f"SELECT {new_id} AS id, g.* FROM (SELECT {key} AS k, MAX(customer_ext) AS customer_ext, "
        "MAX(customer_email) AS email, MAX(first_name) AS first_name, MAX(last_name) AS last_name, "
        f"MAX(country) AS country, {first_day} AS acquired FROM res_orders WHERE customer_id IS NULL "
        f"AND {key} IS NOT NULL GROUP BY {key}) g",
        index=("k",),
    )
    x = conn.exec_driver_sql
    now = st.now_sql(conn)
    # Two unknown ids sharing an email: the email goes to one of them (emails are unique).
    result = x(
        "INSERT INTO customers (id, first_name, last_name, email, country, acquired_at, acquisition_channel, "
        "interests, attributes, created_at, updated_at) "
        "SELECT n.id, COALESCE(n.first_name, ''), COALESCE(n.last_name, ''), e.email, n.country, "
        f"n.acquired, 'import', '[]', '{{}}', {now}, {now} FROM new_customers n LEFT JOIN "
        "(SELECT MIN(k) AS k, email FROM new_customers WHERE email IS NOT NULL GROUP BY email) e ON e.k = n.k"
    )
    x(
        "INSERT INTO customer_external_ids (customer_id, source, external_id) "
        f"SELECT id, {_quote(source)}, customer_ext FROM new_customers WHERE customer_ext IS NOT NULL"
    )
    return result.rowcount


def _stub_products(conn: Connection) -> int:
    """Create a product (named after the file, priced at the line's price) for each unknown SKU."""
    now = st.now_sql(conn)
    result = conn.exec_driver_sql(
        "INSERT INTO products (sku, name, category_path, price, is_active, attributes, created_at, updated_at) "
        f"SELECT g.sku, COALESCE(g.name, g.sku), '', {st.money('g.price', conn)}, TRUE, '{{}}', {now}, {now} "
        "FROM (SELECT l.sku, MAX(l.product_name) AS name, MAX(l.unit_price) AS price FROM stage_lines l "
        "WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = l.sku) GROUP BY l.sku) g"
    )
    return result.rowcount


def _write_returns(ctx: LoadContext, returns: pl.DataFrame, out: Outcome) -> bool:
    """Write the batch's returns; False when none was left to stage."""
    conn, mapping = ctx.conn, ctx.mapping
    bad_mask = pl.col("sku").is_null() | pl.col("quantity").is_null() | pl.col("unit_price").is_null()
    rejected, returns = reject_rows(
        returns, bad_mask, "a return needs sku, quantity and unit_price to find what it returns", column="sku"
    )
    out.rejected += rejected
    if returns.height == 0:
        return False
    staged = returns.select(
        (pl.col("order_id") + "/" + pl.col("_row").rank("ordinal").over("order_id").cast(pl.String)).alias(
            "return_ext"
        ),
        pl.col("customer_id").alias("customer_ext"),
        "customer_email",
        "sku",
        pl.col("quantity").abs().alias("quantity"),
        (pl.col("quantity").abs() * pl.col("unit_price")).alias("amount"),
        pl.col("placed_at").alias("returned_at"),
        pl.col("_row").alias("row_no"),
    )
    st.load(conn, "stage_returns", staged, RETURN_STAGE, index=("return_ext",))
    x = conn.exec_driver_sql
    _resolve_customers(conn, "stage_returns", mapping.source)
    x("UPDATE stage_returns SET product_id = (SELECT id FROM products p WHERE p.sku = stage_returns.sku)")
    x(
        "UPDATE stage_returns SET existing = CASE WHEN EXISTS (SELECT 1 FROM order_returns r "
        "WHERE r.external_id = stage_returns.return_ext) THEN 1 ELSE 0 END"
    )
    x(
        "UPDATE stage_returns SET order_line_id = (SELECT l.id FROM order_lines l JOIN orders o ON o.id = l.order_id "
        "WHERE o.customer_id = stage_returns.customer_id AND l.product_id = stage_returns.product_id "
        "AND o.placed_at <= stage_returns.returned_at ORDER BY o.placed_at DESC, l.id DESC LIMIT 1) WHERE existing = 0"
    )
    x(
        "UPDATE stage_returns SET order_id = "
        "(SELECT order_id FROM order_lines l WHERE l.id = stage_returns.order_line_id)"
    )
    x(
        "UPDATE stage_returns SET reject = 'return ' || return_ext || ': no earlier purchase of ' || sku || "
        "' by customer ' || COALESCE(customer_ext, customer_email, '?') || ' to return against' "
        "WHERE existing = 0 AND order_id IS NULL"
    )
    x(
        "INSERT INTO order_returns (external_id, order_id, order_line_id, kind, quantity, amount, reason, returned_at) "
        f"SELECT return_ext, order_id, order_line_id, 'return', quantity, {st.money('amount', conn)}, "
        "'imported cancellation', returned_at FROM stage_returns WHERE existing = 0 AND reject IS NULL"
    )
    x(
        "UPDATE orders SET status = CASE WHEN (SELECT SUM(amount) FROM order_returns r WHERE r.order_id = orders.id) "
        ">= total THEN 'returned' ELSE 'partially_returned' END WHERE status <> 'cancelled' AND id IN "
        "(SELECT order_id FROM stage_returns WHERE existing = 0 AND reject IS NULL)"
    )
    for row, reject, existing in st.fetch(conn, "SELECT row_no, reject, existing FROM stage_returns"):
        if reject is not None:
            out.rejected.append(Rejected(row=row, column="order_id", reason=reject))
        elif existing:
            out.unchanged += 1
        else:
            out.inserted += 1
    return True


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ts_literal(conn: Connection, value) -> str:
    from datetime import UTC

    value = value.astimezone(UTC)
    if st.is_pg(conn):
        return f"'{value.isoformat()}'::timestamptz"
    return "'" + value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
