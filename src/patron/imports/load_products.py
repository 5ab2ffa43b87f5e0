"""Set-based upsert of a converted products batch (see loaders.py for the contract).

A product is its `sku`. A sku repeated in a batch keeps its last row (the earlier ones
are reported). A new sku needs a `name` and a `price`, or the row is rejected saying
which is missing; `is_active` defaults to true and `category_path` to '' on insert.

Updating never clears: only fields that are mapped and filled in on the row are
written, and only when they differ from what is stored (money compared in cents), so
`updated` and `unchanged` are exact and importing the same file twice changes nothing.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy.engine import Connection

from patron.imports import staging as st
from patron.imports.loaders import LoadContext, Outcome, keep_last, reject_rows
from patron.imports.sources import Rejected

STAGE = "stage_products"
FIELDS = {
    "name": "text",
    "category_path": "text",
    "brand": "text",
    "tier": "text",
    "price": "cents",
    "unit_cost": "cents",
    "launched_on": "date",
    "is_active": "bool",
}
MONEY = ("price", "unit_cost")
COLUMNS = {"_row": "int", "sku": "text", **FIELDS, "product_id": "int", "changed": "int"}


def load(ctx: LoadContext, frame: pl.DataFrame) -> Outcome:
    conn = ctx.conn
    out = Outcome()
    rejected, frame = reject_rows(
        frame, pl.col("sku").is_null(), "the sku is empty; a product is found by its sku", column="sku"
    )
    out.rejected += rejected
    rejected, frame = keep_last(frame, "sku", "sku")
    out.rejected += rejected
    if frame.height == 0:
        return out
    st.load(conn, STAGE, frame, COLUMNS)
    # A correlated lookup probes products' unique sku index once per staged row.
    by_sku = f"FROM products p WHERE p.sku = {STAGE}.sku"
    conn.exec_driver_sql(f"UPDATE {STAGE} SET product_id = (SELECT p.id {by_sku}) WHERE EXISTS (SELECT 1 {by_sku})")

    out.rejected += _incomplete_new(conn)
    fields = [f for f in FIELDS if f in frame.columns]
    if fields:
        differs = " OR ".join(
            f"({STAGE}.{f} IS NOT NULL AND {st.distinct(f'{STAGE}.{f}', _stored(f, conn), conn)})" for f in fields
        )
        conn.exec_driver_sql(
            f"UPDATE {STAGE} SET changed = 1 WHERE product_id IS NOT NULL AND EXISTS "
            f"(SELECT 1 FROM products p WHERE p.id = {STAGE}.product_id AND ({differs}))"
        )
        sets = ", ".join(f"{f} = COALESCE({_value(f, 's', conn)}, products.{f})" for f in fields)
        conn.exec_driver_sql(
            f"UPDATE products SET {sets}, updated_at = {st.now_sql(conn)} FROM {STAGE} AS s "
            "WHERE products.id = s.product_id AND s.changed = 1"
        )

    now = st.now_sql(conn)
    attributes = "'{}'::jsonb" if st.is_pg(conn) else "'{}'"
    conn.exec_driver_sql(
        "INSERT INTO products (sku, name, category_path, brand, tier, price, unit_cost, launched_on, is_active, "
        "attributes, created_at, updated_at) "
        f"SELECT sku, name, COALESCE(category_path, ''), brand, tier, {st.money('price', conn)}, "
        f"{st.money('unit_cost', conn)}, launched_on, COALESCE(is_active, {_true(conn)}), {attributes}, {now}, {now} "
        f"FROM {STAGE} WHERE product_id IS NULL"
    )
    inserted, updated, total = conn.exec_driver_sql(
        "SELECT COALESCE(SUM(CASE WHEN product_id IS NULL THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN changed = 1 THEN 1 ELSE 0 END), 0), COUNT(*) FROM {STAGE}"
    ).one()
    out.inserted, out.updated, out.unchanged = inserted, updated, total - inserted - updated
    st.drop(conn, STAGE)
    return out


def _incomplete_new(conn: Connection) -> list[Rejected]:
    """New skus without a name or a price: reported and taken out of the batch."""
    rows = conn.exec_driver_sql(
        f"SELECT _row, sku, name IS NULL, price IS NULL FROM {STAGE} "
        "WHERE product_id IS NULL AND (name IS NULL OR price IS NULL) ORDER BY _row"
    ).all()
    rejected = []
    for row, sku, no_name, no_price in rows:
        missing = [f for f, gap in (("name", no_name), ("price", no_price)) if gap]
        rejected.append(
            Rejected(
                row=row,
                column=missing[0],
                value=sku,
                reason=f"sku {sku} is a new product and needs a name and a price; {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} empty",
            )
        )
    if rows:
        conn.exec_driver_sql(f"DELETE FROM {STAGE} WHERE product_id IS NULL AND (name IS NULL OR price IS NULL)")
    return rejected


def _stored(field: str, conn: Connection) -> str:
    """The stored value in the staged form (money as integer cents)."""
    return st.cents(f"p.{field}", conn) if field in MONEY else f"p.{field}"


def _value(field: str, alias: str, conn: Connection) -> str:
    """The staged value in the stored form."""
    return st.money(f"{alias}.{field}", conn) if field in MONEY else f"{alias}.{field}"


def _true(conn: Connection) -> str:
    return "TRUE" if st.is_pg(conn) else "1"
