"""Set-based upsert of a converted customers batch (see loaders.py for the contract).

Which customer a row is:

1. its (mapping.source, customer_id) in customer_external_ids; a customer merged into
   another leads to the survivor (`Customer.survivor_id`);
2. else its email (stored lower-case and unique), again following a merge. When the row
   also has a customer_id, that id is added to the customer for the source, unless the
   customer already has a different id for it: then the row is rejected ("email x
   belongs to customer N, whose shopify id is M");
3. else a new customer, with its external id when the row has one.

Within a batch, a customer_id repeated keeps its last row (the earlier ones are reported);
an email on rows of different customers keeps the first row and rejects the later ones;
two rows that lead to the same stored customer (say an id and the email of a record
merged into it) keep the first. A row whose email belongs to a different customer than
the one its id leads to is rejected, as storing it would take the email from its owner.

Updating never clears: only fields that are mapped and filled in on the row are
written, and only when they differ from what is stored, so `updated` and `unchanged` are
exact and importing the same file twice changes nothing the second time. A `name`
column (full name) fills first_name / last_name where those are not given: the last
word is the last name, a single word is a first name. Names go through
`patron.validation.normalise_name` when it exists (all-caps or all-lower names are
title-cased, as on the customer form).

`email_marketing` / `sms_marketing` append a ConsentEvent (purpose marketing, source
'import') only when the file's value differs from the customer's current state, the
latest event for that channel and purpose; a customer with no event counts as not
having granted consent, so "no" on a customer never asked records nothing.

A customer created by the import keeps acquired_at NULL unless the file gives it.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import text
from sqlalchemy.engine import Connection

from patron import events, validation
from patron.imports import staging as st
from patron.imports.loaders import LoadContext, Outcome, keep_last, publish
from patron.imports.sources import Rejected
from patron.models.customer import survivor_sql

# The customer a matched row is now (itself, or the one it was merged into).
SURVIVOR = survivor_sql("c")

STAGE = "stage_customers"
NAME_MAX = 100  # customers.first_name / last_name

# Profile fields the import writes, with their staging kind (matching mapping.FIELDS).
PROFILE = {
    "email": "text",
    "phone": "text",
    "first_name": "text",
    "last_name": "text",
    "birthday": "date",
    "gender": "text",
    "address_line": "text",
    "city": "text",
    "region": "text",
    "country": "text",
    "postal_code": "text",
    "acquired_at": "date",
    "acquisition_channel": "text",
    "language": "text",
}
CONSENT = {"email_marketing": "email", "sms_marketing": "sms"}  # field -> consent channel
COLUMNS = {
    "_row": "int",
    "customer_id": "text",
    **PROFILE,
    "email_marketing": "bool",
    "sms_marketing": "bool",
    "cust_id": "int",  # the stored customer the row is for (the survivor of a merge)
    "matched": "text",  # 'email' when found by email
    "new_id": "int",  # id of the customer the row creates
    "holder": "int",  # the customer that holds the row's email now
    "problem": "text",
    "other": "int",
    "other_ext": "text",
    "changed": "int",
    "add_ext": "int",
    "consent_email": "int",
    "consent_sms": "int",
}


def load(ctx: LoadContext, frame: pl.DataFrame) -> Outcome:
    conn, source = ctx.conn, ctx.mapping.source
    out = Outcome()
    rejected, frame = _prepare(frame)
    out.rejected += rejected
    if frame.height == 0:
        return out
    st.load(conn, STAGE, frame, COLUMNS)

    _resolve(conn, source)
    out.rejected += _conflicts(conn, source)
    profile = [c for c in PROFILE if c in frame.columns]
    _flag_changes(conn, profile)
    inserted = _insert_new(conn, source)
    _update_changed(conn, profile)
    _record_consents(conn, [f for f in CONSENT if f in frame.columns], source)

    flags = " OR ".join(f"{f} = 1" for f in ("changed", "add_ext", "consent_email", "consent_sms"))
    updated, total = conn.exec_driver_sql(
        f"SELECT COALESCE(SUM(CASE WHEN new_id IS NULL AND ({flags}) THEN 1 ELSE 0 END), 0), COUNT(*) FROM {STAGE}"
    ).one()
    out.inserted, out.updated, out.unchanged = inserted, updated, total - inserted - updated
    found = []
    if inserted:
        found.append(events.CustomersCreated(customer_ids=_ids(conn, "new_id", "new_id IS NOT NULL"), via="import"))
    if updated:
        where = f"new_id IS NULL AND ({flags})"
        found.append(events.CustomersUpdated(customer_ids=_ids(conn, "cust_id", where), via="import"))
    publish(ctx, found)
    st.drop(conn, STAGE)
    return out


def _ids(conn: Connection, column: str, where: str) -> list[int]:
    return [i for (i,) in st.fetch(conn, f"SELECT {column} FROM {STAGE} WHERE {where}")]


# -- shaping the batch (Polars) --------------------------------------------------------------


def _prepare(frame: pl.DataFrame) -> tuple[list[Rejected], pl.DataFrame]:
    """Split full names, normalise names, and settle rows that repeat a customer in the batch."""
    rejected: list[Rejected] = []
    if "name" in frame.columns:
        frame = _split_names(frame)
        for col in ("first_name", "last_name"):
            too_long = pl.col(col).str.len_chars() > NAME_MAX
            rejected += [
                Rejected(
                    row=r,
                    column="name",
                    value=full,
                    reason=f"the {col.replace('_', ' ')} in this name is longer than {NAME_MAX} characters",
                )
                for r, full in frame.filter(too_long).select("_row", "name").rows()
            ]
            frame = frame.filter(~too_long.fill_null(False))
    for col in ("first_name", "last_name"):
        if col in frame.columns:
            frame = _normalise_names(frame, col)
    for col in ("customer_id", "email"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(col))

    anonymous = pl.col("customer_id").is_null() & pl.col("email").is_null()
    rejected += [
        Rejected(row=r, reason="has neither a customer id nor an email, so it cannot be matched to a customer")
        for r in frame.filter(anonymous)["_row"]
    ]
    frame = frame.filter(~anonymous)

    # A repeated key: the last row wins. Rows without an id are keyed by their email.
    dup_ids, with_id = keep_last(frame.filter(pl.col("customer_id").is_not_null()), "customer_id", "customer id")
    dup_emails, without_id = keep_last(frame.filter(pl.col("customer_id").is_null()), "email", "email")
    rejected += dup_ids + dup_emails
    frame = pl.concat([with_id, without_id]).sort("_row")

    # One email on rows of different customers: the first row keeps it.
    first = (
        frame.filter(pl.col("email").is_not_null())
        .group_by("email")
        .agg(pl.col("_row").min().alias("_first"), pl.col("customer_id").sort_by("_row").first().alias("_first_id"))
    )
    joined = frame.join(first, on="email", how="left")
    clash = pl.col("_first").is_not_null() & (pl.col("_row") != pl.col("_first"))
    for r, email, own, other_row, other_id in (
        joined.filter(clash).select("_row", "email", "customer_id", "_first", "_first_id").rows()
    ):
        other = f"row {other_row}" + (f" (customer id {other_id})" if other_id else "")
        rejected.append(
            Rejected(
                row=r,
                column="email",
                value=email,
                reason=f"email {email} is also on {other}, and customer id {own} is a different customer; "
                "an email belongs to one customer, so the first row keeps it"
                if own
                else f"email {email} is also on {other}; an email belongs to one customer, so the first row keeps it",
            )
        )
    frame = joined.filter(~clash).drop("_first", "_first_id")
    return rejected, frame


def _split_names(frame: pl.DataFrame) -> pl.DataFrame:
    """first_name / last_name from `name` where the row does not give them: the last word is
    the last name; a single word is a first name."""
    full = pl.col("name").str.replace_all(r"\s+", " ")
    last = full.str.extract(r" (\S+)$", 1)
    first = pl.coalesce(full.str.extract(r"^(.*) \S+$", 1), full)
    for col, part in (("first_name", first), ("last_name", last)):
        given = pl.col(col) if col in frame.columns else pl.lit(None, dtype=pl.String)
        frame = frame.with_columns(pl.coalesce(given, part).alias(col))
    return frame


def _normalise_names(frame: pl.DataFrame, col: str) -> pl.DataFrame:
    # Another module owns the rule; it may not be there yet in every checkout.
    normalise = getattr(validation, "normalise_name", None)
    if normalise is None:
        return frame
    values = frame[col].drop_nulls().unique().to_list()
    if not values:
        return frame
    table = {v: normalise(v) or None for v in values}
    return frame.with_columns(pl.col(col).replace_strict(table, default=None, return_dtype=pl.String))


# -- set-based steps (SQL) -------------------------------------------------------------------


def _resolve(conn: Connection, source: str) -> None:
    """cust_id: by (source, customer_id), else by email; both follow a merge to the survivor."""
    # Correlated lookups probe the real tables' unique indexes once per staged row, whatever
    # their size (as a join, SQLite may scan every external id of the source instead), and
    # EXISTS leaves the rows that match nothing unwritten.
    by_id = (
        "FROM customer_external_ids x JOIN customers c ON c.id = x.customer_id "
        f"WHERE x.source = :source AND x.external_id = {STAGE}.customer_id"
    )
    conn.execute(
        text(
            f"UPDATE {STAGE} SET cust_id = (SELECT {SURVIVOR} {by_id}) "
            f"WHERE customer_id IS NOT NULL AND EXISTS (SELECT 1 {by_id})"
        ),
        {"source": source},
    )
    by_email = f"FROM customers c WHERE c.email = {STAGE}.email"
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET cust_id = (SELECT {SURVIVOR} {by_email}), matched = 'email' "
        f"WHERE cust_id IS NULL AND email IS NOT NULL AND EXISTS (SELECT 1 {by_email})"
    )


def _conflicts(conn: Connection, source: str) -> list[Rejected]:
    """Mark the rows that cannot be written as they are, report them and take them out."""
    # Found by email, but the customer already has another id in this source.
    conn.execute(
        text(
            f"UPDATE {STAGE} SET problem = 'other_id', other_ext = (SELECT x.external_id "
            f"FROM customer_external_ids x WHERE x.customer_id = {STAGE}.cust_id AND x.source = :source) "
            "WHERE matched = 'email' AND customer_id IS NOT NULL AND EXISTS (SELECT 1 FROM customer_external_ids x "
            f"WHERE x.customer_id = {STAGE}.cust_id AND x.source = :source)"
        ),
        {"source": source},
    )
    # The row's email is held by another stored customer. When that one was merged into
    # this row's customer the email already leads here: leave the stored email alone.
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET holder = (SELECT c.id FROM customers c WHERE c.email = {STAGE}.email) "
        "WHERE problem IS NULL AND cust_id IS NOT NULL AND EXISTS "
        f"(SELECT 1 FROM customers c WHERE c.email = {STAGE}.email AND c.id <> {STAGE}.cust_id)"
    )
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET email = NULL WHERE holder <> cust_id AND EXISTS "
        f"(SELECT 1 FROM customers c WHERE c.id = {STAGE}.holder AND c.merged_into_id = {STAGE}.cust_id)"
    )
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET problem = 'email_taken' WHERE problem IS NULL AND holder <> cust_id AND email IS NOT NULL"
    )
    # Two rows for one stored customer (an id, and the email of a record merged into it).
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET problem = 'same_customer', other = d.first_row FROM "
        f"(SELECT cust_id AS cid, MIN(_row) AS first_row FROM {STAGE} WHERE cust_id IS NOT NULL AND problem IS NULL "
        "GROUP BY cust_id HAVING COUNT(*) > 1) AS d "
        f"WHERE {STAGE}.cust_id = d.cid AND {STAGE}._row <> d.first_row AND {STAGE}.problem IS NULL"
    )
    rows = conn.exec_driver_sql(
        f"SELECT _row, problem, customer_id, email, cust_id, holder, other, other_ext FROM {STAGE} "
        "WHERE problem IS NOT NULL ORDER BY _row"
    ).all()
    rejected = []
    for row, problem, ext, email, cust_id, holder, other, other_ext in rows:
        if problem == "other_id":
            rejected.append(
                Rejected(
                    row=row,
                    column="email",
                    value=email,
                    reason=f"email {email} belongs to customer {cust_id}, whose {source} id is {other_ext}, not {ext}",
                )
            )
        elif problem == "email_taken":
            rejected.append(
                Rejected(
                    row=row,
                    column="email",
                    value=email,
                    reason=f"email {email} belongs to customer {holder}, but {source} id {ext} is customer {cust_id}",
                )
            )
        else:
            key, value = ("customer_id", ext) if ext is not None else ("email", email)
            rejected.append(
                Rejected(
                    row=row,
                    column=key,
                    value=value,
                    reason=f"leads to customer {cust_id}, as row {other} does; only the first row for a customer "
                    "is used",
                )
            )
    if rows:
        conn.exec_driver_sql(f"DELETE FROM {STAGE} WHERE problem IS NOT NULL")
    return rejected


def _flag_changes(conn: Connection, profile: list[str]) -> None:
    """Before writing: which matched rows change a field, and which add an external id."""
    if profile:
        differs = " OR ".join(
            f"({STAGE}.{col} IS NOT NULL AND {st.distinct(f'{STAGE}.{col}', f'c.{col}', conn)})" for col in profile
        )
        conn.exec_driver_sql(
            f"UPDATE {STAGE} SET changed = 1 WHERE cust_id IS NOT NULL AND EXISTS "
            f"(SELECT 1 FROM customers c WHERE c.id = {STAGE}.cust_id AND ({differs}))"
        )
    conn.exec_driver_sql(f"UPDATE {STAGE} SET add_ext = 1 WHERE matched = 'email' AND customer_id IS NOT NULL")


def _insert_new(conn: Connection, source: str) -> int:
    """Create the customers no row matched, with their external ids; returns how many."""
    n = st.allocate_ids(conn, STAGE, "new_id", "customers", "cust_id IS NULL")
    if n:
        now = st.now_sql(conn)
        cols = [c for c in PROFILE if c not in ("first_name", "last_name")]
        conn.exec_driver_sql(
            f"INSERT INTO customers (id, first_name, last_name, {', '.join(cols)}, interests, attributes, "
            "created_at, updated_at) "
            f"SELECT new_id, COALESCE(first_name, ''), COALESCE(last_name, ''), {', '.join(cols)}, "
            f"{_json(conn, '[]')}, {_json(conn, '{}')}, {now}, {now} FROM {STAGE} WHERE new_id IS NOT NULL"
        )
    conn.execute(
        text(
            "INSERT INTO customer_external_ids (customer_id, source, external_id) "
            f"SELECT COALESCE(new_id, cust_id), :source, customer_id FROM {STAGE} "
            "WHERE customer_id IS NOT NULL AND (new_id IS NOT NULL OR add_ext = 1)"
        ),
        {"source": source},
    )
    return n


def _update_changed(conn: Connection, profile: list[str]) -> None:
    if not profile:
        return
    sets = ", ".join(f"{col} = COALESCE(s.{col}, customers.{col})" for col in profile)
    conn.exec_driver_sql(
        f"UPDATE customers SET {sets}, updated_at = {st.now_sql(conn)} FROM {STAGE} AS s "
        "WHERE customers.id = s.cust_id AND s.changed = 1 AND s.new_id IS NULL"
    )


def _record_consents(conn: Connection, fields: list[str], source: str) -> None:
    """Append a marketing consent event where the file's yes/no differs from the current state."""
    now = st.now_sql(conn)
    for field in fields:
        channel = CONSENT[field]
        status = f"CASE WHEN {field} THEN 'granted' ELSE 'withdrawn' END"
        # The latest event is the current state; a customer created just now has none.
        current = (
            f"(SELECT e.status FROM consent_events e WHERE e.customer_id = {STAGE}.cust_id "
            f"AND e.channel = '{channel}' AND e.purpose = 'marketing' ORDER BY e.id DESC LIMIT 1)"
        )
        conn.exec_driver_sql(
            f"UPDATE {STAGE} SET consent_{channel} = 1 "
            f"WHERE {field} IS NOT NULL AND {status} <> COALESCE({current}, 'withdrawn')"
        )
        conn.execute(
            text(
                "INSERT INTO consent_events (customer_id, channel, purpose, status, source, note, recorded_at) "
                f"SELECT COALESCE(new_id, cust_id), '{channel}', 'marketing', {status}, 'import', :note, {now} "
                f"FROM {STAGE} WHERE consent_{channel} = 1"
            ),
            {"note": f"file import (source {source}, field {field})"[:500]},
        )


def _json(conn: Connection, literal: str) -> str:
    return f"'{literal}'::jsonb" if st.is_pg(conn) else f"'{literal}'"
