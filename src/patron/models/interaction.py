from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, JSONType, UTCDateTime, utcnow
from patron.models.enums import Direction, InteractionChannel, InteractionKind, db_enum


class Interaction(Base):
    """One touchpoint on the customer's timeline: a visit, call, chat, note, complaint..."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer_id_occurred_at", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # The source system's id (or a hash of the imported row), so re-imports do not repeat it.
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    kind: Mapped[InteractionKind] = mapped_column(db_enum(InteractionKind))
    channel: Mapped[InteractionChannel] = mapped_column(db_enum(InteractionChannel))
    direction: Mapped[Direction] = mapped_column(db_enum(Direction))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
