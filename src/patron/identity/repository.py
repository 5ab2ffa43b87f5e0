"""Queries behind duplicate detection and merges.

Blocking keeps detection linear in the number of customers: exact keys (canonical email,
phone) are grouped by the database, and fuzzy name comparison only ever runs inside
small blocks (same postcode; same city and last-name initial).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, func, select, update
from sqlalchemy.orm import Session, aliased

from patron.models import Customer, CustomerMerge, User
from patron.sqlfunctions import str_position

GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
_LIVE = Customer.merged_into_id.is_(None)
# Several thousand values per IN list stay under every driver's bound-parameter limit.
_CHUNK = 1000

BRIEF_COLUMNS = (
    Customer.id,
    Customer.first_name,
    Customer.last_name,
    Customer.email,
    Customer.phone,
    Customer.postal_code,
    Customer.city,
    Customer.country,
    Customer.created_at,
)


def canonical_email_sql(email: ColumnElement) -> ColumnElement:
    """validation.canonical_email() in SQL, for a stored (already lower-cased) address."""
    at = str_position(email, "@")
    local = func.substr(email, 1, at - 1, type_=String)
    domain = func.substr(email, at + 1, type_=String)
    plus = str_position(local, "+")
    untagged = case((plus > 1, func.substr(local, 1, plus - 1, type_=String)), else_=local)
    return case(
        (domain.in_(GMAIL_DOMAINS), func.replace(untagged, ".", "", type_=String) + "@gmail.com"),
        else_=untagged + "@" + domain,
    )


def postcode_key(postal_code: ColumnElement) -> ColumnElement:
    return func.upper(func.replace(postal_code, " ", "", type_=String), type_=String)


EXACT_KEYS = {
    "email": canonical_email_sql(Customer.email),
    "phone": Customer.phone,
}
BLOCK_KEYS = {
    "postcode": postcode_key(Customer.postal_code),
    "city": func.lower(Customer.city, type_=String) + "|" + func.lower(func.substr(Customer.last_name, 1, 1)),
}


def _shared(key: ColumnElement, *columns) -> Select:
    """Live customers whose `key` at least one other live customer shares, ordered by key."""
    inner = (
        select(key.label("k"), *columns, func.count().over(partition_by=key).label("n"))
        .where(_LIVE, key.is_not(None), key != "")
        .subquery()
    )
    return select(inner.c.k, *(inner.c[c.key] for c in columns)).where(inner.c.n > 1).order_by(inner.c.k, inner.c.id)


def exact_groups(session: Session, key: str) -> list[list[int]]:
    """Ids of live customers grouped by an exact key ("email" canonical, or "phone"); groups of 2+."""
    groups: dict[Any, list[int]] = {}
    for k, customer_id in session.execute(_shared(EXACT_KEYS[key], Customer.id)):
        groups.setdefault(k, []).append(customer_id)
    return list(groups.values())


def name_blocks(session: Session, key: str) -> Iterator[list[tuple[int, str, str]]]:
    """Blocks of (id, first_name, last_name) sharing a block key ("postcode" or "city"), 2+ each."""
    block: list[tuple[int, str, str]] = []
    current = None
    rows = session.execute(_shared(BLOCK_KEYS[key], Customer.id, Customer.first_name, Customer.last_name))
    for k, customer_id, first, last in rows:
        if k != current and block:
            yield block
            block = []
        current = k
        block.append((customer_id, first, last))
    if block:
        yield block


def briefs(session: Session, ids: list[int]) -> dict[int, Any]:
    """{id: row of BRIEF_COLUMNS} for the given customers."""
    out: dict[int, Any] = {}
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        out.update({row.id: row for row in session.execute(select(*BRIEF_COLUMNS).where(Customer.id.in_(chunk)))})
    return out


def lock_customers(session: Session, ids: list[int]) -> dict[int, Customer]:
    """Load and lock (FOR UPDATE on PostgreSQL) the given customers, in id order against deadlocks."""
    stmt = (
        select(Customer)
        .where(Customer.id.in_(ids))
        .order_by(Customer.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {c.id: c for c in session.scalars(stmt)}


def move_rows(session: Session, model, column: str, *, from_id: int, to_id: int) -> list[int]:
    """Point every `model` row whose `column` is `from_id` at `to_id`; the ids of the rows moved."""
    col = getattr(model, column)
    stmt = update(model).where(col == from_id).values({column: to_id}).returning(model.id)
    return sorted(session.scalars(stmt).all())


def restore_rows(session: Session, model, column: str, *, ids: list[int], from_id: int, to_id: int) -> int:
    """Point the listed rows back from `from_id` to `to_id` (rows changed since are left alone)."""
    col = getattr(model, column)
    restored = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        stmt = update(model).where(model.id.in_(chunk), col == from_id).values({column: to_id})
        restored += session.execute(stmt, execution_options={"synchronize_session": "fetch"}).rowcount
    return restored


def email_owner(session: Session, email: str) -> int | None:
    return session.scalar(select(Customer.id).where(Customer.email == email))


def get_merge(session: Session, merge_id: int) -> CustomerMerge | None:
    return session.get(CustomerMerge, merge_id)


def active_merge_of(session: Session, merged_id: int) -> CustomerMerge | None:
    """The merge, not undone, that made `merged_id` part of another customer."""
    stmt = (
        select(CustomerMerge)
        .where(CustomerMerge.merged_id == merged_id, CustomerMerge.undone_at.is_(None))
        .order_by(CustomerMerge.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def merges_query(*, customer_id: int | None = None, active: bool | None = None) -> Select:
    stmt = select(CustomerMerge)
    if customer_id is not None:
        stmt = stmt.where((CustomerMerge.survivor_id == customer_id) | (CustomerMerge.merged_id == customer_id))
    if active is True:
        stmt = stmt.where(CustomerMerge.undone_at.is_(None))
    elif active is False:
        stmt = stmt.where(CustomerMerge.undone_at.is_not(None))
    return stmt


def recent_merges(session: Session, *, limit: int, survivor_id: int | None = None, active_only: bool = False):
    """Newest merges with both customers' names and who merged and undid them: rows of
    (merge, survivor name, merged name, merged_by, undone_by)."""
    survivor, merged = aliased(Customer), aliased(Customer)
    merger, undoer = aliased(User), aliased(User)
    stmt = (
        select(
            CustomerMerge,
            _name(survivor),
            _name(merged),
            func.coalesce(func.nullif(merger.name, ""), merger.email),
            func.coalesce(func.nullif(undoer.name, ""), undoer.email),
        )
        .join(survivor, survivor.id == CustomerMerge.survivor_id)
        .join(merged, merged.id == CustomerMerge.merged_id)
        .outerjoin(merger, merger.id == CustomerMerge.merged_by_id)
        .outerjoin(undoer, undoer.id == CustomerMerge.undone_by_id)
        .order_by(CustomerMerge.id.desc())
        .limit(limit)
    )
    if survivor_id is not None:
        stmt = stmt.where(CustomerMerge.survivor_id == survivor_id)
    if active_only:
        stmt = stmt.where(CustomerMerge.undone_at.is_(None))
    return session.execute(stmt).all()


def _name(customer) -> ColumnElement:
    return func.trim(customer.first_name + " " + customer.last_name, type_=String)
