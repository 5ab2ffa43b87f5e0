"""Queries of the loyalty programme's tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from patron.models import (
    Customer,
    LoyaltyAccount,
    LoyaltyConfigVersion,
    LoyaltyEntry,
    LoyaltyMember,
    LoyaltyReward,
    LoyaltyTierChange,
    LoyaltyTransaction,
    LoyaltyVoucher,
)
from patron.models.enums import LoyaltyAccountKind, LoyaltyTransactionKind, MemberStatus, VoucherStatus
from patron.sqlfunctions import year_month

_accounts = LoyaltyAccount.__table__
_entries = LoyaltyEntry.__table__
_transactions = LoyaltyTransaction.__table__


# --- configuration ------------------------------------------------------------------------


def latest_config_stamp(session: Session) -> tuple[int, datetime] | None:
    row = session.execute(
        select(LoyaltyConfigVersion.id, LoyaltyConfigVersion.created_at)
        .order_by(LoyaltyConfigVersion.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def config_document(session: Session, version_id: int) -> dict[str, Any]:
    return session.execute(
        select(LoyaltyConfigVersion.config).where(LoyaltyConfigVersion.id == version_id)
    ).scalar_one()


def config_versions(session: Session, limit: int) -> Sequence[LoyaltyConfigVersion]:
    return session.scalars(select(LoyaltyConfigVersion).order_by(LoyaltyConfigVersion.id.desc()).limit(limit)).all()


# --- accounts and postings ----------------------------------------------------------------


def programme_account_ids(session: Session) -> dict[LoyaltyAccountKind, int]:
    rows = session.execute(
        select(LoyaltyAccount.kind, func.min(LoyaltyAccount.id))
        .where(LoyaltyAccount.kind != LoyaltyAccountKind.member)
        .group_by(LoyaltyAccount.kind)
    )
    return {LoyaltyAccountKind(kind): account_id for kind, account_id in rows}


def new_accounts(session: Session, count: int) -> list[int]:
    """`count` new member accounts; their ids."""
    result = session.execute(
        insert(_accounts).returning(_accounts.c.id, sort_by_parameter_order=True),
        [{"kind": LoyaltyAccountKind.member, "balance": 0} for _ in range(count)],
    )
    return list(result.scalars())


def insert_members(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    table = LoyaltyMember.__table__
    return list(session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())


def insert_tier_changes(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(LoyaltyTierChange.__table__), rows)


def members_by_ids(session: Session, ids: Sequence[int]) -> list[LoyaltyMember]:
    """The members, in the order of `ids`."""
    found: dict[int, LoyaltyMember] = {}
    for start in range(0, len(ids), 1000):
        found.update(
            (m.id, m)
            for m in session.scalars(select(LoyaltyMember).where(LoyaltyMember.id.in_(ids[start : start + 1000])))
        )
    return [found[i] for i in ids]


def taken_cards(session: Session, numbers: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for start in range(0, len(numbers), 1000):
        out.update(
            session.scalars(
                select(LoyaltyMember.card_number).where(LoyaltyMember.card_number.in_(numbers[start : start + 1000]))
            )
        )
    return out


def move_balance(session: Session, account_id: int, amount: int) -> bool:
    """Add `amount` to a member account unless that would take it below zero.

    One guarded UPDATE: on PostgreSQL a concurrent posting to the same account waits for
    the row and then re-checks the condition against the committed balance, so two
    redemptions of the whole balance cannot both pass.
    """
    result = session.execute(
        update(_accounts)
        .where(_accounts.c.id == account_id, _accounts.c.balance + amount >= 0)
        .values(balance=_accounts.c.balance + amount),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def balance(session: Session, account_id: int) -> int:
    return session.execute(select(_accounts.c.balance).where(_accounts.c.id == account_id)).scalar_one()


def transaction_by_key(session: Session, key: str) -> LoyaltyTransaction | None:
    return session.scalars(select(LoyaltyTransaction).where(LoyaltyTransaction.idempotency_key == key)).one_or_none()


def insert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(_entries), rows)


def entries_of(session: Session, transaction_id: int) -> Sequence[LoyaltyEntry]:
    return session.scalars(
        select(LoyaltyEntry).where(LoyaltyEntry.transaction_id == transaction_id).order_by(LoyaltyEntry.id)
    ).all()


def reversal_of(session: Session, transaction_id: int) -> LoyaltyTransaction | None:
    return session.scalars(
        select(LoyaltyTransaction).where(LoyaltyTransaction.reverses_id == transaction_id)
    ).one_or_none()


def lots(session: Session, account_id: int) -> list[tuple[datetime | None, int]]:
    """(expires_at, points) of the account's lot entries summed per expiry date, soonest first."""
    rows = session.execute(
        select(LoyaltyEntry.expires_at, func.sum(LoyaltyEntry.amount))
        .where(LoyaltyEntry.account_id == account_id, LoyaltyEntry.lot.is_(True))
        .group_by(LoyaltyEntry.expires_at)
    ).all()
    return sorted(((e, int(n)) for e, n in rows), key=lambda r: (r[0] is None, r[0] or datetime.min))


def spent(session: Session, account_id: int) -> int:
    """Points taken out of the account other than by unmaking lots: redeemed, expired, debited."""
    total = session.execute(
        select(func.coalesce(func.sum(LoyaltyEntry.amount), 0)).where(
            LoyaltyEntry.account_id == account_id, LoyaltyEntry.lot.is_(False)
        )
    ).scalar_one()
    return -int(total)


def lapsed(session: Session, now: datetime) -> list[tuple[int, int, int]]:
    """(member id, account id, points to expire) for every member with lapsed points.

    Spending takes the points that expire first, so what lapses is the lots expired by
    `now` less everything spent so far, when positive. One grouped query for all members.
    """
    expired = func.sum(case((and_(_entries.c.lot, _entries.c.expires_at <= now), _entries.c.amount), else_=0))
    spent_total = func.sum(case((_entries.c.lot, 0), else_=-_entries.c.amount))
    due = (expired - spent_total).label("due")
    query = (
        select(LoyaltyMember.id, _entries.c.account_id, due)
        .join(LoyaltyMember, LoyaltyMember.account_id == _entries.c.account_id)
        .group_by(LoyaltyMember.id, _entries.c.account_id)
        .having(expired - spent_total > 0)
        .order_by(LoyaltyMember.id)
    )
    return [(m, a, int(n)) for m, a, n in session.execute(query)]


def insert_transaction(session: Session, values: dict[str, Any]) -> int:
    return session.execute(insert(_transactions).values(**values).returning(_transactions.c.id)).scalar_one()


def insert_transactions(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert many transactions; their ids in the order of `rows`."""
    result = session.execute(insert(_transactions).returning(_transactions.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def add_to_balances(session: Session, deltas: dict[int, int]) -> None:
    """Add credits to member balances (credits only: they cannot take a balance below zero)."""
    if deltas:
        session.execute(
            update(_accounts)
            .where(_accounts.c.id == bindparam("account"))
            .values(balance=_accounts.c.balance + bindparam("delta")),
            [{"account": a, "delta": d} for a, d in sorted(deltas.items())],
            execution_options={"synchronize_session": False},
        )


def get_transaction(session: Session, transaction_id: int) -> LoyaltyTransaction | None:
    return session.get(LoyaltyTransaction, transaction_id)


def order_transactions(session: Session, order_ids: Iterable[int]) -> Sequence[LoyaltyTransaction]:
    return session.scalars(
        select(LoyaltyTransaction)
        .where(LoyaltyTransaction.order_id.in_(list(order_ids)))
        .order_by(LoyaltyTransaction.id)
    ).all()


def unbalanced_transactions(session: Session) -> list[tuple[int, int]]:
    """(transaction id, sum of its entries) for every transaction whose entries do not sum to 0."""
    total = func.sum(_entries.c.amount)
    rows = session.execute(
        select(_transactions.c.id, func.coalesce(total, 0))
        .select_from(_transactions.outerjoin(_entries, _entries.c.transaction_id == _transactions.c.id))
        .group_by(_transactions.c.id)
        .having(or_(total.is_(None), total != 0))
    )
    return [(t, int(n)) for t, n in rows]


def drifting_balances(session: Session) -> list[tuple[int, int, int]]:
    """(account id, stored balance, sum of entries) for member accounts where they differ."""
    total = func.coalesce(
        select(func.sum(_entries.c.amount)).where(_entries.c.account_id == _accounts.c.id).scalar_subquery(), 0
    )
    rows = session.execute(
        select(_accounts.c.id, _accounts.c.balance, total).where(
            _accounts.c.kind == LoyaltyAccountKind.member, _accounts.c.balance != total
        )
    )
    return [(a, int(b), int(s)) for a, b, s in rows]


def statement_rows(
    session: Session, account_id: int, *, before: int | None, limit: int
) -> list[tuple[LoyaltyTransaction, int]]:
    """(transaction, points it moved on this account) newest first, below transaction `before`."""
    moved = func.sum(LoyaltyEntry.amount).label("moved")
    sub = (
        select(LoyaltyEntry.transaction_id, moved)
        .where(LoyaltyEntry.account_id == account_id)
        .group_by(LoyaltyEntry.transaction_id)
    )
    if before is not None:
        sub = sub.where(LoyaltyEntry.transaction_id < before)
    sub = sub.order_by(LoyaltyEntry.transaction_id.desc()).limit(limit).subquery()
    rows = session.execute(
        select(LoyaltyTransaction, sub.c.moved)
        .join(sub, sub.c.transaction_id == LoyaltyTransaction.id)
        .order_by(LoyaltyTransaction.id.desc())
    )
    return [(tx, int(n)) for tx, n in rows]


def balance_before(session: Session, account_id: int, transaction_id: int) -> int:
    """The account's balance just before `transaction_id` (a statement page's running balance)."""
    return int(
        session.execute(
            select(func.coalesce(func.sum(LoyaltyEntry.amount), 0)).where(
                LoyaltyEntry.account_id == account_id, LoyaltyEntry.transaction_id < transaction_id
            )
        ).scalar_one()
    )


def qualifying_points(session: Session, member_ids: Sequence[int], since: datetime) -> dict[int, int]:
    rows = session.execute(
        select(LoyaltyTransaction.member_id, func.sum(LoyaltyTransaction.qualifying_points))
        .where(LoyaltyTransaction.member_id.in_(member_ids), LoyaltyTransaction.created_at >= since)
        .group_by(LoyaltyTransaction.member_id)
    )
    return {m: int(n or 0) for m, n in rows}


def transaction_exists(session: Session, key: str) -> bool:
    return (
        session.execute(select(literal(1)).where(LoyaltyTransaction.idempotency_key == key).limit(1)).first()
        is not None
    )


# --- members --------------------------------------------------------------------------------


def get_member(session: Session, member_id: int) -> LoyaltyMember | None:
    return session.get(LoyaltyMember, member_id)


def member_for_customer(session: Session, customer_id: int) -> LoyaltyMember | None:
    return session.scalars(select(LoyaltyMember).where(LoyaltyMember.customer_id == customer_id)).one_or_none()


def member_by_card(session: Session, card_number: str) -> LoyaltyMember | None:
    return session.scalars(select(LoyaltyMember).where(LoyaltyMember.card_number == card_number)).one_or_none()


def active_or_any_member_of(session: Session, customer_ids: Sequence[int]) -> dict[int, int]:
    """{customer id: member id} of the given customers that have a membership of any status."""
    out: dict[int, int] = {}
    for start in range(0, len(customer_ids), 1000):
        chunk = customer_ids[start : start + 1000]
        out.update(
            session.execute(
                select(LoyaltyMember.customer_id, LoyaltyMember.id).where(LoyaltyMember.customer_id.in_(chunk))
            ).all()
        )
    return out


def any_active_member(session: Session) -> bool:
    return (
        session.execute(select(literal(1)).where(LoyaltyMember.status == MemberStatus.active).limit(1)).first()
        is not None
    )


def active_members_of(session: Session, customer_ids: Sequence[int]) -> dict[int, LoyaltyMember]:
    """Active members by customer id, for the customers given that are members."""
    if not customer_ids:
        return {}
    members = session.scalars(
        select(LoyaltyMember).where(
            LoyaltyMember.customer_id.in_(customer_ids), LoyaltyMember.status == MemberStatus.active
        )
    )
    return {m.customer_id: m for m in members}


def members_query(*, tier: str | None = None, status: MemberStatus | None = None, q: str | None = None) -> Select:
    query = select(LoyaltyMember).outerjoin(Customer, Customer.id == LoyaltyMember.customer_id)
    if tier:
        query = query.where(LoyaltyMember.tier == tier)
    if status:
        query = query.where(LoyaltyMember.status == status)
    if q:
        term = q.strip().lower()
        # autoescape: "%" and "_" are characters to find, not wildcards.
        query = query.where(
            or_(
                LoyaltyMember.card_number == q.replace(" ", ""),
                func.lower(Customer.email).contains(term, autoescape=True),
                func.lower(Customer.first_name + " " + Customer.last_name).contains(term, autoescape=True),
            )
        )
    return query


def customers_by_id(session: Session, customer_ids: Sequence[int]) -> dict[int, Customer]:
    if not customer_ids:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))}


def members_due_for_review(session: Session, now: datetime) -> Sequence[LoyaltyMember]:
    return session.scalars(
        select(LoyaltyMember)
        .where(LoyaltyMember.status == MemberStatus.active, LoyaltyMember.tier_review_at <= now)
        .order_by(LoyaltyMember.id)
    ).all()


def members_with_birthday(session: Session, month: int, day: int) -> list[tuple[int, int]]:
    """(member id, customer id) of active members whose customer's birthday is month/day."""
    return [
        (m, c)
        for m, c in session.execute(
            select(LoyaltyMember.id, Customer.id)
            .join(Customer, Customer.id == LoyaltyMember.customer_id)
            .where(
                LoyaltyMember.status == MemberStatus.active,
                Customer.birthday.is_not(None),
                func.extract("month", Customer.birthday) == month,
                func.extract("day", Customer.birthday) == day,
            )
        )
    ]


def add_tier_change(session: Session, **values: Any) -> None:
    session.add(LoyaltyTierChange(**values))


# --- rewards and vouchers -------------------------------------------------------------------


def get_reward(session: Session, reward_id: int) -> LoyaltyReward | None:
    return session.get(LoyaltyReward, reward_id)


def reward_by_code(session: Session, code: str) -> LoyaltyReward | None:
    return session.scalars(select(LoyaltyReward).where(LoyaltyReward.code == code)).one_or_none()


def rewards(session: Session, *, active_only: bool) -> Sequence[LoyaltyReward]:
    query = select(LoyaltyReward).order_by(LoyaltyReward.points_cost, LoyaltyReward.id)
    if active_only:
        query = query.where(LoyaltyReward.is_active.is_(True))
    return session.scalars(query).all()


def take_stock(session: Session, reward_id: int) -> bool:
    """One of the reward's stock, if any is left (unlimited rewards always have one)."""
    rewards_table = LoyaltyReward.__table__
    result = session.execute(
        update(rewards_table)
        .where(rewards_table.c.id == reward_id, or_(rewards_table.c.stock.is_(None), rewards_table.c.stock > 0))
        .values(stock=case((rewards_table.c.stock.is_(None), None), else_=rewards_table.c.stock - 1)),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def return_stock(session: Session, reward_id: int) -> None:
    rewards_table = LoyaltyReward.__table__
    session.execute(
        update(rewards_table)
        .where(rewards_table.c.id == reward_id, rewards_table.c.stock.is_not(None))
        .values(stock=rewards_table.c.stock + 1),
        execution_options={"synchronize_session": False},
    )


def voucher_by_code(session: Session, code: str) -> LoyaltyVoucher | None:
    return session.scalars(select(LoyaltyVoucher).where(LoyaltyVoucher.code == code)).one_or_none()


def voucher_for_transaction(session: Session, transaction_id: int) -> LoyaltyVoucher | None:
    return session.scalars(select(LoyaltyVoucher).where(LoyaltyVoucher.transaction_id == transaction_id)).one_or_none()


def voucher_code_taken(session: Session, code: str) -> bool:
    return voucher_by_code(session, code) is not None


def consume_voucher(session: Session, code: str, *, now: datetime, by: str, reference: str | None) -> bool:
    """Mark the voucher consumed if it is issued and unexpired; false if it was not."""
    vouchers = LoyaltyVoucher.__table__
    result = session.execute(
        update(vouchers)
        .where(vouchers.c.code == code, vouchers.c.status == VoucherStatus.issued, vouchers.c.expires_at > now)
        .values(status=VoucherStatus.consumed, consumed_at=now, consumed_by=by, consumed_reference=reference),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def member_vouchers(session: Session, member_id: int, limit: int = 50) -> Sequence[LoyaltyVoucher]:
    return session.scalars(
        select(LoyaltyVoucher)
        .where(LoyaltyVoucher.member_id == member_id)
        .order_by(LoyaltyVoucher.id.desc())
        .limit(limit)
    ).all()


# --- reports ----------------------------------------------------------------------------------


def outstanding_points(session: Session) -> int:
    return int(
        session.execute(
            select(func.coalesce(func.sum(LoyaltyAccount.balance), 0)).where(
                LoyaltyAccount.kind == LoyaltyAccountKind.member
            )
        ).scalar_one()
    )


def movements_by_month(session: Session, since: datetime) -> list[tuple[str, str, int]]:
    """(YYYY-MM, transaction kind, signed points to members) per month and kind since `since`."""
    month = year_month(LoyaltyTransaction.created_at)
    rows = session.execute(
        select(month, LoyaltyTransaction.kind, func.sum(LoyaltyTransaction.direction * LoyaltyTransaction.points))
        .where(LoyaltyTransaction.created_at >= since)
        .group_by(month, LoyaltyTransaction.kind)
        .order_by(month)
    )
    return [(m, str(k), int(n or 0)) for m, k, n in rows]


def members_per_tier(session: Session) -> list[tuple[str, int, int]]:
    """(tier, members, points they hold) of active members."""
    rows = session.execute(
        select(LoyaltyMember.tier, func.count(), func.coalesce(func.sum(LoyaltyAccount.balance), 0))
        .join(LoyaltyAccount, LoyaltyAccount.id == LoyaltyMember.account_id)
        .where(LoyaltyMember.status == MemberStatus.active)
        .group_by(LoyaltyMember.tier)
    )
    return [(t, int(n), int(p)) for t, n, p in rows]


def tier_movements(session: Session, since: datetime) -> list[tuple[str | None, str, str, int]]:
    rows = session.execute(
        select(LoyaltyTierChange.from_tier, LoyaltyTierChange.to_tier, LoyaltyTierChange.reason, func.count())
        .where(LoyaltyTierChange.changed_at >= since)
        .group_by(LoyaltyTierChange.from_tier, LoyaltyTierChange.to_tier, LoyaltyTierChange.reason)
    )
    return [(f, t, r, int(n)) for f, t, r, n in rows]


def top_earners(session: Session, since: datetime, limit: int) -> list[tuple[LoyaltyMember, Customer | None, int]]:
    earned = func.sum(LoyaltyTransaction.points).label("earned")
    sub = (
        select(LoyaltyTransaction.member_id, earned)
        .where(
            LoyaltyTransaction.created_at >= since,
            LoyaltyTransaction.direction == 1,
            LoyaltyTransaction.kind.in_(
                [LoyaltyTransactionKind.earn, LoyaltyTransactionKind.bonus, LoyaltyTransactionKind.enrol]
            ),
        )
        .group_by(LoyaltyTransaction.member_id)
        .order_by(earned.desc())
        .limit(limit)
        .subquery()
    )
    rows = session.execute(
        select(LoyaltyMember, Customer, sub.c.earned)
        .join(sub, sub.c.member_id == LoyaltyMember.id)
        .outerjoin(Customer, Customer.id == LoyaltyMember.customer_id)
        .order_by(sub.c.earned.desc(), LoyaltyMember.id)
    )
    return [(m, c, int(n)) for m, c, n in rows]


def member_count(session: Session) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(LoyaltyMember).where(LoyaltyMember.status == MemberStatus.active)
        ).scalar_one()
    )


def account_balances(session: Session, account_ids: Sequence[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    rows = session.execute(select(_accounts.c.id, _accounts.c.balance).where(_accounts.c.id.in_(account_ids)))
    return {a: int(b) for a, b in rows}
