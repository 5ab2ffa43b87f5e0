"""The programme report: outstanding points and their value, monthly movements, breakage, tiers, top earners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patron.loyalty import repository
from patron.loyalty.clock import _now, add_months
from patron.loyalty.ledger import check_books
from patron.loyalty.posting import Kind
from patron.loyalty.rules import current_config
from patron.models import LoyaltyMember


@dataclass
class ProgrammeReport:
    members: int
    outstanding_points: int
    liability: Decimal
    currency: str
    point_value: Decimal
    # {"YYYY-MM": {"earned": n, "redeemed": n, "expired": n, "clawed_back": n, "bonus": n}}
    by_month: dict[str, dict[str, int]]
    earned_total: int
    redeemed_total: int
    expired_total: int
    breakage_rate: float | None  # expired / (earned) over the period
    tiers: list[tuple[str, int, int]]  # (tier, members, points held), in tier order
    tier_movements: list[tuple[str | None, str, str, int]]
    top_earners: list[tuple[LoyaltyMember, Any, int]]
    books_balanced: bool


def report(session: Session, *, months: int = 12, now: datetime | None = None) -> ProgrammeReport:
    """Outstanding points and their money value, monthly movements, breakage, tiers, top earners."""
    now = now or _now()
    since = add_months(datetime(now.year, now.month, 1, tzinfo=UTC), -(months - 1))
    _, config = current_config(session)
    outstanding = repository.outstanding_points(session)
    buckets = {
        Kind.earn: "earned",
        Kind.enrol: "bonus",
        Kind.bonus: "bonus",
        Kind.redeem: "redeemed",
        Kind.expire: "expired",
        Kind.clawback: "clawed_back",
        Kind.adjust: "adjusted",
        Kind.reversal: "reversed",
        Kind.transfer: "transferred",
    }
    by_month: dict[str, dict[str, int]] = {}
    cursor = since
    while cursor <= now:
        by_month[f"{cursor:%Y-%m}"] = dict.fromkeys(sorted(set(buckets.values())), 0)
        cursor = add_months(cursor, 1)
    for month, kind, signed in repository.movements_by_month(session, since):
        bucket = buckets[Kind(kind)]
        row = by_month.setdefault(month, dict.fromkeys(sorted(set(buckets.values())), 0))
        row[bucket] += abs(signed) if bucket in ("earned", "bonus", "redeemed", "expired", "clawed_back") else signed
    earned = sum(r["earned"] + r["bonus"] for r in by_month.values())
    expired = sum(r["expired"] for r in by_month.values())
    order = {t.name: i for i, t in enumerate(config.tiers.levels)}
    tiers = {t.name: (t.name, 0, 0) for t in config.tiers.levels}
    for name, n, points in repository.members_per_tier(session):
        tiers[name] = (name, n, points)
    return ProgrammeReport(
        members=repository.member_count(session),
        outstanding_points=outstanding,
        liability=(outstanding * config.point_value).quantize(Decimal("0.01")),
        currency=config.currency,
        point_value=config.point_value,
        by_month=by_month,
        earned_total=earned,
        redeemed_total=sum(r["redeemed"] for r in by_month.values()),
        expired_total=expired,
        breakage_rate=round(expired / earned, 4) if earned else None,
        tiers=sorted(tiers.values(), key=lambda t: order.get(t[0], len(order))),
        tier_movements=repository.tier_movements(session, since),
        top_earners=repository.top_earners(session, since, 10),
        books_balanced=not check_books(session),
    )
