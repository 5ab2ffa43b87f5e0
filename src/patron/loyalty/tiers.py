"""Tiers: moving members up as soon as they qualify, the review at each member's period end, tier changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from patron.loyalty import repository
from patron.loyalty.clock import _now, add_months
from patron.loyalty.config import ProgrammeConfig, TierBasis
from patron.loyalty.rules import current_config
from patron.models import LoyaltyMember


@dataclass
class TierReview:
    reviewed: int = 0
    upgraded: int = 0
    kept: int = 0
    downgraded: int = 0


def review_tiers(session: Session, *, now: datetime | None = None) -> TierReview:
    """At each member's period end: keep the tier if still earned, else move down to the
    tier the window's points (or spend) reach; the next review is one window later.

    The window is the one before the review, so a member keeps a tier by earning its
    threshold again within the period that followed the upgrade.
    """
    now = now or _now()
    _, config = current_config(session)
    due = list(repository.members_due_for_review(session, now))
    return _retier(session, config, due, now=now, reason="review")


def _upgrade(session: Session, config: ProgrammeConfig, members: list[LoyaltyMember], *, now: datetime) -> None:
    """Move members up as soon as they qualify for a higher tier (never down: that waits
    for the review at the period's end)."""
    values = _qualifying_values(session, config, members, now)
    for member in members:
        target = config.tier_for(values[member.id])
        if config.tier_rank(target.name) > config.tier_rank(member.tier):
            _set_tier(session, config, member, target.name, "upgrade", values[member.id], now)
    session.flush()  # once for all: the tier changes go in as one batch


def _retier(
    session: Session, config: ProgrammeConfig, members: list[LoyaltyMember], *, now: datetime, reason: str
) -> TierReview:
    review = TierReview()
    values = _qualifying_values(session, config, members, now)
    for member in members:
        review.reviewed += 1
        target = config.tier_for(values[member.id])
        current_rank = config.tier_rank(member.tier)
        known = any(t.name == member.tier for t in config.tiers.levels)
        if known and config.tier_rank(target.name) == current_rank:
            review.kept += 1
            repository.add_tier_change(
                session,
                member_id=member.id,
                from_tier=member.tier,
                to_tier=member.tier,
                reason="requalified",
                qualifying_value=values[member.id],
                changed_at=now,
            )
            member.tier_review_at = _next_review(member.tier_review_at, now, config.tiers.window_months)
        else:
            up = not known or config.tier_rank(target.name) > current_rank
            review.upgraded += up
            review.downgraded += not up
            _set_tier(
                session,
                config,
                member,
                target.name,
                reason if not known else ("upgrade" if up else "downgrade"),
                values[member.id],
                now,
            )
    session.flush()
    return review


def _set_tier(
    session: Session,
    config: ProgrammeConfig,
    member: LoyaltyMember,
    tier: str,
    reason: str,
    value: Decimal,
    now: datetime,
) -> None:
    repository.add_tier_change(
        session,
        member_id=member.id,
        from_tier=member.tier,
        to_tier=tier,
        reason=reason,
        qualifying_value=value,
        changed_at=now,
    )
    member.tier = tier
    member.tier_since = now
    member.tier_review_at = add_months(now, config.tiers.window_months)


def _qualifying_values(
    session: Session, config: ProgrammeConfig, members: Sequence[LoyaltyMember], now: datetime
) -> dict[int, Decimal]:
    """Each member's points earned (or money spent) in the tier window ending `now`."""
    since = add_months(now, -config.tiers.window_months)
    ids = [m.id for m in members]
    out = dict.fromkeys(ids, Decimal(0))
    if not ids:
        return out
    if config.tiers.basis == TierBasis.points:
        for start in range(0, len(ids), 1000):
            for member_id, points in repository.qualifying_points(session, ids[start : start + 1000], since).items():
                out[member_id] = Decimal(points)
        return out
    from patron.orders import service as orders

    by_customer = {m.customer_id: m.id for m in members if m.customer_id is not None}
    spend = orders.net_spend_by_customer(session, customer_ids=sorted(by_customer), since=since)
    for customer_id, amount in spend.items():
        out[by_customer[customer_id]] = amount
    return out


def _next_review(previous: datetime, now: datetime, months: int) -> datetime:
    nxt = add_months(previous, months)
    while nxt <= now:
        nxt = add_months(nxt, months)
    return nxt
