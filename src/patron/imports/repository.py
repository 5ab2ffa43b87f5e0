"""Queries over import runs and their rejected rows."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from patron.models import ImportRowError, ImportRun
from patron.models.enums import ImportStatus


def get(session: Session, run_id: int) -> ImportRun | None:
    return session.get(ImportRun, run_id)


def list_query() -> Select:
    return select(ImportRun)


def latest_unfinished(session: Session) -> ImportRun | None:
    stmt = (
        select(ImportRun)
        .where(ImportRun.status == ImportStatus.running, ImportRun.dry_run.is_(False))
        .order_by(ImportRun.started_at.desc(), ImportRun.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def errors(session: Session, run_id: int, *, limit: int | None = None) -> Iterator[ImportRowError]:
    stmt = select(ImportRowError).where(ImportRowError.run_id == run_id).order_by(ImportRowError.row, ImportRowError.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    yield from session.scalars(stmt.execution_options(yield_per=5000))
