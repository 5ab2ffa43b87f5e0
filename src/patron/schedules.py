"""Schedules of the periodic jobs: a cron line in UTC, or "every N days|hours|minutes".

Apart from the jobs themselves so that the settings can check a schedule without importing
every domain the jobs run.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from croniter import croniter

from patron.errors import InvalidInput

_EVERY = re.compile(r"^every\s+(\d+)\s*(d|day|days|h|hour|hours|m|min|minute|minutes)$")


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time after `after` that the schedule falls due (UTC)."""
    every = _EVERY.match(schedule.strip().lower())
    if every:
        n, unit = int(every.group(1)), every.group(2)[0]
        return after + {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
    return croniter(schedule, after).get_next(datetime)


def check_schedule(schedule: str, *, field: str) -> str:
    """The schedule, or InvalidInput naming the setting when it is neither a cron line nor "every N unit"."""
    text = schedule.strip()
    every = _EVERY.match(text.lower())
    if (every and int(every.group(1)) > 0) or (not every and croniter.is_valid(text)):
        return text
    raise InvalidInput(
        f"{field} must be a cron line such as '0 2 * * *' (UTC) or 'every 7 days', not {schedule!r}",
        detail={"field": field},
    )
