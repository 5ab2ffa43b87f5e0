"""Work done after commit: the outbox of pending tasks and the schedule of periodic jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, JSONType, UTCDateTime, utcnow
from patron.models.enums import OutboxStatus, db_enum


class OutboxTask(Base):
    """One piece of after-commit work (a webhook delivery, an after-commit subscriber).

    Written in the transaction that caused it, so a rollback leaves nothing to do. A
    worker claims it by setting `claimed_by` and a lease; a lease that runs out (the
    worker was killed) makes the row claimable again. `attempts` counts claims, so a
    task that kills its worker every time is still dead-lettered in the end.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The claim query: pending rows that are due, oldest first.
        Index("ix_outbox_status_available_at", "status", "available_at"),
        Index("ix_outbox_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[OutboxStatus] = mapped_column(db_enum(OutboxStatus), default=OutboxStatus.pending)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=10)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduledJob(Base):
    """A periodic job's state, shared by every worker: whichever claims a due job runs it;
    the others see the claim (or the new next_run_at) and skip it."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(100))  # as configured: a cron line or "every N days"
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    last_outcome: Mapped[str | None] = mapped_column(String(20))  # ok, failed
    last_message: Mapped[str | None] = mapped_column(Text)
    running_by: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
