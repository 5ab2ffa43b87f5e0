"""How points move: the posting internals the other loyalty modules call.

Every movement of points goes through `_post`, which

- claims the movement's idempotency key first (the same key and request return the stored
  transaction; the same key with another request is refused; a concurrent duplicate waits
  on the key's unique index and then gets the stored result),
- moves member balances with a guarded UPDATE that refuses to go below zero, and
- writes entries that sum to zero (it refuses to post otherwise).

All of it happens in one savepoint, so a refusal leaves nothing behind, and in the
caller's transaction (services flush, callers commit). Many credits at once (enrolments,
an order sync) go through `_post_credits`, which falls back to `_post` one by one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron import events
from patron.errors import Conflict, ValidationFailed
from patron.loyalty import repository
from patron.loyalty.clock import _now, add_months
from patron.loyalty.config import ExpiryPolicy, ProgrammeConfig
from patron.models import LoyaltyMember, LoyaltyTransaction
from patron.models.enums import LoyaltyAccountKind, LoyaltyTransactionKind

Kind = LoyaltyTransactionKind


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
    _announce(session, [(tx_id, member.id, kind, points * direction)])
    return session.get(LoyaltyTransaction, tx_id)


def _announce(session: Session, movements: list[tuple[int, int, LoyaltyTransactionKind, int]]) -> None:
    """One loyalty.posted event for movements just posted (a replay posts nothing, so says nothing)."""
    events.publish(
        session,
        events.LoyaltyPosted(
            movements=[
                {"transaction_id": tx, "member_id": member, "kind": str(kind), "points": points}
                for tx, member, kind, points in movements
            ]
        ),
    )


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
    _announce(session, [(tx_id, c.member.id, c.kind, c.points) for tx_id, c in zip(ids, credits, strict=True)])
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


def _expiry(config: ProgrammeConfig, earned_at: datetime) -> datetime | None:
    expiry = config.expiry
    if expiry.policy == ExpiryPolicy.rolling:
        return add_months(earned_at, expiry.months or 0)
    if expiry.policy == ExpiryPolicy.fixed:
        return datetime.combine(expiry.fixed_date + timedelta(days=1), time.min, tzinfo=UTC)
    return None
