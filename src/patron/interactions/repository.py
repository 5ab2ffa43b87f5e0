from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from patron.models import Interaction, User


def get(session: Session, interaction_id: int) -> Interaction | None:
    return session.get(Interaction, interaction_id)


def list_query(
    *,
    customer_id: int | None = None,
    kind: str | None = None,
    channel: str | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
) -> Select:
    stmt = select(Interaction)
    if customer_id is not None:
        stmt = stmt.where(Interaction.customer_id == customer_id)
    if kind:
        stmt = stmt.where(Interaction.kind == kind)
    if channel:
        stmt = stmt.where(Interaction.channel == channel)
    if occurred_from:
        stmt = stmt.where(Interaction.occurred_at >= occurred_from)
    if occurred_to:
        stmt = stmt.where(Interaction.occurred_at < occurred_to)
    return stmt


def customer_interactions_before(
    session: Session, customer_id: int, before: tuple[datetime, int] | None, limit: int
) -> list[tuple[Interaction, str | None]]:
    """Newest interactions strictly before `before`, with the staff user's name."""
    stmt = (
        # Staff without a display name are shown by their email, never as nobody.
        select(Interaction, func.coalesce(func.nullif(User.name, ""), User.email))
        .outerjoin(User, User.id == Interaction.user_id)
        .where(Interaction.customer_id == customer_id)
    )
    if before is not None:
        stmt = stmt.where(tuple_(Interaction.occurred_at, Interaction.id) < before)
    stmt = stmt.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
    return [(i, name) for i, name in session.execute(stmt)]
