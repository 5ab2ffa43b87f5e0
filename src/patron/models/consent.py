from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, UTCDateTime, utcnow
from patron.models.enums import ConsentPurpose, ConsentStatus, ContactChannel, db_enum


class ConsentEvent(Base):
    """Append-only consent history; the current state is the latest event per
    (customer, channel, purpose). Rows are never updated, so the history is an audit trail."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_customer_id_channel_purpose", "customer_id", "channel", "purpose", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[ContactChannel] = mapped_column(db_enum(ContactChannel))
    purpose: Mapped[ConsentPurpose] = mapped_column(db_enum(ConsentPurpose))
    status: Mapped[ConsentStatus] = mapped_column(db_enum(ConsentStatus))
    source: Mapped[str] = mapped_column(String(50))  # web_form, pos, import, api, ui, unsubscribe
    note: Mapped[str | None] = mapped_column(String(500))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
