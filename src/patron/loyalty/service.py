"""The loyalty programme: enrolment, the points ledger, rewards, tiers and expiry.

Every movement of points goes through `_post`, which

- claims the movement's idempotency key first (the same key and request return the stored
  transaction; the same key with another request is refused; a concurrent duplicate waits
  on the key's unique index and then gets the stored result),
- moves member balances with a guarded UPDATE that refuses to go below zero, and
- writes entries that sum to zero (it refuses to post otherwise).

All of it happens in one savepoint, so a refusal leaves nothing behind, and in the
caller's transaction (services flush, callers commit).
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from patron.loyalty import cards, repository
from patron.loyalty.config import ConfigFile, ExpiryPolicy, ProgrammeConfig, RewardConfig, TierBasis
from patron.models import LoyaltyMember, LoyaltyReward, LoyaltyTransaction, LoyaltyVoucher
from patron.models.enums import (
    LoyaltyAccountKind,
    LoyaltyTransactionKind,
    MemberStatus,
    OrderStatus,
    RewardKind,
    VoucherStatus,
)
from patron.orders.schemas import PointsOrder
from patron.pagination import MAX_LIMIT, Page, decode_cursor_values, encode_cursor, paginate

Kind = LoyaltyTransactionKind
BONUS_REASONS = ("birthday", "review", "survey", "goodwill")
# Kinds an agent may reverse. Expiries, clawbacks and transfers follow from other facts
# (a date, a return, a merge): they are undone by changing those, not by hand.
REVERSIBLE = frozenset({Kind.enrol, Kind.earn, Kind.bonus, Kind.adjust, Kind.redeem})


# --- configuration ---------------------------------------------------------------------------


# Parsed rules by (version id, created_at): versions are never changed, and validating the
# document on every posting cost more than the posting. created_at is part of the key
# because SQLite reuses the id of a version whose transaction was rolled back.
_parsed_configs: dict[tuple[int, datetime], ProgrammeConfig] = {}


def current_config(session: Session) -> tuple[int | None, ProgrammeConfig]:
    """The rules in force and their version id (None only before the first migration ran)."""
    latest = repository.latest_config_stamp(session)
    if latest is None:
        return None, ProgrammeConfig()
    config = _parsed_configs.get(latest)
    if config is None:
        if len(_parsed_configs) > 100:
            _parsed_configs.clear()
        config = _parsed_configs[latest] = ProgrammeConfig.model_validate(
            repository.config_document(session, latest[0])
        )
    return latest[0], config


def configure(session: Session, *, config: ProgrammeConfig, by: str) -> int:
    """Store a new version of the rules; returns its id. Members keep their tier until it
    is next reviewed, except those whose tier no longer exists: they move to the tier
    their qualifying points or spend reach now."""
    from patron.models import LoyaltyConfigVersion

    version = LoyaltyConfigVersion(config=config.model_dump(mode="json", exclude={"rewards"}), created_by=by)
    session.add(version)
    session.flush()
    names = {t.name for t in config.tiers.levels}
    stranded = [m for m in repository.members_due_for_review(session, _far_future()) if m.tier not in names]
    if stranded:
        _retier(session, config, stranded, now=_now(), reason="reconfigured")
    return version.id


def configure_from_file(session: Session, *, data: ConfigFile, by: str) -> tuple[int, list[LoyaltyReward]]:
    """`patron loyalty configure`: the rules, and the file's rewards created or updated by code."""
    version_id = configure(session, config=data, by=by)
    return version_id, [save_reward(session, data=reward) for reward in data.rewards]


def config_history(session: Session, *, limit: int = 20):
    return repository.config_versions(session, limit)


# --- members ---------------------------------------------------------------------------------


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


# --- the ledger ------------------------------------------------------------------------------


def award_bonus(
    session: Session,
    *,
    member_id: int,
    reason: str,
    key: str,
    points: int | None = None,
    reference: str | None = None,
    memo: str = "",
    by: str = "",
) -> LoyaltyTransaction:
    """Points for an event: a birthday, a review, a survey (the programme's amount), or
    goodwill (the points given). `reference` names what it was for ("review 812")."""
    if reason not in BONUS_REASONS:
        raise InvalidInput(
            f"unknown bonus reason {reason!r}; use one of {', '.join(BONUS_REASONS)}", detail={"field": "reason"}
        )
    version_id, config = current_config(session)
    if points is None:
        if reason == "goodwill":
            raise InvalidInput("a goodwill bonus needs the number of points", detail={"field": "points"})
        points = getattr(config.earn.bonuses, reason)
        if not points:
            raise Conflict(
                f"the programme gives no {reason} bonus (set earn.bonuses.{reason})", detail={"field": "reason"}
            )
    _positive(points)
    member = _active(session, member_id)
    label = {"birthday": "Birthday bonus", "review": "Review bonus", "survey": "Survey bonus"}.get(reason, "Goodwill")
    return _credit(
        session,
        member,
        config,
        version_id,
        kind=Kind.bonus,
        key=key,
        points=points,
        earned_at=_now(),
        memo=memo or (f"{label}: {reference}" if reference else label),
        by=by,
        details={"reason": reason, "reference": reference},
    )


def adjust(session: Session, *, member_id: int, points: int, reason: str, key: str, by: str = "") -> LoyaltyTransaction:
    """An agent's correction: a credit (points > 0, expiring like earned points) or a debit."""
    if points == 0:
        raise InvalidInput(
            "an adjustment must move points: give a positive or negative number", detail={"field": "points"}
        )
    if not reason.strip():
        raise InvalidInput("say why the points are adjusted", detail={"field": "reason"})
    member = _active(session, member_id)
    version_id, config = current_config(session)
    if points > 0:
        return _credit(
            session,
            member,
            config,
            version_id,
            kind=Kind.adjust,
            key=key,
            points=points,
            earned_at=_now(),
            memo=reason,
            by=by,
        )
    return _post(
        session,
        key=key,
        request={"adjust": member.id, "points": points, "reason": reason},
        kind=Kind.adjust,
        member=member,
        points=-points,
        direction=-1,
        legs=[(LoyaltyAccountKind.issued, -points, False, None)],
        member_legs=[(points, False, None)],
        memo=reason,
        by=by,
        config_version_id=version_id,
    )


def redeem(
    session: Session, *, member_id: int, reward_id: int, key: str, by: str = "", now: datetime | None = None
) -> LoyaltyVoucher:
    """Spend points on a reward; returns the voucher (a unique code, valid for the reward's days).

    Refused with 409 when the balance is too low (the message says the balance), the
    reward is out of stock, not yet or no longer valid, or above the member's tier.
    """
    now = now or _now()
    member = _active(session, member_id)
    reward = get_reward(session, reward_id)
    request = {"redeem": member.id, "reward": reward.id}
    stored = _replay(session, key, request)
    if stored is not None:
        return repository.voucher_for_transaction(session, stored.id)
    version_id, config = current_config(session)
    today = now.date()
    if not reward.is_active:
        raise Conflict(f"reward {reward.code} is withdrawn", detail={"field": "reward_id"})
    if reward.valid_from and today < reward.valid_from:
        raise Conflict(f"reward {reward.code} can be redeemed from {reward.valid_from}", detail={"field": "reward_id"})
    if reward.valid_until and today > reward.valid_until:
        raise Conflict(
            f"reward {reward.code} could be redeemed until {reward.valid_until}", detail={"field": "reward_id"}
        )
    if reward.min_tier and config.tier_rank(member.tier) < config.tier_rank(reward.min_tier):
        raise Conflict(
            f"reward {reward.code} is for {reward.min_tier} members and above; member {member.id} is {member.tier}",
            detail={"field": "reward_id"},
        )
    with session.begin_nested():
        tx = _post(
            session,
            key=key,
            request=request,
            kind=Kind.redeem,
            member=member,
            points=reward.points_cost,
            direction=-1,
            legs=[(LoyaltyAccountKind.redeemed, reward.points_cost, False, None)],
            member_legs=[(-reward.points_cost, False, None)],
            memo=f"Redeemed: {reward.name}",
            by=by,
            config_version_id=version_id,
            reward_id=reward.id,
        )
        if not repository.take_stock(session, reward.id):
            raise Conflict(f"reward {reward.code} is out of stock", detail={"field": "reward_id"})
        voucher = LoyaltyVoucher(
            code=_unused_voucher_code(session),
            member_id=member.id,
            reward_id=reward.id,
            transaction_id=tx.id,
            status=VoucherStatus.issued,
            issued_at=now,
            expires_at=datetime.combine(today + timedelta(days=reward.voucher_valid_days), time.max, tzinfo=UTC),
        )
        session.add(voucher)
        session.flush()
    return voucher


def get_voucher(session: Session, code: str) -> LoyaltyVoucher:
    voucher = repository.voucher_by_code(session, cards.normalise_voucher_code(code))
    if voucher is None:
        raise NotFound(f"no voucher with code {code!r}", detail={"field": "code"})
    return voucher


def consume_voucher(
    session: Session, *, code: str, by: str, reference: str | None = None, now: datetime | None = None
) -> LoyaltyVoucher:
    """Use a voucher at a till or checkout: exactly once, before it expires."""
    now = now or _now()
    voucher = get_voucher(session, code)
    if repository.consume_voucher(session, voucher.code, now=now, by=by, reference=reference):
        session.refresh(voucher)
        return voucher
    session.refresh(voucher)
    if voucher.status == VoucherStatus.consumed:
        where = f" ({voucher.consumed_reference})" if voucher.consumed_reference else ""
        raise Conflict(
            f"voucher {voucher.code} was already used on {voucher.consumed_at:%Y-%m-%d %H:%M} UTC{where}",
            detail={"field": "code"},
        )
    if voucher.status == VoucherStatus.cancelled:
        raise Conflict(f"voucher {voucher.code} was cancelled and its points returned", detail={"field": "code"})
    raise Conflict(f"voucher {voucher.code} expired on {voucher.expires_at:%Y-%m-%d}", detail={"field": "code"})


def reverse(session: Session, *, transaction_id: int, reason: str, key: str, by: str = "") -> LoyaltyTransaction:
    """Undo a transaction with a new one whose entries are its entries negated.

    A redemption's reversal cancels its voucher (refused once the voucher is used) and
    puts the stock back; an earning's reversal takes back what the order's returns have not
    already taken, and is refused (409) when the member has spent those points.
    """
    original = repository.get_transaction(session, transaction_id)
    if original is None:
        raise NotFound(f"transaction {transaction_id} not found", detail={"field": "transaction_id"})
    request = {"reverse": transaction_id, "reason": reason}
    stored = _replay(session, key, request)
    if stored is not None:
        return stored
    if original.kind not in REVERSIBLE:
        raise Conflict(
            f"a {original.kind} transaction cannot be reversed by hand; "
            + {
                Kind.expire: "give the points back with a credit adjustment",
                Kind.clawback: "a clawback follows the order's return",
                Kind.transfer: "undo the customer merge instead",
                Kind.reversal: "it is itself a reversal",
            }[original.kind],
            detail={"field": "transaction_id"},
        )
    done = repository.reversal_of(session, transaction_id)
    if done is not None:
        raise Conflict(
            f"transaction {transaction_id} was already reversed by transaction {done.id}",
            detail={"field": "transaction_id"},
        )
    if not reason.strip():
        raise InvalidInput("say why the transaction is reversed", detail={"field": "reason"})
    member = get_member(session, original.member_id)
    voucher = repository.voucher_for_transaction(session, original.id) if original.kind == Kind.redeem else None
    if voucher is not None and voucher.status == VoucherStatus.consumed:
        raise Conflict(
            f"voucher {voucher.code} of this redemption was used on {voucher.consumed_at:%Y-%m-%d}; "
            "it cannot be undone",
            detail={"field": "transaction_id"},
        )
    entries = [(e.account_id, -e.amount, e.lot, e.expires_at) for e in repository.entries_of(session, original.id)]
    points = original.points
    if original.kind == Kind.earn and original.order_id is not None:
        # Returns may already have taken part of an order's points back: undo only the rest.
        clawed = sum(
            t.points for t in repository.order_transactions(session, [original.order_id]) if t.kind == Kind.clawback
        )
        if clawed >= points:
            raise Conflict(
                f"the {points} points of order #{original.order_id} were all taken back by its returns already",
                detail={"field": "transaction_id"},
            )
        if clawed:
            entries = [(a, amount * (points - clawed) // points, lot, exp) for a, amount, lot, exp in entries]
            points -= clawed
    with session.begin_nested():
        tx = _post_entries(
            session,
            key=key,
            request=request,
            kind=Kind.reversal,
            member=member,
            points=points,
            direction=-original.direction,
            entries=entries,
            memo=f"Reversal of #{original.id} ({original.memo}): {reason}",
            by=by,
            config_version_id=original.config_version_id,
            reverses_id=original.id,
            order_id=original.order_id,
            qualifying_points=-original.qualifying_points * points // original.points if original.points else 0,
            reward_id=original.reward_id,
        )
        if voucher is not None:
            voucher.status = VoucherStatus.cancelled
            repository.return_stock(session, voucher.reward_id)
            session.flush()
    return tx


def get_transaction(session: Session, transaction_id: int) -> LoyaltyTransaction:
    tx = repository.get_transaction(session, transaction_id)
    if tx is None:
        raise NotFound(f"transaction {transaction_id} not found", detail={"field": "transaction_id"})
    return tx


def balance_after(session: Session, tx: LoyaltyTransaction) -> int:
    """The member's balance just after `tx` (what a receipt shows; the same when a request is replayed)."""
    account_id = get_member(session, tx.member_id).account_id
    return repository.balance_before(session, account_id, tx.id) + tx.direction * tx.points


def check_books(session: Session) -> list[str]:
    """Every way the ledger is out of balance, as sentences; empty when the books are right."""
    problems = [f"transaction {t}: entries sum to {n}, not 0" for t, n in repository.unbalanced_transactions(session)]
    problems += [
        f"account {a}: balance {b} but its entries sum to {s}" for a, b, s in repository.drifting_balances(session)
    ]
    return problems


@dataclass
class StatementLine:
    """One transaction as the member sees it: points in (+) or out (-), and the balance after."""

    transaction: LoyaltyTransaction
    points: int
    balance: int

    @property
    def id(self) -> int:
        return self.transaction.id

    @property
    def kind(self) -> LoyaltyTransactionKind:
        return self.transaction.kind

    @property
    def memo(self) -> str:
        return self.transaction.memo

    @property
    def created_at(self) -> datetime:
        return self.transaction.created_at


def statement(session: Session, *, member_id: int, limit: int = 50, cursor: str | None = None) -> Page[StatementLine]:
    """The member's movements, newest first, each with the running balance after it.

    Read from the member account's entries, not from the transactions' member: a transfer
    between merged members is on both members' statements.
    """
    member = get_member(session, member_id)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", detail={"field": "limit"})
    before = None
    if cursor:
        (before,) = decode_cursor_values(cursor, int)
    rows = repository.statement_rows(session, member.account_id, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return Page(items=[], next_cursor=None)
    balance = repository.balance_before(session, member.account_id, rows[0][0].id) + rows[0][1]
    lines = []
    for tx, points in rows:
        lines.append(StatementLine(transaction=tx, points=points, balance=balance))
        balance -= points
    return Page(items=lines, next_cursor=encode_cursor(rows[-1][0].id) if more else None)


# --- orders: earning and clawing back -----------------------------------------------------


@dataclass
class SyncResult:
    earned: int = 0  # points
    clawed_back: int = 0
    transactions: list[int] = field(default_factory=list)
    unrecovered: int = 0  # points a return should have taken back but the member had spent


def has_active_members(session: Session) -> bool:
    """Whether any order can earn or lose points now (bulk writers skip collecting order ids without)."""
    return repository.any_active_member(session)


def sync_orders(session: Session, *, order_ids: Sequence[int], by: str = "orders") -> SyncResult:
    """Bring the ledger in line with these orders: points for new orders of members, taken
    back for returns, refunds and cancellations. Safe to call any number of times and from
    every way orders arrive (API, batch, webhook, import): each order earns once, each
    return is clawed back once, because each has its own idempotency key.

    Only orders placed while the customer was a member earn.
    """
    result = SyncResult()
    if not order_ids or not repository.any_active_member(session):
        return result
    from patron.orders import service as orders

    brief = orders.order_customers(session, order_ids=sorted(set(order_ids)))
    members = repository.active_members_of(session, sorted({c for _, c, _ in brief}))
    eligible = [o for o, c, placed in brief if c in members and placed >= members[c].enrolled_at]
    if not eligible:
        return result
    version_id, config = current_config(session)
    posted = {}
    for tx in repository.order_transactions(session, eligible):
        posted.setdefault(tx.order_id, []).append(tx)
    points_orders = orders.orders_for_points(session, order_ids=eligible)
    # New earnings first, all in one go; then returns and cancellations, order by order
    # (they are few, and each needs the member's balance as it is then).
    new: list[tuple[LoyaltyMember, PointsOrder, int, dict]] = []
    for order in points_orders:
        member = members[order.customer_id]
        if order.status == OrderStatus.cancelled or any(t.kind == Kind.earn for t in posted.get(order.id, [])):
            continue
        points, how = points_for_order(config, order, config.tier(member.tier).earn_multiplier)
        if points > 0:
            new.append((member, order, points, how))
    result.transactions += _post_earnings(session, config, version_id, new, by=by)
    result.earned += sum(points for _, _, points, _ in new)
    returned = [o for o in points_orders if o.refunds or o.status == OrderStatus.cancelled]
    if returned:
        posted = {}
        for tx in repository.order_transactions(session, [o.id for o in returned]):
            posted.setdefault(tx.order_id, []).append(tx)
        for order in returned:
            _claw_back(session, version_id, members[order.customer_id], order, posted.get(order.id, []), result, by=by)
    if result.earned:
        earners = {member.id: member for member, _, _, _ in new}
        _upgrade(session, config, list(earners.values()), now=_now())
    return result


def points_for_order(config: ProgrammeConfig, order: PointsOrder, tier_multiplier: Decimal) -> tuple[int, dict]:
    """What an order earns under `config`, and how it was worked out.

    Each line earns its net amount x points per unit x the higher of its category's and its
    product's multiplier x the best bonus period covering it; the order's sum is multiplied
    by its channel's and the member's tier multiplier and rounded down. The order's own
    discount is spread over its lines. An order without lines (a till that sends totals)
    earns on its subtotal less discount.
    """
    earn = config.earn
    day = order.placed_at.date()
    periods = [p for p in earn.bonus_periods if p.start <= day <= p.end]
    share = Decimal(1)
    if order.lines:
        gross = sum((ln.quantity * ln.unit_price - ln.discount for ln in order.lines), Decimal(0))
        if gross > 0 and order.discount:
            share = max(Decimal(0), (gross - order.discount) / gross)
        amounts = [(ln.quantity * ln.unit_price - ln.discount, ln.category_path or "", ln.sku) for ln in order.lines]
    else:
        amounts = [(order.subtotal - order.discount, "", None)]
    base = Decimal(0)
    for amount, category, sku in amounts:
        if amount <= 0:
            continue
        line = _line_multiplier(earn.multipliers.categories, category)
        if sku is not None:
            line = max(line, earn.multipliers.products.get(sku, Decimal(1)))
        bonus = max(
            (p.multiplier for p in periods if not p.categories or any(_in_category(category, c) for c in p.categories)),
            default=Decimal(1),
        )
        base += amount * share * line * bonus
    channel = earn.multipliers.channels.get(order.channel, Decimal(1))
    exact = base * earn.points_per_unit * channel * tier_multiplier
    points = int(exact.to_integral_value(rounding=ROUND_FLOOR))
    how = {
        "base": str(base.quantize(Decimal("0.01"))),
        "points_per_unit": str(earn.points_per_unit),
        "channel_multiplier": str(channel),
        "tier_multiplier": str(tier_multiplier),
        "bonus_periods": [p.name for p in periods],
    }
    return points, how


def _post_earnings(
    session: Session,
    config: ProgrammeConfig,
    version_id: int | None,
    new: list[tuple[LoyaltyMember, PointsOrder, int, dict]],
    *,
    by: str,
) -> list[int]:
    """Post each order's points ("order:{id}:earn") together; see _post_credits."""
    credits = [
        _Credit(
            member=member,
            kind=Kind.earn,
            key=f"order:{order.id}:earn",
            points=points,
            memo=f"Order #{order.id}",
            expires_at=_expiry(config, order.placed_at),
            order_id=order.id,
            qualifying=True,
            details=how,
        )
        for member, order, points, how in new
    ]
    return _post_credits(session, credits, version_id=version_id, by=by)


@dataclass
class _Credit:
    """Points into a member's account as a lot: an order's earning, a bonus, an opening balance."""

    member: LoyaltyMember
    kind: LoyaltyTransactionKind
    key: str
    points: int
    memo: str
    expires_at: datetime | None
    order_id: int | None = None
    qualifying: bool = False
    details: dict = field(default_factory=dict)

    @property
    def request(self) -> dict:
        return _credit_request(self.kind, self.member.id, self.points, self.order_id, self.memo)


def _post_credits(session: Session, credits: list[_Credit], *, version_id: int | None, by: str) -> list[int]:
    """Post many credits with a few statements: the transactions, their entries, and one
    balance update per member (credits cannot take a balance below zero); their ids, in
    order (transactions are not loaded back: at import sizes that cost as much as writing
    them). If one of the
    keys was taken meanwhile (a concurrent sync of the same orders), the unique index
    refuses the set and each credit is posted on its own, replaying that one."""
    if not credits:
        return []
    now = _now()
    issued = _programme_accounts(session)[LoyaltyAccountKind.issued]
    rows = [
        {
            "idempotency_key": c.key,
            "request_sha256": _digest(c.request),
            "kind": c.kind,
            "member_id": c.member.id,
            "points": c.points,
            "direction": 1,
            "memo": c.memo,
            "created_by": by,
            "created_at": now,
            "config_version_id": version_id,
            "qualifying_points": c.points if c.qualifying else 0,
            "details": c.details,
            "order_id": c.order_id,
        }
        for c in credits
    ]
    try:
        with session.begin_nested():
            ids = repository.insert_transactions(session, rows)
            repository.insert_entries(
                session,
                [
                    {
                        "transaction_id": tx_id,
                        "account_id": account,
                        "amount": amount,
                        "lot": True,
                        "expires_at": c.expires_at,
                        "created_at": now,
                    }
                    for tx_id, c in zip(ids, credits, strict=True)
                    for account, amount in ((issued, -c.points), (c.member.account_id, c.points))
                ],
            )
            deltas: dict[int, int] = {}
            for c in credits:
                deltas[c.member.account_id] = deltas.get(c.member.account_id, 0) + c.points
            repository.add_to_balances(session, deltas)
    except IntegrityError:
        return [_post_credit(session, c, version_id=version_id, by=by).id for c in credits]
    return ids


def _post_credit(session: Session, c: _Credit, *, version_id: int | None, by: str) -> LoyaltyTransaction:
    return _post(
        session,
        key=c.key,
        request=c.request,
        kind=c.kind,
        member=c.member,
        points=c.points,
        direction=1,
        legs=[(LoyaltyAccountKind.issued, -c.points, True, c.expires_at)],
        member_legs=[(c.points, True, c.expires_at)],
        memo=c.memo,
        by=by,
        config_version_id=version_id,
        order_id=c.order_id,
        qualifying_points=c.points if c.qualifying else 0,
        details=c.details,
    )


def _claw_back(
    session: Session,
    version_id: int | None,
    member: LoyaltyMember,
    order: PointsOrder,
    earlier: list[LoyaltyTransaction],
    result: SyncResult,
    *,
    by: str,
) -> None:
    """Take back the points of an order's refunds and of its cancellation, each once."""
    earn = next((t for t in earlier if t.kind == Kind.earn), None)
    if earn is None:
        return
    reversed_ids = {t.reverses_id for t in earlier if t.kind == Kind.reversal}
    if earn.id in reversed_ids:
        return  # an agent took this order's points back already
    expires_at = repository.entries_of(session, earn.id)[0].expires_at
    if expires_at is not None and expires_at <= _now():
        return  # those points have lapsed: nothing left to take back
    clawed = sum(t.points for t in earlier if t.kind == Kind.clawback)
    causes: list[tuple[str, Decimal]] = []
    refunded = Decimal(0)
    for refund in order.refunds:
        refunded += refund.amount
        causes.append((f"order:{order.id}:return:{refund.id}", refunded))
    if order.status == OrderStatus.cancelled:
        causes.append((f"order:{order.id}:cancel", order.total))
    for key, cumulative in causes:
        if repository.transaction_exists(session, key):
            continue
        # Take back the share of the order's points that the refunds so far are of its
        # total, less what earlier clawbacks took; never more than the member holds.
        share = min(Decimal(1), cumulative / order.total) if order.total > 0 else Decimal(1)
        due = int((earn.points * share).to_integral_value(rounding=ROUND_FLOOR)) - clawed
        if due <= 0:
            continue
        held = repository.balance(session, member.account_id)
        take = min(due, held)
        if take <= 0:
            result.unrecovered += due
            continue
        tx = _post(
            session,
            key=key,
            request={"clawback": key},
            kind=Kind.clawback,
            member=member,
            points=take,
            direction=-1,
            legs=[(LoyaltyAccountKind.issued, take, True, expires_at)],
            member_legs=[(-take, True, expires_at)],
            memo=f"Order #{order.id} " + ("cancelled" if key.endswith("cancel") else "returned or refunded"),
            by=by,
            config_version_id=version_id,
            order_id=order.id,
            qualifying_points=-take,
            details={"due": due, "unrecovered": due - take},
        )
        clawed += take
        result.clawed_back += take
        result.unrecovered += due - take
        result.transactions.append(tx.id)


def _line_multiplier(categories: dict[str, Decimal], category: str) -> Decimal:
    # The most specific matching category wins: "Baby/Toys" over "Baby".
    best, best_len = Decimal(1), -1
    for prefix, multiplier in categories.items():
        if _in_category(category, prefix) and len(prefix) > best_len:
            best, best_len = multiplier, len(prefix)
    return best


def _in_category(category: str, prefix: str) -> bool:
    return category == prefix or category.startswith(prefix.rstrip("/") + "/")


# --- jobs: expiry, tiers, birthdays ------------------------------------------------------------


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


# --- customers merged and unmerged -------------------------------------------------------------


def on_customers_merged(session: Session, *, survivor_id: int, merged_id: int, by: str = "") -> dict[str, Any]:
    """Called by a customer merge: the duplicate's membership follows it to the survivor.

    If only the duplicate is a member, its membership moves to the survivor. If both are,
    the duplicate's points move to the survivor's account lot by lot (keeping their expiry
    dates) and its membership is marked merged. Returns what was done, for the unmerge.
    """
    loser = repository.member_for_customer(session, merged_id)
    if loser is None or loser.status != MemberStatus.active:
        return {}
    keeper = repository.member_for_customer(session, survivor_id)
    if keeper is None:
        loser.customer_id = survivor_id
        session.flush()
        return {"moved_member": loser.id, "customer_id": merged_id}
    lots = _open_lots(session, loser)
    legs = [(keeper.account_id, n, True, exp) for exp, n in lots] + [
        (loser.account_id, -n, True, exp) for exp, n in lots
    ]
    tx = None
    total = sum(n for _, n in lots)
    if total:
        tx = _post_entries(
            session,
            key=f"merge:{loser.id}:into:{keeper.id}:{_now().isoformat()}",
            request={"merge": loser.id, "into": keeper.id},
            kind=Kind.transfer,
            member=keeper,
            points=total,
            direction=1,
            entries=legs,
            memo=f"Points of member {loser.id} (customer {merged_id}, merged into this customer)",
            by=by,
            config_version_id=None,
            details={"from_member": loser.id},
        )
    loser.status = MemberStatus.merged
    loser.merged_into_id = keeper.id
    session.flush()
    return {"merged_member": loser.id, "into_member": keeper.id, "transfer": tx.id if tx else None}


def on_customers_unmerged(session: Session, *, undo: dict[str, Any], by: str = "") -> None:
    """Undo what on_customers_merged did (its return value is `undo`)."""
    if not undo:
        return
    if "moved_member" in undo:
        member = get_member(session, undo["moved_member"])
        member.customer_id = undo["customer_id"]
        session.flush()
        return
    loser = get_member(session, undo["merged_member"])
    keeper = get_member(session, undo["into_member"])
    if undo.get("transfer"):
        original = repository.get_transaction(session, undo["transfer"])
        entries = repository.entries_of(session, original.id)
        _post_entries(
            session,
            key=f"unmerge:{original.id}",
            request={"unmerge": original.id},
            kind=Kind.reversal,
            member=keeper,
            points=original.points,
            direction=-1,
            entries=[(e.account_id, -e.amount, e.lot, e.expires_at) for e in entries],
            memo=f"Points returned to member {loser.id}: customer merge undone",
            by=by,
            config_version_id=None,
            reverses_id=original.id,
        )
    loser.status = MemberStatus.active
    loser.merged_into_id = None
    session.flush()


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


# --- rewards ---------------------------------------------------------------------------------


def list_rewards(session: Session, *, active_only: bool = False) -> Sequence[LoyaltyReward]:
    return repository.rewards(session, active_only=active_only)


def get_reward(session: Session, reward_id: int) -> LoyaltyReward:
    reward = repository.get_reward(session, reward_id)
    if reward is None:
        raise NotFound(f"reward {reward_id} not found", detail={"field": "reward_id"})
    return reward


def reward_by_code(session: Session, code: str) -> LoyaltyReward:
    reward = repository.reward_by_code(session, code)
    if reward is None:
        raise NotFound(f"no reward with code {code!r}", detail={"field": "reward"})
    return reward


def save_reward(session: Session, *, data: RewardConfig, reward_id: int | None = None) -> LoyaltyReward:
    """Create a reward, or update one (by id, or by code when no id is given)."""
    from patron.products import service as products

    _, config = current_config(session)
    errors = []
    if data.min_tier is not None and all(t.name != data.min_tier for t in config.tiers.levels):
        names = ", ".join(t.name for t in config.tiers.levels)
        errors.append({"field": "min_tier", "message": f"no tier {data.min_tier!r}; the tiers are {names}"})
    product_id = None
    if data.product_sku is not None:
        _, by_sku = products.resolve_product_ids(session, ids=[], skus=[data.product_sku])
        product_id = by_sku.get(data.product_sku)
        if product_id is None:
            errors.append({"field": "product_sku", "message": f"no product with sku {data.product_sku!r}"})
    if errors:
        raise ValidationFailed(errors)
    reward = get_reward(session, reward_id) if reward_id is not None else repository.reward_by_code(session, data.code)
    clash = repository.reward_by_code(session, data.code)
    if clash is not None and reward is not None and clash.id != reward.id:
        raise Conflict(f"another reward (id {clash.id}) has code {data.code}", detail={"field": "code"})
    values = data.model_dump(exclude={"product_sku"}) | {"product_id": product_id, "kind": RewardKind(data.kind)}
    if reward is None:
        reward = LoyaltyReward(**values)
        session.add(reward)
    else:
        for name, value in values.items():
            setattr(reward, name, value)
    session.flush()
    return reward


def create_reward(session: Session, *, data: RewardConfig) -> LoyaltyReward:
    """A new reward; refused (409) when its code is taken (save_reward would update that one)."""
    clash = repository.reward_by_code(session, data.code)
    if clash is not None:
        raise Conflict(
            f"reward {clash.id} already has code {data.code}", detail={"field": "code", "reward_id": clash.id}
        )
    return save_reward(session, data=data)


def update_reward(session: Session, *, reward_id: int, changes: dict[str, Any]) -> LoyaltyReward:
    """Change some of a reward's fields (a PATCH): the result is validated as a whole."""
    from pydantic import ValidationError

    from patron.products import service as products
    from patron.validation import raise_validation

    reward = get_reward(session, reward_id)
    current = {name: getattr(reward, name) for name in RewardConfig.model_fields if name != "product_sku"}
    current["kind"] = str(reward.kind)
    current["product_sku"] = products.get_product(session, reward.product_id).sku if reward.product_id else None
    try:
        data = RewardConfig.model_validate(current | changes)
    except ValidationError as exc:
        raise_validation(exc)
    return save_reward(session, data=data, reward_id=reward_id)


# --- reports ---------------------------------------------------------------------------------


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


# --- posting ---------------------------------------------------------------------------------

# A leg on the programme's side: (account kind, amount, lot, expires_at); a member leg: (amount, lot, expires_at).
Leg = tuple[LoyaltyAccountKind, int, bool, datetime | None]
MemberLeg = tuple[int, bool, datetime | None]


def _credit(
    session: Session,
    member: LoyaltyMember,
    config: ProgrammeConfig,
    version_id: int | None,
    *,
    kind: LoyaltyTransactionKind,
    key: str,
    points: int,
    earned_at: datetime,
    memo: str,
    by: str,
    order_id: int | None = None,
    qualifying: bool = False,
    details: dict | None = None,
) -> LoyaltyTransaction:
    """Points into the member's account as a lot expiring by the programme's rule."""
    credit = _Credit(
        member=member,
        kind=kind,
        key=key,
        points=points,
        memo=memo,
        expires_at=_expiry(config, earned_at),
        order_id=order_id,
        qualifying=qualifying,
        details=details or {},
    )
    return _post_credit(session, credit, version_id=version_id, by=by)


def _post_expiry(
    session: Session,
    member: LoyaltyMember,
    points: int,
    *,
    key: str,
    request: dict,
    memo: str,
    by: str,
    version_id: int | None,
) -> LoyaltyTransaction:
    """Points out of the member's account into the programme's expired account (breakage)."""
    return _post(
        session,
        key=key,
        request=request,
        kind=Kind.expire,
        member=member,
        points=points,
        direction=-1,
        legs=[(LoyaltyAccountKind.expired, points, False, None)],
        member_legs=[(-points, False, None)],
        memo=memo,
        by=by,
        config_version_id=version_id,
    )


def _credit_request(kind: LoyaltyTransactionKind, member_id: int, points: int, order_id: int | None, memo: str) -> dict:
    # What a credit's idempotency key is checked against (the same for one and many at a time).
    return {"kind": str(kind), "member": member_id, "points": points, "order": order_id, "memo": memo}


def _programme_accounts(session: Session) -> dict[LoyaltyAccountKind, int]:
    # The programme's accounts are created once by the migration: read them once per session.
    cached = session.info.get("loyalty_programme_accounts")
    if cached is None:
        cached = session.info["loyalty_programme_accounts"] = repository.programme_account_ids(session)
    return cached


def _post(
    session: Session,
    *,
    key: str,
    request: dict,
    kind: LoyaltyTransactionKind,
    member: LoyaltyMember,
    points: int,
    direction: int,
    legs: list[Leg],
    member_legs: list[MemberLeg],
    **extra: Any,
) -> LoyaltyTransaction:
    accounts = _programme_accounts(session)
    entries = [(accounts[k], amount, lot, exp) for k, amount, lot, exp in legs]
    entries += [(member.account_id, amount, lot, exp) for amount, lot, exp in member_legs]
    return _post_entries(
        session,
        key=key,
        request=request,
        kind=kind,
        member=member,
        points=points,
        direction=direction,
        entries=entries,
        **extra,
    )


def _post_entries(
    session: Session,
    *,
    key: str,
    request: dict,
    kind: LoyaltyTransactionKind,
    member: LoyaltyMember,
    points: int,
    direction: int,
    entries: list[tuple[int, int, bool, datetime | None]],
    memo: str,
    by: str,
    config_version_id: int | None,
    **extra: Any,
) -> LoyaltyTransaction:
    """Write one balanced transaction, or return the stored one for a replayed key.

    The key is claimed by inserting the transaction (its unique index decides), not by
    looking first: a replay is rare, and the look-up cost a query on every posting.
    """
    entries = [e for e in entries if e[1] != 0]
    if sum(amount for _, amount, _, _ in entries) != 0:
        raise AssertionError(f"unbalanced posting for {key}: {entries}")  # a bug, never user input
    digest = _digest(request)
    now = _now()
    try:
        with session.begin_nested():
            tx_id = repository.insert_transaction(
                session,
                {
                    "idempotency_key": key,
                    "request_sha256": digest,
                    "kind": kind,
                    "member_id": member.id,
                    "points": points,
                    "direction": direction,
                    "memo": memo,
                    "created_by": by,
                    "created_at": now,
                    "config_version_id": config_version_id,
                    "qualifying_points": extra.pop("qualifying_points", 0),
                    "details": extra.pop("details", {}),
                    **extra,
                },
            )
            member_accounts = {}
            for account_id, amount, _, _ in entries:
                member_accounts[account_id] = member_accounts.get(account_id, 0) + amount
            programme = set(_programme_accounts(session).values())
            for account_id, amount in sorted(member_accounts.items()):
                if account_id in programme or amount == 0:
                    continue
                if not repository.move_balance(session, account_id, amount):
                    held = repository.balance(session, account_id)
                    raise Conflict(
                        f"not enough points: the balance is {held} and this needs {-amount}",
                        detail={"field": "points", "balance": held, "needed": -amount},
                    )
            repository.insert_entries(
                session,
                [
                    {
                        "transaction_id": tx_id,
                        "account_id": account_id,
                        "amount": amount,
                        "lot": lot,
                        "expires_at": expires_at,
                        "created_at": now,
                    }
                    for account_id, amount, lot, expires_at in entries
                ],
            )
    except IntegrityError:
        # The key was used before (a replay), or by a concurrent request that has since committed.
        stored = _replay(session, key, request)
        if stored is None:
            raise
        return stored
    return session.get(LoyaltyTransaction, tx_id)


def _replay(session: Session, key: str, request: dict) -> LoyaltyTransaction | None:
    stored = repository.transaction_by_key(session, key)
    if stored is None:
        return None
    if stored.request_sha256 != _digest(request):
        raise ValidationFailed(
            [
                {
                    "field": "Idempotency-Key",
                    "message": f"was already used for another movement (transaction {stored.id}); "
                    "send a new key for a new request",
                }
            ]
        )
    return stored


def _digest(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


# --- small helpers ---------------------------------------------------------------------------


def _active(session: Session, member_id: int) -> LoyaltyMember:
    member = get_member(session, member_id)
    if member.status != MemberStatus.active:
        where = f" into member {member.merged_into_id}" if member.merged_into_id else ""
        raise Conflict(f"member {member_id} is {member.status}{where}", detail={"field": "member_id"})
    return member


def _positive(points: int) -> None:
    if points <= 0:
        raise InvalidInput(f"points must be a positive whole number, not {points}", detail={"field": "points"})


def _expiry(config: ProgrammeConfig, earned_at: datetime) -> datetime | None:
    expiry = config.expiry
    if expiry.policy == ExpiryPolicy.rolling:
        return add_months(earned_at, expiry.months or 0)
    if expiry.policy == ExpiryPolicy.fixed:
        return datetime.combine(expiry.fixed_date + timedelta(days=1), time.min, tzinfo=UTC)
    return None


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


def _new_card_numbers(session: Session, prefix: str, count: int, *, exclude: set[str]) -> list[str]:
    """`count` unused card numbers: 10^11 per prefix, so a clash is rare; checked against the
    members in one query per round, and the unique index backs this up."""
    out: set[str] = set()
    while len(out) < count:
        fresh = {cards.new_card_number(prefix) for _ in range(count - len(out))} - exclude - out
        out |= fresh - repository.taken_cards(session, sorted(fresh))
    return sorted(out)


def _unused_voucher_code(session: Session) -> str:
    while True:
        code = cards.new_voucher_code()
        if not repository.voucher_code_taken(session, code):
            return code


# --- for the web pages -----------------------------------------------------------------------


def balances_of(session: Session, members: Iterable[LoyaltyMember | None]) -> dict[int, int]:
    """The points balance of each of these members, by member id."""
    present = [m for m in members if m is not None]
    held = repository.account_balances(session, sorted({m.account_id for m in present}))
    return {m.id: held.get(m.account_id, 0) for m in present}


def member_vouchers(session: Session, *, member_id: int, limit: int = 50) -> Sequence[LoyaltyVoucher]:
    """The member's vouchers, newest first."""
    return repository.member_vouchers(session, member_id, limit)


def transaction_of_member(session: Session, *, transaction_id: int, member_id: int) -> bool:
    """Whether the transaction is one of this member's own (what a page may reverse for them)."""
    tx = repository.get_transaction(session, transaction_id)
    return tx is not None and tx.member_id == member_id


def reward_product_sku(session: Session, reward: LoyaltyReward) -> str | None:
    """The SKU of a free-product reward's product (None for other rewards or a deleted product)."""
    from patron.products import service as products

    if reward.product_id is None:
        return None
    try:
        return products.get_product(session, reward.product_id).sku
    except NotFound:
        return None
