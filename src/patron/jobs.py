"""Scheduled jobs, run by `patron worker`: once per period, however many workers run.

Each job has a schedule (a cron line in UTC, or "every N days|hours|minutes") and its
state in the `scheduled_jobs` table: next run, last start and end, duration, outcome.
A worker runs a job only after claiming it with one UPDATE that succeeds for exactly one
worker (the row's next run is due and nobody holds it, or the holder's lease ran out);
the others skip it until the next period.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from patron.db import session_scope
from patron.errors import InvalidInput, NotFound
from patron.models import ScheduledJob
from patron.models.base import utcnow
from patron.schedules import next_run
from patron.settings import Settings, get_settings

log = logging.getLogger(__name__)
# A job that runs longer than this is presumed dead with its worker and may be claimed again.
JOB_LEASE = timedelta(hours=2)


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    schedule: str
    run: Callable[[Engine], str]  # returns a one-line summary of what it did
    # A job new to the database runs at the first worker's start rather than at its
    # first scheduled time (the loyalty jobs always ran when the server started).
    run_at_start: bool = False


# --- the jobs ---------------------------------------------------------------------------------


def _loyalty_daily(engine: Engine) -> str:
    from patron.loyalty.tasks import run_daily_jobs

    result = run_daily_jobs(engine)
    if result is None:
        return "skipped: another process was running them"
    return (
        f"{result.expired.points} points of {result.expired.members} members expired; "
        f"{result.tiers.reviewed} tiers reviewed; {result.birthdays} birthday bonuses"
    )


def _segment_snapshots(engine: Engine) -> str:
    from patron.segments.tasks import snapshot_if_due

    taken = snapshot_if_due(engine, every_days=get_settings().segment_snapshot_days)
    return f"snapshot {taken} taken" if taken is not None else "the last snapshot is recent enough"


def _purge(engine: Engine) -> str:
    from patron import idempotency, outbox

    settings = get_settings()
    with session_scope(engine) as session:
        keys = idempotency.purge(session, older_than=timedelta(days=settings.idempotency_key_days))
        tasks = outbox.purge_done(session, older_than=timedelta(days=settings.outbox_retention_days))
    return f"{keys} idempotency keys and {tasks} finished outbox tasks deleted"


def _analyze(engine: Engine) -> str:
    from patron.analytics import service

    with session_scope(engine) as session:
        run = service.analyze(session, actor="scheduler")
        return f"run {run.id} as of {run.as_of}: {run.status}, {run.customers or 0} customers"


def configured_jobs(settings: Settings | None = None) -> list[Job]:
    """The jobs switched on by the settings, with their schedules."""
    s = settings or get_settings()
    out = []
    if s.loyalty_jobs:
        out.append(Job("loyalty-daily", "Loyalty: expiry, tier reviews, birthday bonuses", s.loyalty_schedule,
                       _loyalty_daily, run_at_start=True))  # fmt: skip
    if s.segment_snapshot_days:
        out.append(Job("segment-snapshots", "Record every segment's members (migration matrix)",
                       f"every {s.segment_snapshot_days} days", _segment_snapshots, run_at_start=True))  # fmt: skip
    out.append(Job("purge", "Delete old idempotency keys and finished outbox tasks", s.purge_schedule, _purge))
    if s.analyze_schedule:
        out.append(Job("analyze", "Score every customer (patron analyze)", s.analyze_schedule, _analyze))
    return out


# --- claiming and running ---------------------------------------------------------------------


def sync_rows(session: Session, jobs: list[Job], *, now: datetime) -> None:
    """One row per configured job; a new job is due at once, a changed schedule re-plans the next run."""
    rows = {r.name: r for r in session.execute(select(ScheduledJob)).scalars()}
    for job in jobs:
        row = rows.get(job.name)
        if row is None:
            first = now if job.run_at_start else next_run(job.schedule, now)
            session.add(ScheduledJob(name=job.name, schedule=job.schedule, next_run_at=first))
        elif row.schedule != job.schedule:
            row.schedule = job.schedule
            row.next_run_at = next_run(job.schedule, row.last_started_at or now)
    session.flush()


def _claim(session: Session, name: str, *, worker: str, now: datetime, due_only: bool) -> bool:
    conditions = [
        ScheduledJob.name == name,
        or_(ScheduledJob.running_by.is_(None), ScheduledJob.lease_expires_at < now),
    ]
    if due_only:
        conditions.append(ScheduledJob.next_run_at <= now)
    result = session.execute(
        update(ScheduledJob)
        .where(*conditions)
        .values(running_by=worker, lease_expires_at=now + JOB_LEASE, last_started_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _run(engine: Engine, job: Job, *, worker: str, now: datetime) -> tuple[str, str]:
    started = time.monotonic()
    try:
        message, outcome = job.run(engine), "ok"
    except Exception as exc:
        message, outcome = "".join(traceback.format_exception_only(exc)).strip()[:2000], "failed"
        log.exception("scheduled job %s failed", job.name)
    with session_scope(engine) as session:
        session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == job.name, ScheduledJob.running_by == worker)
            .values(
                running_by=None,
                lease_expires_at=None,
                next_run_at=next_run(job.schedule, now),
                last_finished_at=utcnow(),
                last_duration_ms=round((time.monotonic() - started) * 1000),
                last_outcome=outcome,
                last_message=message,
            )
            .execution_options(synchronize_session=False)
        )
    return outcome, message


def run_due(engine: Engine, *, worker: str, now: datetime | None = None, jobs: list[Job] | None = None) -> list[str]:
    """Run every configured job that is due and that this worker wins; the names it ran."""
    now = now or utcnow()
    jobs = configured_jobs() if jobs is None else jobs
    with session_scope(engine) as session:
        sync_rows(session, jobs, now=now)
    ran = []
    for job in jobs:
        with session_scope(engine) as session:
            won = _claim(session, job.name, worker=worker, now=now, due_only=True)
        if won:
            _run(engine, job, worker=worker, now=now)
            ran.append(job.name)
    return ran


def run_now(engine: Engine, name: str, *, worker: str | None = None) -> tuple[str, str]:
    """Run one job at once (`patron jobs run`), unless a worker is running it right now."""
    jobs = {j.name: j for j in configured_jobs()}
    if name not in jobs:
        raise NotFound(
            f"no job {name!r}; the configured jobs are {', '.join(jobs) or 'none'}", detail={"field": "name"}
        )
    now = utcnow()
    worker = worker or f"cli:{socket.gethostname()}"
    with session_scope(engine) as session:
        sync_rows(session, list(jobs.values()), now=now)
        if not _claim(session, name, worker=worker, now=now, due_only=False):
            raise InvalidInput(f"job {name!r} is running right now on another worker", detail={"field": "name"})
    return _run(engine, jobs[name], worker=worker, now=now)


def job_rows(engine: Engine) -> list[tuple[Job, ScheduledJob]]:
    """The configured jobs with their stored state (`patron jobs list`)."""
    jobs = configured_jobs()
    with session_scope(engine) as session:
        sync_rows(session, jobs, now=utcnow())
        rows = {r.name: r for r in session.execute(select(ScheduledJob)).scalars()}
        session.expunge_all()
    return [(job, rows[job.name]) for job in jobs]
