"""The touchpoint timeline: visits, calls, chats, emails, notes, complaints."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from patron.customer360.schemas import TimelineEntry
from patron.errors import NotFound
from patron.interactions import repository
from patron.interactions.schemas import InteractionCreate, InteractionUpdate
from patron.models import Interaction
from patron.pagination import Page, paginate, parse_sort

SORTS = {"occurred_at": Interaction.occurred_at, "id": Interaction.id}


def get_interaction(session: Session, interaction_id: int) -> Interaction:
    interaction = repository.get(session, interaction_id)
    if interaction is None:
        raise NotFound(f"interaction {interaction_id} not found", detail={"field": "interaction_id"})
    return interaction


def list_interactions(
    session: Session, *, sort: str = "-occurred_at", limit: int = 50, cursor: str | None = None, **filters
) -> Page[Interaction]:
    sort_col, descending = parse_sort(sort, SORTS)
    return paginate(
        session,
        repository.list_query(**filters),
        sort_col=sort_col,
        id_col=Interaction.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )


def create_interaction(session: Session, *, data: InteractionCreate, user_id: int | None = None) -> Interaction:
    """Add a touchpoint to a customer's timeline (the survivor's, for a merged id), attributed to the staff user."""
    from patron.customers import service as customers
    from patron.products import service as products

    customer_id = customers.resolve_customer_id(session, data.customer_id)
    if data.store_id is not None:
        products.get_store(session, data.store_id)
    fields = data.model_dump()
    fields["occurred_at"] = fields["occurred_at"] or datetime.now(UTC)
    fields["customer_id"] = customer_id
    interaction = Interaction(**fields, user_id=user_id)
    session.add(interaction)
    session.flush()
    return interaction


def update_interaction(session: Session, interaction_id: int, *, data: InteractionUpdate) -> Interaction:
    interaction = get_interaction(session, interaction_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(interaction, name, value)
    session.flush()
    return interaction


def delete_interaction(session: Session, interaction_id: int) -> None:
    session.delete(get_interaction(session, interaction_id))
    session.flush()


def timeline_entries(
    session: Session, *, customer_id: int, before: tuple[datetime, int] | None, limit: int
) -> list[TimelineEntry]:
    """The customer's interactions as timeline entries, newest first, strictly before `before`."""
    rows = repository.customer_interactions_before(session, customer_id, before, limit)
    return [
        TimelineEntry(
            type="interaction",
            id=i.id,
            occurred_at=i.occurred_at,
            kind=i.kind,
            channel=i.channel,
            title=i.subject or i.kind.replace("_", " ").capitalize(),
            body=i.body,
            user_name=user_name,
        )
        for i, user_name in rows
    ]
