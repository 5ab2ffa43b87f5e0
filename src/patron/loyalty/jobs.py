"""The daily jobs: expiry, tier reviews and birthday bonuses."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from patron.errors import Conflict
from patron.loyalty import repository
from patron.loyalty.clock import _now
from patron.loyalty.ledger import award_bonus
from patron.loyalty.members import get_member
from patron.loyalty.posting import _post_expiry
from patron.loyalty.rules import current_config
from patron.loyalty.tiers import TierReview, review_tiers


@dataclass
class ExpiryResult:
    members: int = 0
    points: int = 0


def expire(session: Session, *, now: datetime | None = None, by: str = "expiry job") -> ExpiryResult:
    """Post the expiry of every lapsed point (see repository.lapsed); run daily."""
    now = now or _now()
    version_id, _ = current_config(session)
    result = ExpiryResult()
    for member_id, _account_id, due in repository.lapsed(session, now):
        member = get_member(session, member_id)
        try:
            _post_expiry(
                session,
                member,
                due,
                key=f"expire:{member_id}:{now.isoformat()}",
                request={"expire": member_id, "at": now.isoformat(), "points": due},
                memo="Points expired",
                by=by,
                version_id=version_id,
            )
        except Conflict:
            continue  # spent by a concurrent redemption since the sums were read: the next run decides
        result.members += 1
        result.points += due
    return result


def birthday_bonuses(session: Session, *, today: date | None = None) -> int:
    """Give today's birthday members their bonus, once a year each; returns how many got it."""
    today = today or _now().date()
    _, config = current_config(session)
    if not config.earn.bonuses.birthday:
        return 0
    days = [(today.month, today.day)]
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        days.append((2, 29))  # leap-day birthdays are celebrated on the 28th in other years
    given = 0
    for month, day in days:
        for member_id, _ in repository.members_with_birthday(session, month, day):
            key = f"birthday:{member_id}:{today.year}"
            if repository.transaction_exists(session, key):
                continue
            award_bonus(session, member_id=member_id, reason="birthday", key=key, by="birthday job")
            given += 1
    return given


@dataclass
class JobsResult:
    expired: ExpiryResult
    tiers: TierReview
    birthdays: int


def run_jobs(session: Session, *, now: datetime | None = None) -> JobsResult:
    """The daily work: expiry, tier reviews and birthday bonuses."""
    now = now or _now()
    return JobsResult(
        expired=expire(session, now=now),
        tiers=review_tiers(session, now=now),
        birthdays=birthday_bonuses(session, today=now.date()),
    )
