"""Scheduled loyalty work: the daily jobs (expiry, tier reviews, birthday bonuses)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from patron.db import session_scope

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 3600
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


class LoyaltyScheduler(threading.Thread):
    """A daemon thread started by `patron serve`: runs the daily jobs at start-up and then
    once each UTC day (it looks hourly whether the day has changed)."""

    def __init__(self, engine: Engine, *, interval: float = CHECK_EVERY_SECONDS):
        super().__init__(name="loyalty-jobs", daemon=True)
        self.engine = engine
        self.interval = interval
        self.stopped = threading.Event()
        self.last_day: date | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            today = datetime.now(UTC).date()
            if today != self.last_day:
                try:
                    result = run_daily_jobs(self.engine)
                    if result is not None:
                        log.info(
                            "loyalty jobs: %s points of %s members expired; %s tiers reviewed; %s birthday bonuses",
                            result.expired.points,
                            result.expired.members,
                            result.tiers.reviewed,
                            result.birthdays,
                        )
                    # Another server holding the lock is doing today's run: nothing left for this one.
                    self.last_day = today
                except Exception:  # a failed run must not end the thread; the next check retries
                    log.exception("loyalty jobs failed")
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
