"""The clock loyalty posts by (the real one, or a past moment while demo history is replayed) and month arithmetic."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (or earlier); the 31st becomes the month's last day."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _far_future() -> datetime:
    return datetime(9999, 1, 1, tzinfo=UTC)


# `patron demo` builds a programme's history month by month through this service, posting
# as if it were each month in turn (`replaying`); everything else runs on the real clock.
_replay_clock: ContextVar[datetime | None] = ContextVar("loyalty_replay_clock", default=None)


@contextmanager
def replaying(at: datetime) -> Iterator[None]:
    """Post as if it were `at` (transactions dated then): for generating demo history."""
    token = _replay_clock.set(at)
    try:
        yield
    finally:
        _replay_clock.reset(token)


def _now() -> datetime:
    return _replay_clock.get() or datetime.now(UTC)
