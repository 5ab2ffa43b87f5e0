"""Scheduled loyalty work: the daily jobs (expiry, tier reviews, birthday bonuses), run by
the worker's "loyalty-daily" job (see patron.jobs) or `patron loyalty run`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from patron.db import session_scope

# Any constant other than the segment snapshots' (0x5E65A45): PostgreSQL advisory locks are
# keyed by a number the application chooses.
_ADVISORY_KEY = 0x10_7A17


def run_daily_jobs(engine: Engine, *, now: datetime | None = None):
    """Run the programme's daily jobs in one transaction; their result, or None when another
    server is running them right now (PostgreSQL).

    Each job is idempotent over a day (a lapsed point expires once, a review falls due once,
    a birthday bonus has a key per member and year), so a server that runs them after
    another one did finds nothing left to do. The lock only keeps two from reading the
    same lapsed points at the same time.
    """
    from patron.loyalty import service

    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            locked = session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY}).scalar()
            if not locked:
                return None
        return service.run_jobs(session, now=now)
