"""Scheduled segment work: the periodic membership snapshot behind the migration matrix,
run by the worker's "segment-snapshots" job (see patron.jobs)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from patron.db import session_scope

# Any constant: PostgreSQL advisory locks are keyed by a number the application chooses.
_ADVISORY_KEY = 0x5E6_5A45


def snapshot_if_due(engine: Engine, *, every_days: int) -> int | None:
    """Take a snapshot when the last is every_days old or older; the snapshot's id, or None."""
    from patron.segments import service

    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            # Several `patron serve` processes may share the database: one snapshot between them.
            locked = session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY}).scalar()
            if not locked:
                return None
        snap = service.snapshot_if_due(session, every_days=every_days, actor="scheduler")
        return snap.id if snap is not None else None
