"""Members: enrolment, look-ups, leaving the programme, and a member's balance, tier progress and expiring points."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.errors import Conflict, InvalidInput, NotFound
from patron.loyalty import cards, repository
from patron.loyalty.clock import _now, add_months
from patron.loyalty.config import TierBasis
from patron.loyalty.posting import Kind, _Credit, _expiry, _post_credits, _post_expiry
from patron.loyalty.rules import current_config
from patron.loyalty.tiers import _qualifying_values
from patron.models import LoyaltyMember, LoyaltyVoucher
from patron.models.enums import MemberStatus
from patron.pagination import Page, paginate


@dataclass(frozen=True)
class Enrolment:
    """One customer to enrol: when, and for migrations a card already printed, a tier carried
    over (kept until its first review) and an opening balance."""

    customer_id: int
    enrolled_at: datetime | None = None
    card_number: str | None = None
    tier: str | None = None
    opening_points: int = 0


def enrol(
    session: Session,
    *,
    customer_id: int,
    via: str = "api",
    by: str = "",
    now: datetime | None = None,
) -> LoyaltyMember:
    """Enrol a customer: a member account, a card, the first tier and the sign-up bonus."""
    from patron.customers import service as customers

    customer = customers.get_customer(session, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(
            f"customer {customer_id} was merged into customer {customer.merged_into_id}; enrol that customer",
            detail={"field": "customer_id", "survivor_id": customer.merged_into_id},
        )
    existing = repository.member_for_customer(session, customer_id)
    if existing is not None:
        raise Conflict(
            f"customer {customer_id} is already a member (member {existing.id}, card {existing.card_number})",
            detail={"field": "customer_id", "member_id": existing.id},
        )
    (member,) = enrol_many(session, enrolments=[Enrolment(customer_id, enrolled_at=now)], via=via, by=by)
    return member


def enrol_many(session: Session, *, enrolments: Sequence[Enrolment], via: str, by: str = "") -> list[LoyaltyMember]:
    """Enrol customers known to exist, be live and not be members (member_import checks a
    file for all of that first), with a few statements for the lot: accounts, members,
    their first tier, and the sign-up bonuses and opening balances as one set of postings.

    A customer enrolled meanwhile by someone else makes the unique index refuse the set
    (409); an unusable card number is refused before anything is written.
    """
    if not enrolments:
        return []
    version_id, config = current_config(session)
    now = _now()
    wanted = [e.card_number for e in enrolments if e.card_number is not None]
    bad = [n for n in wanted if not cards.is_card_number(n)] + sorted(repository.taken_cards(session, wanted))
    if bad or len(set(wanted)) != len(wanted):
        raise Conflict(f"card {(bad or wanted)[0]} is not a valid unused card number", detail={"field": "card_number"})
    numbers = _new_card_numbers(session, config.card.prefix, len(enrolments) - len(wanted), exclude=set(wanted))
    rows = []
    for e in enrolments:
        at = e.enrolled_at or now
        tier = config.tier(e.tier) if e.tier is not None else config.tiers.levels[0]
        rows.append(
            {
                "customer_id": e.customer_id,
                "card_number": e.card_number or numbers.pop(),
                "status": MemberStatus.active,
                "enrolled_at": at,
                "enrolled_via": via,
                "tier": tier.name,
                "tier_since": at,
                "tier_review_at": add_months(at, config.tiers.window_months),
            }
        )
    try:
        with session.begin_nested():
            accounts = repository.new_accounts(session, len(rows))
            ids = repository.insert_members(
                session, [r | {"account_id": a} for r, a in zip(rows, accounts, strict=True)]
            )
    except IntegrityError as exc:  # a concurrent enrolment of one of these customers
        raise Conflict("a customer of this enrolment became a member meanwhile; nobody was enrolled") from exc
    repository.insert_tier_changes(
        session,
        [
            {
                "member_id": i,
                "from_tier": None,
                "to_tier": r["tier"],
                "reason": "enrolled",
                "changed_at": r["enrolled_at"],
            }
            for i, r in zip(ids, rows, strict=True)
        ],
    )
    members = repository.members_by_ids(session, ids)
    credits = []
    for member, e in zip(members, enrolments, strict=True):
        if config.earn.bonuses.signup:
            credits.append(
                _Credit(
                    member=member,
                    kind=Kind.enrol,
                    key=f"enrol:{member.id}",
                    points=config.earn.bonuses.signup,
                    memo="Welcome bonus",
                    expires_at=_expiry(config, member.enrolled_at),
                )
            )
        if e.opening_points:
            # Points brought from another programme: they expire by this one's rule from today.
            credits.append(
                _Credit(
                    member=member,
                    kind=Kind.adjust,
                    key=f"opening:{member.id}",
                    points=e.opening_points,
                    memo="Opening balance from the previous programme",
                    expires_at=_expiry(config, now),
                )
            )
    _post_credits(session, credits, version_id=version_id, by=by)
    return members


def get_member(session: Session, member_id: int) -> LoyaltyMember:
    member = repository.get_member(session, member_id)
    if member is None:
        raise NotFound(f"member {member_id} not found", detail={"field": "member_id"})
    return member


def member_for_customer(session: Session, customer_id: int) -> LoyaltyMember | None:
    return repository.member_for_customer(session, customer_id)


def member_by_card(session: Session, card_number: str) -> LoyaltyMember:
    number = "".join(card_number.split())
    if not cards.is_card_number(number):
        raise InvalidInput(
            f"{card_number!r} is not a card number (16 digits with a valid check digit)",
            detail={"field": "card_number"},
        )
    member = repository.member_by_card(session, number)
    if member is None:
        raise NotFound(f"no member has card {number}", detail={"field": "card_number"})
    return member


def list_members(
    session: Session,
    *,
    tier: str | None = None,
    status: MemberStatus | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[LoyaltyMember]:
    """Members, newest first; `q` finds a card number, an email or a name."""
    return paginate(
        session,
        repository.members_query(tier=tier, status=status, q=q),
        sort_col=LoyaltyMember.id,
        id_col=LoyaltyMember.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def customers_of(session: Session, members: Iterable[LoyaltyMember]) -> dict[int, Any]:
    """The customers of these members, by customer id (erased customers are missing)."""
    return repository.customers_by_id(session, sorted({m.customer_id for m in members if m.customer_id}))


def close_member(session: Session, *, member_id: int, by: str, now: datetime | None = None) -> LoyaltyMember:
    """Leave the programme: the remaining points are forfeited (posted as expired) and the
    card stops working; the statement is kept."""
    member = _active(session, member_id)
    now = now or _now()
    left = repository.balance(session, member.account_id)
    if left:
        version_id, _ = current_config(session)
        _post_expiry(
            session,
            member,
            left,
            key=f"close:{member.id}",
            request={"close": member.id},
            memo="Points forfeited on leaving the programme",
            by=by,
            version_id=version_id,
        )
    member.status = MemberStatus.closed
    member.closed_at = now
    session.flush()
    return member


@dataclass
class MemberSummary:
    member: LoyaltyMember
    balance: int
    tier: Any  # config.Tier
    next_tier: Any | None
    qualifying_value: Decimal
    to_next_tier: Decimal | None
    basis: TierBasis
    window_months: int
    expiring: list[tuple[datetime, int]]  # (date, points) that lapse in the next 90 days
    point_value: Decimal
    currency: str


def summary(session: Session, *, member_id: int, now: datetime | None = None) -> MemberSummary:
    """Balance, tier, progress to the next tier and points about to expire."""
    member = get_member(session, member_id)
    now = now or _now()
    _, config = current_config(session)
    value = _qualifying_values(session, config, [member], now)[member.id]
    tier = config.tier(member.tier)
    rank = config.tier_rank(tier.name)
    next_tier = config.tiers.levels[rank + 1] if rank + 1 < len(config.tiers.levels) else None
    return MemberSummary(
        member=member,
        balance=repository.balance(session, member.account_id),
        tier=tier,
        next_tier=next_tier,
        qualifying_value=value,
        to_next_tier=max(next_tier.threshold - value, Decimal(0)) if next_tier else None,
        basis=config.tiers.basis,
        window_months=config.tiers.window_months,
        expiring=expiring(session, member=member, until=now + timedelta(days=90)),
        point_value=config.point_value,
        currency=config.currency,
    )


def expiring(session: Session, *, member: LoyaltyMember, until: datetime) -> list[tuple[datetime, int]]:
    """(expiry date, points) that will lapse by `until` unless spent."""
    return [(exp, left) for exp, left in _open_lots(session, member) if exp is not None and exp <= until]


def _open_lots(session: Session, member: LoyaltyMember) -> list[tuple[datetime | None, int]]:
    """The member's unspent points per expiry date (the soonest-expiring are spent first)."""
    remaining = repository.spent(session, member.account_id)
    out = []
    for expires_at, points in repository.lots(session, member.account_id):
        used = min(remaining, points) if points > 0 else points
        remaining -= used
        if points - used > 0:
            out.append((expires_at, points - used))
    return out


# --- small helpers ---------------------------------------------------------------------------


def _active(session: Session, member_id: int) -> LoyaltyMember:
    member = get_member(session, member_id)
    if member.status != MemberStatus.active:
        where = f" into member {member.merged_into_id}" if member.merged_into_id else ""
        raise Conflict(f"member {member_id} is {member.status}{where}", detail={"field": "member_id"})
    return member


def _new_card_numbers(session: Session, prefix: str, count: int, *, exclude: set[str]) -> list[str]:
    """`count` unused card numbers: 10^11 per prefix, so a clash is rare; checked against the
    members in one query per round, and the unique index backs this up."""
    out: set[str] = set()
    while len(out) < count:
        fresh = {cards.new_card_number(prefix) for _ in range(count - len(out))} - exclude - out
        out |= fresh - repository.taken_cards(session, sorted(fresh))
    return sorted(out)


# --- for the web pages -----------------------------------------------------------------------


def balances_of(session: Session, members: Iterable[LoyaltyMember | None]) -> dict[int, int]:
    """The points balance of each of these members, by member id."""
    present = [m for m in members if m is not None]
    held = repository.account_balances(session, sorted({m.account_id for m in present}))
    return {m.id: held.get(m.account_id, 0) for m in present}


def member_vouchers(session: Session, *, member_id: int, limit: int = 50) -> Sequence[LoyaltyVoucher]:
    """The member's vouchers, newest first."""
    return repository.member_vouchers(session, member_id, limit)
