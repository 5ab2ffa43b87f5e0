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

import polars as pl
from sqlalchemy.engine import Connection

from patron.imports import staging as st
from patron.imports.loaders import LoadContext, Outcome, reject_rows
from patron.imports.sources import Rejected

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
    "n_rows": "int",
    "customer_id": "int",
    "store_id": "int",
    "order_id": "int",
    "is_new": "int",
    "changed": "int",
    "lines_changed": "int",
    "reject": "text",
}
LINE_STAGE = {
    "order_ext": "text",
    "line_no": "int",
    "sku": "text",
    "product_name": "text",
    "quantity": "int",
    "unit_price": "cents",
    "discount": "cents",
    "product_id": "int",
    "order_id": "int",
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


def load(ctx: LoadContext, frame: pl.DataFrame) -> Outcome:
    out = Outcome()
    frame = _with_order_ids(frame, ctx)
    rejected, frame = _reject_orders_of_bad_rows(frame, ctx)
    out.rejected += rejected
    if frame.height == 0:
        return out
    frame = _complete(frame)
    prefix = ctx.mapping.returns_prefix
    returns = frame.filter(pl.col("order_id").str.starts_with(prefix)) if prefix else frame.clear()
    sales = frame.filter(~pl.col("order_id").str.starts_with(prefix)) if prefix else frame

    rejected, sales = _check_rows(sales)
    out.rejected += rejected
    orders, lines, rejected = _orders_and_lines(sales)
    out.rejected += rejected
    if orders.height:
        _write_orders(ctx, orders, lines, out)
    if returns.height:
        _write_returns(ctx, returns, out)
    st.drop(ctx.conn, "stage_orders", "stage_lines", "stage_new_customers", "stage_new_products", "stage_returns")
    return out


# -- shaping the batch (Polars) --------------------------------------------------------------


def _with_order_ids(frame: pl.DataFrame, ctx: LoadContext) -> pl.DataFrame:
    template = ctx.mapping.order_id_template
    if "order_id" in frame.columns or not template:
        return frame
    before, _, after = template.partition("{row}")
    return frame.with_columns(
        pl.concat_str([pl.lit(before), pl.col("_row").cast(pl.String), pl.lit(after)]).alias("order_id")
    )


def _reject_orders_of_bad_rows(frame: pl.DataFrame, ctx: LoadContext) -> tuple[list[Rejected], pl.DataFrame]:
    """Rows the converter rejected take the rest of their order with them."""
    column = next((c for c, m in ctx.mapping.column_maps.items() if m.field == "order_id"), None)
    if column is None or column not in ctx.batch.columns or frame.height == len(ctx.batch.rows):
        return [], frame
    raw = pl.DataFrame(
        {"_row": ctx.batch.rows, "order_id": ctx.batch.columns[column]},
        schema={"_row": pl.Int64, "order_id": pl.String},
    ).with_columns(pl.col("order_id").str.strip_chars())
    bad = (
        raw.filter(~pl.col("_row").is_in(frame["_row"].implode()))
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
            pl.col("customer_id").is_null() & pl.col("customer_email").is_null(),
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
        "n_rows",
    )
    st.load(conn, "stage_orders", staged, ORDER_STAGE, index=("order_ext", "order_id"))
    st.load(conn, "stage_lines", lines, LINE_STAGE, index=("order_ext",))
    x = conn.exec_driver_sql
    _resolve_customers(conn, "stage_orders", mapping.source)
    if mapping.unknown_customers == "stub":
        out.stubs["customers"] += _stub_customers(conn, mapping.source)
    else:
        x(
            "UPDATE stage_orders SET reject = 'unknown customer ' || COALESCE(customer_ext, customer_email) "
            "|| ' (not in Patron; import customers first or allow stubs)' WHERE customer_id IS NULL"
        )
    x("UPDATE stage_orders SET store_id = (SELECT id FROM stores WHERE stores.code = stage_orders.store_code)")
    x(
        "UPDATE stage_orders SET reject = 'unknown store code ' || store_code "
        "WHERE reject IS NULL AND store_code IS NOT NULL AND store_id IS NULL"
    )
    x("UPDATE stage_lines SET product_id = (SELECT id FROM products WHERE products.sku = stage_lines.sku)")
    if mapping.unknown_products == "stub":
        out.stubs["products"] += _stub_products(conn)
    else:
        x(
            "UPDATE stage_orders SET reject = 'unknown product ' || (SELECT MIN(sku) FROM stage_lines l "
            "WHERE l.order_ext = stage_orders.order_ext AND l.product_id IS NULL) WHERE reject IS NULL "
            "AND EXISTS (SELECT 1 FROM stage_lines l "
            "WHERE l.order_ext = stage_orders.order_ext AND l.product_id IS NULL)"
        )
    x("UPDATE stage_orders SET order_id = (SELECT id FROM orders WHERE orders.external_id = stage_orders.order_ext)")
    started = _ts_literal(conn, ctx.run_started_at)
    # Rows of an order must be adjacent: an order this run already wrote, coming back in
    # a later batch, would otherwise replace the lines it had.
    x(
        "UPDATE stage_orders SET reject = 'order ' || order_ext || ' appears again after other orders in this file; "
        "keep the rows of each order together' WHERE reject IS NULL AND order_id IS NOT NULL AND EXISTS "
        f"(SELECT 1 FROM orders o WHERE o.id = stage_orders.order_id "
        f"AND (o.created_at >= {started} OR o.updated_at >= {started}))"
    )
    x("UPDATE stage_orders SET is_new = CASE WHEN order_id IS NULL THEN 1 ELSE 0 END WHERE reject IS NULL")
    _classify_existing(conn)
    st.allocate_ids(conn, "stage_orders", "order_id", "orders", where="is_new = 1")
    x(
        "UPDATE stage_lines SET order_id = "
        "(SELECT order_id FROM stage_orders s WHERE s.order_ext = stage_lines.order_ext)"
    )
    _insert_orders(conn)
    _update_orders(conn)

    results = pl.DataFrame(
        st.fetch(conn, "SELECT order_ext, reject, is_new, changed, lines_changed FROM stage_orders"),
        schema={"order_ext": pl.String, "reject": pl.String, "is_new": pl.Int64, "changed": pl.Int64, "lc": pl.Int64},
        orient="row",
    )
    joined = orders.select("order_id", "rows", "n_rows").join(results, left_on="order_id", right_on="order_ext")
    for order_id, rows, n, reject, is_new, changed, lines_changed in joined.iter_rows():
        if reject is not None:
            out.rejected += [Rejected(row=r, column="order_id", value=order_id, reason=reject) for r in rows]
        elif is_new:
            out.inserted += n
        elif changed or lines_changed:
            out.updated += n
        else:
            out.unchanged += n


def _resolve_customers(conn: Connection, stage: str, source: str) -> None:
    """customer_id := the survivor of the customer with this external id, else this email."""
    conn.exec_driver_sql(
        f"UPDATE {stage} SET customer_id = (SELECT COALESCE(c.merged_into_id, c.id) FROM customer_external_ids x "
        f"JOIN customers c ON c.id = x.customer_id WHERE x.source = {_quote(source)} "
        f"AND x.external_id = {stage}.customer_ext) WHERE customer_ext IS NOT NULL"
    )
    conn.exec_driver_sql(
        f"UPDATE {stage} SET customer_id = (SELECT COALESCE(c.merged_into_id, c.id) FROM customers c "
        f"WHERE c.email = {stage}.customer_email) WHERE customer_id IS NULL AND customer_email IS NOT NULL"
    )


def _stub_customers(conn: Connection, source: str) -> int:
    """Create a minimal customer for each unknown one (by external id, else by email)."""
    st.create(
        conn,
        "stage_new_customers",
        {
            "k": "text",
            "customer_ext": "text",
            "email": "text",
            "first_name": "text",
            "last_name": "text",
            "country": "text",
            "acquired": "text",
            "id": "int",
        },
        index=("k",),
    )
    x = conn.exec_driver_sql
    key = "COALESCE(customer_ext, '@' || customer_email)"
    first_day = "CAST(MIN(placed_at) AS DATE)" if st.is_pg(conn) else "substr(MIN(placed_at), 1, 10)"
    x(
        "INSERT INTO stage_new_customers (k, customer_ext, email, first_name, last_name, country, acquired) "
        f"SELECT {key}, MAX(customer_ext), MAX(customer_email), MAX(first_name), MAX(last_name), MAX(country), "
        f"{first_day} FROM stage_orders WHERE customer_id IS NULL GROUP BY {key}"
    )
    # Two unknown ids sharing an email: the email goes to one of them (emails are unique).
    x(
        "UPDATE stage_new_customers SET email = NULL WHERE email IS NOT NULL AND k <> "
        "(SELECT MIN(k) FROM stage_new_customers n WHERE n.email = stage_new_customers.email)"
    )
    n = st.allocate_ids(conn, "stage_new_customers", "id", "customers")
    if not n:
        return 0
    now = st.now_sql(conn)
    acquired = "CAST(acquired AS DATE)" if st.is_pg(conn) else "acquired"
    x(
        "INSERT INTO customers (id, first_name, last_name, email, country, acquired_at, acquisition_channel, "
        "interests, attributes, created_at, updated_at) "
        f"SELECT id, COALESCE(first_name, ''), COALESCE(last_name, ''), email, country, {acquired}, 'import', "
        f"'[]', '{{}}', {now}, {now} FROM stage_new_customers"
    )
    x(
        "INSERT INTO customer_external_ids (customer_id, source, external_id) "
        f"SELECT id, {_quote(source)}, customer_ext FROM stage_new_customers WHERE customer_ext IS NOT NULL"
    )
    x(
        "UPDATE stage_orders SET customer_id = (SELECT id FROM stage_new_customers n WHERE n.k = "
        "COALESCE(stage_orders.customer_ext, '@' || stage_orders.customer_email)) WHERE customer_id IS NULL"
    )
    return n


def _stub_products(conn: Connection) -> int:
    st.create(
        conn, "stage_new_products", {"sku": "text", "name": "text", "price": "cents", "id": "int"}, index=("sku",)
    )
    x = conn.exec_driver_sql
    x(
        "INSERT INTO stage_new_products (sku, name, price) SELECT sku, MAX(product_name), MAX(unit_price) "
        "FROM stage_lines WHERE product_id IS NULL GROUP BY sku"
    )
    n = st.allocate_ids(conn, "stage_new_products", "id", "products")
    if not n:
        return 0
    now = st.now_sql(conn)
    x(
        "INSERT INTO products (id, sku, name, category_path, price, is_active, attributes, created_at, updated_at) "
        f"SELECT id, sku, COALESCE(name, sku), '', {st.money('price', conn)}, TRUE, '{{}}', {now}, {now} "
        "FROM stage_new_products"
    )
    x(
        "UPDATE stage_lines SET product_id = (SELECT id FROM stage_new_products n WHERE n.sku = stage_lines.sku) "
        "WHERE product_id IS NULL"
    )
    return n


def _classify_existing(conn: Connection) -> None:
    d = lambda a, b: st.distinct(a, b, conn)  # noqa: E731
    c = lambda col: st.cents(col, conn)  # noqa: E731
    header = " OR ".join(
        [
            d("o.customer_id", "s.customer_id"),
            d("o.placed_at", "s.placed_at"),
            d("o.channel", "s.channel"),
            d("o.store_id", "s.store_id"),
            d("o.status", "s.status"),
            d("o.currency", "s.currency"),
            *(d(c(f"o.{m}"), f"s.{m}") for m in ("subtotal", "discount", "shipping_fee", "tax", "total")),
        ]
    )
    x = conn.exec_driver_sql
    x(
        f"UPDATE stage_orders SET changed = CASE WHEN EXISTS (SELECT 1 FROM orders o, stage_orders s "
        f"WHERE o.id = stage_orders.order_id AND s.order_ext = stage_orders.order_ext AND ({header})) "
        "THEN 1 ELSE 0 END WHERE reject IS NULL AND is_new = 0"
    )
    # One uncorrelated anti-join finds every order with a line that differs; a
    # correlated lookup per line could let SQLite pick the order_lines.product_id index.
    differs = " OR ".join(
        [
            "l.id IS NULL",
            "l.product_id <> sl.product_id",
            "l.quantity <> sl.quantity",
            f"{c('l.unit_price')} <> sl.unit_price",
            f"{c('l.discount')} <> sl.discount",
        ]
    )
    x(
        "UPDATE stage_lines SET order_id = "
        "(SELECT order_id FROM stage_orders s WHERE s.order_ext = stage_lines.order_ext)"
    )
    x(
        "UPDATE stage_orders SET lines_changed = CASE WHEN "
        "(SELECT COUNT(*) FROM order_lines l WHERE l.order_id = stage_orders.order_id) <> "
        "(SELECT COUNT(*) FROM stage_lines sl WHERE sl.order_ext = stage_orders.order_ext) "
        "OR order_ext IN (SELECT sl.order_ext FROM stage_lines sl LEFT JOIN order_lines l "
        f"ON l.order_id = sl.order_id AND l.line_no = sl.line_no WHERE sl.order_id IS NOT NULL AND ({differs})) "
        "THEN 1 ELSE 0 END WHERE reject IS NULL AND is_new = 0"
    )


def _insert_orders(conn: Connection) -> None:
    m = lambda col: st.money(col, conn)  # noqa: E731
    now = st.now_sql(conn)
    x = conn.exec_driver_sql
    x(
        "INSERT INTO orders (id, external_id, customer_id, placed_at, channel, store_id, status, currency, subtotal, "
        "discount, shipping_fee, tax, total, created_at, updated_at) "
        f"SELECT order_id, order_ext, customer_id, placed_at, channel, store_id, status, currency, {m('subtotal')}, "
        f"{m('discount')}, {m('shipping_fee')}, {m('tax')}, {m('total')}, {now}, {now} "
        "FROM stage_orders WHERE reject IS NULL AND is_new = 1"
    )
    _insert_lines(conn, "s.is_new = 1")


def _insert_lines(conn: Connection, which: str) -> None:
    m = lambda col: st.money(col, conn)  # noqa: E731
    conn.exec_driver_sql(
        "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price, discount) "
        f"SELECT l.order_id, l.line_no, l.product_id, l.quantity, {m('l.unit_price')}, {m('l.discount')} "
        f"FROM stage_lines l JOIN stage_orders s ON s.order_ext = l.order_ext WHERE s.reject IS NULL AND {which}"
    )


def _update_orders(conn: Connection) -> None:
    m = lambda col: st.money(col, conn)  # noqa: E731
    now = st.now_sql(conn)
    x = conn.exec_driver_sql
    fields = ["customer_id", "placed_at", "channel", "store_id", "status", "currency"]
    sets = [f"{f} = s.{f}" for f in fields] + [
        f"{f} = {m('s.' + f)}" for f in ("subtotal", "discount", "shipping_fee", "tax", "total")
    ]
    x(
        f"UPDATE orders SET {', '.join(sets)}, updated_at = {now} FROM stage_orders s "
        "WHERE orders.id = s.order_id AND s.reject IS NULL AND s.is_new = 0 AND (s.changed = 1 OR s.lines_changed = 1)"
    )
    x(
        "DELETE FROM order_lines WHERE order_id IN (SELECT order_id FROM stage_orders "
        "WHERE reject IS NULL AND is_new = 0 AND lines_changed = 1)"
    )
    _insert_lines(conn, "s.is_new = 0 AND s.lines_changed = 1")


def _write_returns(ctx: LoadContext, returns: pl.DataFrame, out: Outcome) -> None:
    conn, mapping = ctx.conn, ctx.mapping
    bad_mask = pl.col("sku").is_null() | pl.col("quantity").is_null() | pl.col("unit_price").is_null()
    rejected, returns = reject_rows(
        returns, bad_mask, "a return needs sku, quantity and unit_price to find what it returns", column="sku"
    )
    out.rejected += rejected
    if returns.height == 0:
        return
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


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ts_literal(conn: Connection, value) -> str:
    from datetime import UTC

    value = value.astimezone(UTC)
    if st.is_pg(conn):
        return f"'{value.isoformat()}'::timestamptz"
    return "'" + value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
