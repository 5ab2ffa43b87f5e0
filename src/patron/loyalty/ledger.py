"""Points moved on request: bonuses, adjustments, redemptions and vouchers, reversals; statements, the books check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from patron.errors import Conflict, InvalidInput, NotFound
from patron.loyalty import cards, repository
from patron.loyalty.clock import _now
from patron.loyalty.members import _active, get_member
from patron.loyalty.posting import Kind, _credit, _post, _post_entries, _replay
from patron.loyalty.rewards import get_reward
from patron.loyalty.rules import current_config
from patron.models import LoyaltyTransaction, LoyaltyVoucher
from patron.models.enums import LoyaltyAccountKind, LoyaltyTransactionKind, VoucherStatus
from patron.pagination import MAX_LIMIT, Page, decode_cursor_values, encode_cursor

BONUS_REASONS = ("birthday", "review", "survey", "goodwill")
# Kinds an agent may reverse. Expiries, clawbacks and transfers follow from other facts
# (a date, a return, a merge): they are undone by changing those, not by hand.
REVERSIBLE = frozenset({Kind.enrol, Kind.earn, Kind.bonus, Kind.adjust, Kind.redeem})


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


# --- small helpers ---------------------------------------------------------------------------


def _positive(points: int) -> None:
    if points <= 0:
        raise InvalidInput(f"points must be a positive whole number, not {points}", detail={"field": "points"})


def _unused_voucher_code(session: Session) -> str:
    while True:
        code = cards.new_voucher_code()
        if not repository.voucher_code_taken(session, code):
            return code


# --- for the web pages -----------------------------------------------------------------------


def transaction_of_member(session: Session, *, transaction_id: int, member_id: int) -> bool:
    """Whether the transaction is one of this member's own (what a page may reverse for them)."""
    tx = repository.get_transaction(session, transaction_id)
    return tx is not None and tx.member_id == member_id
