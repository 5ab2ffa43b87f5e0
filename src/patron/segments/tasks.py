"""Scheduled segment work: the periodic membership snapshot behind the migration matrix."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import Engine

from patron.db import session_scope

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 3600
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


class SnapshotScheduler(threading.Thread):
    """A daemon thread that checks hourly whether a snapshot is due (started by `patron serve`)."""

    def __init__(self, engine: Engine, *, every_days: int, interval: float = CHECK_EVERY_SECONDS):
        super().__init__(name="segment-snapshots", daemon=True)
        self.engine = engine
        self.every_days = every_days
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                taken = snapshot_if_due(self.engine, every_days=self.every_days)
                if taken is not None:
                    log.info("segment snapshot %s taken", taken)
            except Exception:  # a failed check must not end the thread; the next one retries
                log.exception("segment snapshot failed")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
