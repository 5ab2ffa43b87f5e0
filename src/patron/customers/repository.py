"""Queries over customers, their external ids and consent history."""

from __future__ import annotations

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from patron.models import ConsentEvent, Customer, CustomerExternalId


def get(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)


def get_by_email(session: Session, email: str) -> Customer | None:
    return session.scalars(select(Customer).where(Customer.email == email)).one_or_none()


def external_id_owner(session: Session, source: str, external_id: str) -> int | None:
    return session.scalar(
        select(CustomerExternalId.customer_id).where(
            CustomerExternalId.source == source, CustomerExternalId.external_id == external_id
        )
    )


def list_query(
    *,
    q: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    country: str | None = None,
    city: str | None = None,
    gender: str | None = None,
    acquisition_channel: str | None = None,
    external_source: str | None = None,
    external_id: str | None = None,
) -> Select:
    """Live customers matching every given filter; `q` searches name, email and phone.

    Merged customers are hidden, but an email, phone or external id that only a merged
    record still holds finds its survivor.
    """
    stmt = select(Customer).where(Customer.merged_into_id.is_(None))
    if q:
        stmt = stmt.where(_search_condition(q))
    if email:
        stmt = stmt.where(Customer.id.in_(_survivors_where(lambda c: c.email == email.strip().lower())))
    if phone:
        stmt = stmt.where(Customer.id.in_(_survivors_where(lambda c: c.phone == phone)))
    if country:
        stmt = stmt.where(Customer.country == country.upper())
    if city:
        stmt = stmt.where(func.lower(Customer.city) == city.strip().lower())
    if gender:
        stmt = stmt.where(Customer.gender == gender)
    if acquisition_channel:
        stmt = stmt.where(Customer.acquisition_channel == acquisition_channel)
    if external_id:
        match = select(CustomerExternalId.customer_id).where(CustomerExternalId.external_id == external_id)
        if external_source:
            match = match.where(CustomerExternalId.source == external_source)
        stmt = stmt.where(Customer.id.in_(_survivors_where(lambda c: c.id.in_(match))))
    return stmt


def _survivors_where(condition):
    """Ids of the live customers that the customers matching `condition` are, or were merged into."""
    owner = aliased(Customer)
    return select(owner.survivor_id).where(condition(owner))


def _search_condition(q: str):
    """Prefix search: emails and phones by their start, names by first, last or full name."""
    term = q.strip().lower()
    like = _escape_like(term) + "%"
    digits = "".join(ch for ch in term if ch.isdigit())
    conditions = [
        func.lower(Customer.first_name).like(like, escape="\\"),
        func.lower(Customer.last_name).like(like, escape="\\"),
        func.lower(Customer.first_name + " " + Customer.last_name).like(like, escape="\\"),
        Customer.email.like(like, escape="\\"),
    ]
    if len(digits) >= 4 and len(digits) >= len(term.replace(" ", "").lstrip("+")) - 4:
        # Looks like a phone number. People type it without the country code and often
        # with the national trunk prefix ("020 7946..." for +44 20 7946...), so match the
        # digits after any leading zeros anywhere in the stored E.164 number.
        conditions.append(Customer.phone.like("%" + digits.lstrip("0") + "%"))
    return or_(*conditions)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def current_consents(session: Session, customer_id: int) -> list[ConsentEvent]:
    """The latest event per (channel, purpose): the customer's consent as it stands."""
    latest = (
        select(
            ConsentEvent.channel,
            ConsentEvent.purpose,
            func.max(ConsentEvent.id).label("id"),
        )
        .where(ConsentEvent.customer_id == customer_id)
        .group_by(ConsentEvent.channel, ConsentEvent.purpose)
        .subquery()
    )
    stmt = (
        select(ConsentEvent)
        .join(latest, and_(ConsentEvent.id == latest.c.id))
        .order_by(ConsentEvent.channel, ConsentEvent.purpose)
    )
    return list(session.scalars(stmt))


def consent_history(session: Session, customer_id: int) -> list[ConsentEvent]:
    stmt = (
        select(ConsentEvent)
        .where(ConsentEvent.customer_id == customer_id)
        .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())
    )
    return list(session.scalars(stmt))


def count_created_by_month(session: Session, since) -> list[tuple[str, int]]:
    from patron.sqlfunctions import year_month

    month = year_month(Customer.created_at)
    stmt = (
        select(month, func.count())
        .where(Customer.created_at >= since, Customer.merged_into_id.is_(None))
        .group_by(month)
        .order_by(month)
    )
    return [(m, n) for m, n in session.execute(stmt)]


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))) or 0


def ids_by_email(session: Session, emails: list[str]) -> dict[str, int]:
    """{email: the live customer holding it (a merged holder's survivor)}."""
    rows = session.execute(select(Customer.email, Customer.survivor_id).where(Customer.email.in_(emails)))
    return dict(rows.all())


def ids_by_external_id(session: Session, refs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    if not refs:
        return {}
    owner = aliased(Customer)
    rows = session.execute(
        select(
            CustomerExternalId.source,
            CustomerExternalId.external_id,
            owner.survivor_id,
        )
        .join(owner, owner.id == CustomerExternalId.customer_id)
        .where(tuple_(CustomerExternalId.source, CustomerExternalId.external_id).in_(refs))
    )
    return {(s, e): cid for s, e, cid in rows}


def survivors_of(session: Session, customer_ids: list[int]) -> dict[int, int]:
    """{customer id: itself, or the customer it was merged into} for the ids that exist."""
    rows = session.execute(select(Customer.id, Customer.survivor_id).where(Customer.id.in_(customer_ids)))
    return dict(rows.all())
