"""Customer profiles and consent (the 360 view is assembled in patron.customer360)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron import events
from patron.customers import repository
from patron.customers.schemas import ConsentChange, CustomerCreate, CustomerUpdate
from patron.customers.schemas import Customer as CustomerOut
from patron.errors import Conflict, NotFound
from patron.models import ConsentEvent, Customer, CustomerExternalId
from patron.pagination import Page, paginate, parse_sort
from patron.validation import raise_validation

SORTS = {
    "id": Customer.id,
    "created_at": Customer.created_at,
    "updated_at": Customer.updated_at,
    "last_name": Customer.last_name,
    "email": Customer.email,
}


def get_customer(session: Session, customer_id: int) -> Customer:
    """The customer with this id, live or merged (see resolve_customer_id)."""
    customer = repository.get(session, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", detail={"field": "customer_id"})
    return customer


def resolve_customer_id(session: Session, customer_id: int) -> int:
    """The live customer an id stands for: itself, or the survivor it was merged into; 404 if unknown."""
    customer = get_customer(session, customer_id)
    return customer.survivor_id


def get_live_customer(session: Session, customer_id: int) -> Customer:
    """The customer, refusing (409, naming the survivor) one that was merged into another."""
    customer = get_customer(session, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(
            f"customer {customer_id} was merged into customer {customer.merged_into_id}; "
            f"change that customer instead, or undo the merge",
            detail={"field": "customer_id", "survivor_id": customer.merged_into_id},
        )
    return customer


def list_customers(
    session: Session, *, sort: str = "-created_at", limit: int = 50, cursor: str | None = None, **filters
) -> Page[Customer]:
    """Filtered, sorted, cursor-paginated customers (see repository.list_query for filters)."""
    sort_col, descending = parse_sort(sort, SORTS)
    stmt = repository.list_query(**filters)
    if sort_col is Customer.email:
        stmt = stmt.where(Customer.email.is_not(None))
    return paginate(
        session, stmt, sort_col=sort_col, id_col=Customer.id, descending=descending, limit=limit, cursor=cursor
    )


def create_customer(
    session: Session, *, data: CustomerCreate, user_id: int | None = None, via: str = "api"
) -> Customer:
    """Create a customer with external ids and initial consents; 409 on a duplicate."""
    _check_unique(session, email=data.email, external_ids=data.external_ids)
    fields = data.model_dump(exclude={"external_ids", "consents"})
    customer = Customer(**fields)
    customer.external_ids = [CustomerExternalId(source=s, external_id=e) for s, e in data.external_ids.items()]
    session.add(customer)
    _flush(session)
    for change in data.consents:
        _append_consent(session, customer.id, change, user_id)
    _flush(session)
    events.publish(session, events.CustomersCreated(customer_ids=[customer.id], via=via, actor=_actor(user_id)))
    return customer


def update_customer(session: Session, customer_id: int, *, data: CustomerUpdate, via: str = "api") -> Customer:
    """Apply the fields that were sent; cross-field rules are checked on the merged result."""
    customer = get_live_customer(session, customer_id)
    changes = data.model_dump(exclude_unset=True)
    merged = CustomerOut.model_validate(customer).model_dump(include=set(CustomerUpdate.model_fields))
    merged.update(changes)
    try:
        CustomerUpdate.model_validate(merged)
    except ValidationError as exc:
        raise_validation(exc)
    _check_unique(
        session,
        email=changes.get("email") if "email" in changes else None,
        external_ids=changes.get("external_ids") or {},
        exclude_id=customer.id,
    )
    external_ids = changes.pop("external_ids", None)
    for name, value in changes.items():
        setattr(customer, name, value)
    if external_ids is not None:
        _replace_external_ids(session, customer, external_ids)
    _flush(session)
    events.publish(session, events.CustomersUpdated(customer_ids=[customer.id], via=via))
    return customer


def delete_customer(session: Session, customer_id: int) -> None:
    """Delete a customer and everything recorded about them (orders, timeline, consent)."""
    customer = get_live_customer(session, customer_id)
    session.delete(customer)
    session.flush()
    events.publish(session, events.CustomerDeleted(customer_id=customer_id))


def record_consent(
    session: Session, customer_id: int, *, change: ConsentChange, user_id: int | None = None
) -> ConsentEvent:
    """Append a consent decision (to the survivor, for a merged id); the history is never edited."""
    survivor_id = resolve_customer_id(session, customer_id)
    event = _append_consent(session, survivor_id, change, user_id)
    session.flush()
    # A new customer's first consents travel with customers.created instead.
    events.publish(
        session,
        events.ConsentChanged(
            customer_id=survivor_id, channel=str(change.channel), status=str(change.status), actor=_actor(user_id)
        ),
    )
    return event


def current_consents(session: Session, customer_id: int) -> list[ConsentEvent]:
    get_customer(session, customer_id)
    return repository.current_consents(session, customer_id)


def consent_history(session: Session, customer_id: int) -> list[ConsentEvent]:
    get_customer(session, customer_id)
    return repository.consent_history(session, customer_id)


def customers_created_by_month(session: Session, *, since: datetime) -> list[tuple[str, int]]:
    return repository.count_created_by_month(session, since)


def count_customers(session: Session) -> int:
    return repository.count(session)


def _append_consent(session: Session, customer_id: int, change: ConsentChange, user_id: int | None) -> ConsentEvent:
    event = ConsentEvent(customer_id=customer_id, user_id=user_id, **change.model_dump())
    session.add(event)
    return event


def _actor(user_id: int | None) -> str:
    return f"user {user_id}" if user_id is not None else ""


def _check_unique(
    session: Session, *, email: str | None, external_ids: dict[str, str], exclude_id: int | None = None
) -> None:
    if email:
        other = repository.get_by_email(session, email)
        if other is not None and other.id != exclude_id:
            raise Conflict(
                f"another customer (id {other.id}) already has email {email}",
                detail={"field": "email", "customer_id": other.id},
            )
    for source, ext_id in external_ids.items():
        owner = repository.external_id_owner(session, source, ext_id)
        if owner is not None and owner != exclude_id:
            raise Conflict(
                f"external id {source}:{ext_id} already belongs to customer {owner}",
                detail={"field": f"external_ids.{source}", "customer_id": owner},
            )


def _replace_external_ids(session: Session, customer: Customer, external_ids: dict[str, str]) -> None:
    existing = {x.source: x for x in customer.external_ids}
    for source, row in existing.items():
        if source not in external_ids:
            customer.external_ids.remove(row)
        elif row.external_id != external_ids[source]:
            row.external_id = external_ids[source]
    for source, ext_id in external_ids.items():
        if source not in existing:
            customer.external_ids.append(CustomerExternalId(source=source, external_id=ext_id))


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # lost a race with a concurrent insert of the same key
        raise Conflict("a customer with this email or external id already exists") from exc


# Bound IN lists: SQLite allows 32,766 parameters, and shorter lists plan better everywhere.
_CHUNK = 1000


def ids_by_email(session: Session, *, emails: list[str]) -> dict[str, int]:
    """{email (lower case): live customer id} for the emails some customer has."""
    wanted = sorted({e.strip().lower() for e in emails})
    out: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        out.update(repository.ids_by_email(session, wanted[start : start + _CHUNK]))
    return out


def ids_by_external_id(session: Session, *, refs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """{(source, external id): live customer id} for the references some customer has."""
    wanted = sorted(set(refs))
    out: dict[tuple[str, str], int] = {}
    for start in range(0, len(wanted), _CHUNK):
        out.update(repository.ids_by_external_id(session, wanted[start : start + _CHUNK]))
    return out


def survivors_of(session: Session, *, customer_ids: list[int]) -> dict[int, int]:
    """{customer id: the live customer it stands for} for the ids that exist."""
    wanted = sorted(set(customer_ids))
    out: dict[int, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        out.update(repository.survivors_of(session, wanted[start : start + _CHUNK]))
    return out
