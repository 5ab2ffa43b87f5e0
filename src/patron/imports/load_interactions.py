"""Set-based upsert of a converted interactions batch (see loaders.py for the contract).

An interaction is its `interaction_id` when the row has one, else a stable hash of its
content, `"sha1:" + sha1(customer_id|occurred_at|kind|channel|direction|subject|body)`
(occurred_at in UTC as 2026-01-10T09:00:00.000000+00:00, direction after its default,
empty subject/body as ''), so importing the same file again finds the same rows. The key
is stored in interactions.external_id. A key repeated in a batch keeps its last row (the
earlier ones are reported).

The customer is the (mapping.source, customer_id) external id, following a merge to the
survivor. An unknown customer id rejects the row, or, with `unknown_customers: stub`,
creates a customer holding only that external id (counted in `stubs["customers"]`).
customer_id, occurred_at, kind and channel must be filled in; direction defaults to
'inbound' on insert.

An existing key is updated when something differs (its customer, time, kind or channel,
and direction / subject / body when the row fills them in; blank cells never clear) and
is `unchanged` otherwise.
"""

from __future__ import annotations

import hashlib

import polars as pl
from sqlalchemy import text
from sqlalchemy.engine import Connection

from patron.imports import staging as st
from patron.imports.loaders import LoadContext, Outcome, keep_last
from patron.imports.sources import Rejected
from patron.models.customer import survivor_sql

# The customer a matched row is now (itself, or the one it was merged into).
SURVIVOR = survivor_sql("c")

STAGE = "stage_interactions"
STUBS = "stage_interaction_customers"
REQUIRED = ("customer_id", "occurred_at", "kind", "channel")
ISO_UTC = "%Y-%m-%dT%H:%M:%S%.6f+00:00"
COLUMNS = {
    "_row": "int",
    "ext_id": "text",
    "customer_id": "text",
    "occurred_at": "ts",
    "kind": "text",
    "channel": "text",
    "direction": "text",
    "subject": "text",
    "body": "text",
    "cust_id": "int",
    "existing_id": "int",  # the stored interaction with this key
    "changed": "int",
}


def load(ctx: LoadContext, frame: pl.DataFrame) -> Outcome:
    conn, source = ctx.conn, ctx.mapping.source
    out = Outcome()
    rejected, frame = _prepare(frame)
    out.rejected += rejected
    if frame.height == 0:
        return out
    st.load(conn, STAGE, frame, COLUMNS)

    # Correlated lookups probe the real tables' unique indexes once per staged row, whatever
    # their size; EXISTS leaves the rows that match nothing unwritten.
    by_id = (
        "FROM customer_external_ids x JOIN customers c ON c.id = x.customer_id "
        f"WHERE x.source = :source AND x.external_id = {STAGE}.customer_id"
    )
    conn.execute(
        text(f"UPDATE {STAGE} SET cust_id = (SELECT {SURVIVOR} {by_id}) WHERE EXISTS (SELECT 1 {by_id})"),
        {"source": source},
    )
    if ctx.mapping.unknown_customers == "stub":
        if stubs := _stub_customers(conn, source):
            out.stubs["customers"] += stubs
    else:
        out.rejected += _unknown_customers(conn, source)

    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET existing_id = (SELECT i.id FROM interactions i WHERE i.external_id = {STAGE}.ext_id) "
        f"WHERE EXISTS (SELECT 1 FROM interactions i WHERE i.external_id = {STAGE}.ext_id)"
    )
    differs = " OR ".join(
        [
            st.distinct(f"{STAGE}.cust_id", "i.customer_id", conn),
            *(st.distinct(f"{STAGE}.{col}", f"i.{col}", conn) for col in ("occurred_at", "kind", "channel")),
            *(
                f"({STAGE}.{col} IS NOT NULL AND {st.distinct(f'{STAGE}.{col}', f'i.{col}', conn)})"
                for col in ("direction", "subject", "body")
            ),
        ]
    )
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET changed = 1 WHERE existing_id IS NOT NULL AND EXISTS "
        f"(SELECT 1 FROM interactions i WHERE i.id = {STAGE}.existing_id AND ({differs}))"
    )
    conn.exec_driver_sql(
        "UPDATE interactions SET customer_id = s.cust_id, occurred_at = s.occurred_at, kind = s.kind, "
        "channel = s.channel, direction = COALESCE(s.direction, interactions.direction), "
        "subject = COALESCE(s.subject, interactions.subject), body = COALESCE(s.body, interactions.body) "
        f"FROM {STAGE} AS s WHERE interactions.id = s.existing_id AND s.changed = 1"
    )
    payload = "'{}'::jsonb" if st.is_pg(conn) else "'{}'"
    conn.exec_driver_sql(
        "INSERT INTO interactions (customer_id, external_id, kind, channel, direction, occurred_at, subject, body, "
        "payload, created_at) "
        f"SELECT cust_id, ext_id, kind, channel, COALESCE(direction, 'inbound'), occurred_at, subject, body, "
        f"{payload}, {st.now_sql(conn)} FROM {STAGE} WHERE existing_id IS NULL"
    )
    inserted, updated, total = conn.exec_driver_sql(
        "SELECT COALESCE(SUM(CASE WHEN existing_id IS NULL THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN changed = 1 THEN 1 ELSE 0 END), 0), COUNT(*) FROM {STAGE}"
    ).one()
    out.inserted, out.updated, out.unchanged = inserted, updated, total - inserted - updated
    st.drop(conn, STAGE, STUBS)
    return out


def _prepare(frame: pl.DataFrame) -> tuple[list[Rejected], pl.DataFrame]:
    """Reject rows missing a required field, key every row, settle repeated keys."""
    rejected: list[Rejected] = []
    for col in REQUIRED:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(col))
        missing = frame.filter(pl.col(col).is_null())
        rejected += [
            Rejected(row=r, column=col, reason=f"{col} is empty; every interaction needs one") for r in missing["_row"]
        ]
        frame = frame.filter(pl.col(col).is_not_null())
    if frame.height == 0:
        return rejected, frame

    def text_or_blank(col: str) -> pl.Expr:
        return pl.col(col) if col in frame.columns else pl.lit(None, dtype=pl.String)

    content = pl.concat_str(
        [
            pl.col("customer_id"),
            pl.col("occurred_at").dt.convert_time_zone("UTC").dt.strftime(ISO_UTC),
            pl.col("kind"),
            pl.col("channel"),
            text_or_blank("direction").fill_null("inbound"),
            text_or_blank("subject").fill_null(""),
            text_or_blank("body").fill_null(""),
        ],
        separator="|",
    )
    digests = ["sha1:" + hashlib.sha1(s.encode("utf-8")).hexdigest() for s in frame.select(content).to_series()]
    hashed = pl.Series("ext_id", digests, dtype=pl.String)
    given = frame["interaction_id"] if "interaction_id" in frame.columns else None
    frame = frame.with_columns((given.fill_null(hashed) if given is not None else hashed).alias("ext_id"))

    label = "interaction id" if given is not None else "the same interaction (same customer, time and content)"
    dups, frame = keep_last(frame, "ext_id", label)
    for r in dups:
        r.column = "interaction_id" if given is not None else None
    rejected += dups
    return rejected, frame


def _unknown_customers(conn: Connection, source: str) -> list[Rejected]:
    rows = conn.exec_driver_sql(f"SELECT _row, customer_id FROM {STAGE} WHERE cust_id IS NULL ORDER BY _row").all()
    if rows:
        conn.exec_driver_sql(f"DELETE FROM {STAGE} WHERE cust_id IS NULL")
    return [
        Rejected(
            row=row,
            column="customer_id",
            value=ext,
            reason=f"no customer has {source} id {ext}; import the customers first, or set unknown_customers: stub "
            "to create them",
        )
        for row, ext in rows
    ]


def _stub_customers(conn: Connection, source: str) -> int:
    """Create a customer holding only its external id for each unknown customer id."""
    st.create(conn, STUBS, {"customer_id": "text", "new_id": "int"})
    conn.exec_driver_sql(
        f"INSERT INTO {STUBS} (customer_id) SELECT DISTINCT customer_id FROM {STAGE} WHERE cust_id IS NULL"
    )
    n = st.allocate_ids(conn, STUBS, "new_id", "customers")
    if not n:
        return 0
    now = st.now_sql(conn)
    cast = "::jsonb" if st.is_pg(conn) else ""
    conn.exec_driver_sql(
        "INSERT INTO customers (id, first_name, last_name, interests, attributes, created_at, updated_at) "
        f"SELECT new_id, '', '', '[]'{cast}, '{{}}'{cast}, {now}, {now} FROM {STUBS}"
    )
    conn.execute(
        text(
            "INSERT INTO customer_external_ids (customer_id, source, external_id) "
            f"SELECT new_id, :source, customer_id FROM {STUBS}"
        ),
        {"source": source},
    )
    conn.exec_driver_sql(f"CREATE INDEX ix_{STUBS}_customer_id ON {STUBS} (customer_id)")
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET cust_id = {STUBS}.new_id FROM {STUBS} "
        f"WHERE {STUBS}.customer_id = {STAGE}.customer_id AND {STAGE}.cust_id IS NULL"
    )
    return n
