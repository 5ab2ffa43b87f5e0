"""The outbox: after-commit work written in the transaction that causes it, done by `patron worker`.

A task is a row with a topic (which function does it) and a JSON payload. Workers claim
due rows under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers
share the rows; one atomic UPDATE on SQLite, whose writers queue on the database lock),
run the topic's function, and mark the row done. A failure schedules a retry with
exponential backoff and jitter; after `max_attempts` claims the row is dead-lettered and
stays visible until someone sends it again. A lease that runs out (a worker killed
mid-task) makes the row claimable again, so work is done at least once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from patron.errors import NotFound
from patron.models import OutboxTask
from patron.models.base import utcnow
from patron.models.enums import OutboxStatus

DEFAULT_MAX_ATTEMPTS = 12
# Retry n waits BACKOFF_BASE * 2**(n-1), capped, plus up to a quarter more at random so that
# the tasks of one outage do not all come back at the same moment. With 12 attempts the
# last retry comes ~15 hours after the first failure.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
ERROR_CHARS = 2000


@dataclass(frozen=True)
class Task:
    """A claimed outbox row, as its function gets it."""

    id: int
    topic: str
    event_id: str | None
    payload: dict[str, Any]
    attempt: int  # 1 on the first claim
    max_attempts: int


TaskFunction = Callable[[Engine, Task], None]
_tasks: dict[str, TaskFunction] = {}


def task(topic: str):
    """Register the decorated fn(engine, task) as the function for `topic`.

    It runs outside any transaction (it opens its own, short ones) and may run more than
    once for one row, after a crash: make it idempotent or de-duplicate on the row id.
    """

    def register(fn: TaskFunction) -> TaskFunction:
        _tasks[topic] = fn
        return fn

    return register


def function_for(topic: str) -> TaskFunction | None:
    return _tasks.get(topic)


def enqueue(
    session: Session,
    *,
    topic: str,
    payload: dict[str, Any],
    event_id: str | None = None,
    available_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> OutboxTask:
    """Add a task in the caller's transaction: it exists only if that transaction commits."""
    row = OutboxTask(
        topic=topic,
        payload=payload,
        event_id=event_id,
        available_at=available_at or utcnow(),
        max_attempts=max_attempts,
    )
    session.add(row)
    return row


def backoff(attempt: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait before retrying after failed attempt number `attempt` (1-based)."""
    base = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP)
    return base * (1 + (rng or random).random() / 4)


# --- what workers do with the rows -----------------------------------------------------------


def claim(session: Session, *, worker: str, limit: int, now: datetime, lease: timedelta) -> list[Task]:
    """Claim up to `limit` due rows for `worker` until now + lease; oldest first."""
    due = (
        select(OutboxTask.id)
        .where(
            OutboxTask.status == OutboxStatus.pending,
            OutboxTask.available_at <= now,
            or_(OutboxTask.lease_expires_at.is_(None), OutboxTask.lease_expires_at < now),
        )
        .order_by(OutboxTask.available_at, OutboxTask.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(OutboxTask)
        .where(OutboxTask.id.in_(due.scalar_subquery()))
        .values(claimed_by=worker, lease_expires_at=now + lease, attempts=OutboxTask.attempts + 1)
        .returning(
            OutboxTask.id,
            OutboxTask.topic,
            OutboxTask.event_id,
            OutboxTask.payload,
            OutboxTask.attempts,
            OutboxTask.max_attempts,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((Task(*row) for row in rows), key=lambda t: t.id)


def renew(session: Session, *, worker: str, ids: Sequence[int], until: datetime) -> None:
    """Extend the lease on rows this worker still holds."""
    if ids:
        session.execute(
            update(OutboxTask)
            .where(OutboxTask.id.in_(ids), OutboxTask.claimed_by == worker, OutboxTask.status == OutboxStatus.pending)
            .values(lease_expires_at=until)
            .execution_options(synchronize_session=False)
        )


def finish(session: Session, *, worker: str, task_id: int, now: datetime) -> bool:
    """Mark a row done; False when this worker no longer held it (its lease ran out and
    another worker took it over: that one will finish it)."""
    result = session.execute(
        update(OutboxTask)
        .where(OutboxTask.id == task_id, OutboxTask.claimed_by == worker, OutboxTask.status == OutboxStatus.pending)
        .values(status=OutboxStatus.done, finished_at=now, claimed_by=None, lease_expires_at=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def fail(session: Session, *, worker: str, task: Task, error: str, now: datetime, rng: random.Random | None = None):
    """Record a failed attempt: retry later with backoff, or dead-letter after the last attempt.
    The new status, or None when this worker no longer held the row."""
    dead = task.attempt >= task.max_attempts
    values: dict[str, Any] = {"claimed_by": None, "lease_expires_at": None, "last_error": error[:ERROR_CHARS]}
    if dead:
        values |= {"status": OutboxStatus.dead, "finished_at": now}
    else:
        values["available_at"] = now + backoff(task.attempt, rng=rng)
    result = session.execute(
        update(OutboxTask)
        .where(OutboxTask.id == task.id, OutboxTask.claimed_by == worker, OutboxTask.status == OutboxStatus.pending)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return OutboxStatus.dead if dead else OutboxStatus.pending


def release(session: Session, *, worker: str, ids: Sequence[int]) -> int:
    """Give back rows claimed but not started (a worker stopping): the claim did not count."""
    if not ids:
        return 0
    result = session.execute(
        update(OutboxTask)
        .where(OutboxTask.id.in_(ids), OutboxTask.claimed_by == worker, OutboxTask.status == OutboxStatus.pending)
        .values(claimed_by=None, lease_expires_at=None, attempts=OutboxTask.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


# --- for people: what is waiting, what died, send again ----------------------------------------


def counts(session: Session) -> dict[str, int]:
    """Rows per status, with "retrying" (pending after a failure) apart."""
    rows = session.execute(
        select(OutboxTask.status, OutboxTask.last_error.is_not(None), func.count()).group_by(
            OutboxTask.status, OutboxTask.last_error.is_not(None)
        )
    ).all()
    out = {"pending": 0, "retrying": 0, "done": 0, "dead": 0}
    for status, failed, n in rows:
        key = "retrying" if status == OutboxStatus.pending and failed else str(status)
        out[key] += n
    return out


def dead_letters(session: Session, *, limit: int = 50) -> Sequence[OutboxTask]:
    return (
        session.execute(
            select(OutboxTask).where(OutboxTask.status == OutboxStatus.dead).order_by(OutboxTask.id.desc()).limit(limit)
        )
        .scalars()
        .all()
    )


def retry_dead(session: Session, *, task_id: int, now: datetime | None = None) -> OutboxTask:
    """Put a dead-lettered row back in the queue with a fresh set of attempts."""
    row = session.get(OutboxTask, task_id)
    if row is None or row.status != OutboxStatus.dead:
        raise NotFound(f"no dead-lettered task {task_id}", detail={"field": "task_id"})
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.available_at = now or utcnow()
    row.finished_at = None
    session.flush()
    return row


def purge_done(session: Session, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete rows done before now - older_than (dead letters stay until sent again)."""
    cutoff = (now or utcnow()) - older_than
    result = session.execute(
        delete(OutboxTask).where(OutboxTask.status == OutboxStatus.done, OutboxTask.finished_at < cutoff)
    )
    return result.rowcount
