"""Queries of the batch API: look-ups resolving a whole batch's references with a few IN
queries (chunked to stay under every backend's parameter limit), and the inserts of new
customers and orders. Updates and stubbed products go through their domains' services.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from patron.models import ConsentEvent, Customer, CustomerExternalId, Order, OrderLine, Product, Store

CHUNK = 500
T = TypeVar("T")


def _chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    unique = list(dict.fromkeys(items))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


def customers_by_external_id(
    session: Session, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(source, external_id) -> (the customer holding it, the customer it leads to)."""
    found = {}
    for chunk in _chunks(keys):
        rows = session.execute(
            select(CustomerExternalId.source, CustomerExternalId.external_id, Customer.id, Customer.survivor_id)
            .join(Customer, Customer.id == CustomerExternalId.customer_id)
            .where(tuple_(CustomerExternalId.source, CustomerExternalId.external_id).in_(chunk))
        )
        found.update({(source, ext): (owner, survivor) for source, ext, owner, survivor in rows})
    return found


def customers_by_email(session: Session, emails: Iterable[str]) -> dict[str, tuple[int, int]]:
    """email -> (the customer holding it, the customer it leads to)."""
    found = {}
    for chunk in _chunks(emails):
        rows = session.execute(
            select(Customer.email, Customer.id, Customer.survivor_id).where(Customer.email.in_(chunk))
        )
        found.update({email: (owner, survivor) for email, owner, survivor in rows})
    return found


def customer_survivors(session: Session, ids: Iterable[int]) -> dict[int, int]:
    """customer id -> the customer it leads to (itself unless merged); unknown ids are left out."""
    found = {}
    for chunk in _chunks(ids):
        found.update(session.execute(select(Customer.id, Customer.survivor_id).where(Customer.id.in_(chunk))).all())
    return found


def customers_by_id(session: Session, ids: Iterable[int]) -> dict[int, Customer]:
    found = {}
    for chunk in _chunks(ids):
        found.update({c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(chunk)))})
    return found


def orders_by_external_id(session: Session, external_ids: Iterable[str]) -> dict[str, Order]:
    found = {}
    for chunk in _chunks(external_ids):
        found.update({o.external_id: o for o in session.scalars(select(Order).where(Order.external_id.in_(chunk)))})
    return found


def product_ids_by_sku(session: Session, skus: Iterable[str]) -> dict[str, int]:
    found = {}
    for chunk in _chunks(skus):
        found.update(session.execute(select(Product.sku, Product.id).where(Product.sku.in_(chunk))).all())
    return found


def existing_product_ids(session: Session, ids: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(session.scalars(select(Product.id).where(Product.id.in_(chunk))))
    return found


def existing_store_ids(session: Session, ids: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(session.scalars(select(Store.id).where(Store.id.in_(chunk))))
    return found


def store_ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, int]:
    found = {}
    for chunk in _chunks(codes):
        found.update(session.execute(select(Store.code, Store.id).where(Store.code.in_(chunk))).all())
    return found


# --- inserts for new records ------------------------------------------------------------
# A batch creates most of its records, so creating is the hot path: plain INSERTs (a few
# statements per record, no unit-of-work bookkeeping and no per-record look-ups) instead of
# the services' ORM flushes, which made 10,000 records take minutes. The records are the
# services' own validated schemas, their references were resolved for the whole batch,
# and the tables' UNIQUE constraints still catch a concurrent duplicate (the record's
# savepoint is then rolled back and the record reported).


_INSERT_CUSTOMER = insert(Customer.__table__).returning(Customer.__table__.c.id)
_INSERT_ORDER = insert(Order.__table__).returning(Order.__table__.c.id)


def insert_customer(
    session: Session, *, fields: dict[str, Any], external_ids: dict[str, str], consents: list[dict[str, Any]]
) -> int:
    conn = session.connection()  # Core statements: the session's ORM execution adds nothing here
    customer_id = conn.execute(_INSERT_CUSTOMER, fields).scalar_one()
    if external_ids:
        conn.execute(
            insert(CustomerExternalId.__table__),
            [{"customer_id": customer_id, "source": s, "external_id": e} for s, e in external_ids.items()],
        )
    if consents:
        conn.execute(insert(ConsentEvent.__table__), [c | {"customer_id": customer_id} for c in consents])
    return customer_id


def insert_order(session: Session, *, fields: dict[str, Any], lines: list[dict[str, Any]]) -> int:
    conn = session.connection()
    order_id = conn.execute(_INSERT_ORDER, fields).scalar_one()
    if lines:
        conn.execute(insert(OrderLine.__table__), [line | {"order_id": order_id} for line in lines])
    return order_id
