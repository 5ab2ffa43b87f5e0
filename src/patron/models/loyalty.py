"""The loyalty programme: its configuration, members, a double-entry points ledger,
rewards, vouchers and tier changes.

The ledger is append-only. A transaction (one movement: an order's points, a
redemption, an expiry…) has two or more entries whose amounts sum to zero: the member's
account on one side, one of the programme's accounts (issued, redeemed, expired) or
another member on the other. Corrections are new transactions that reverse old ones.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, JSONType, Money, UTCDateTime, utcnow
from patron.models.enums import (
    LoyaltyAccountKind,
    LoyaltyTransactionKind,
    MemberStatus,
    RewardKind,
    VoucherStatus,
    db_enum,
)


class LoyaltyConfigVersion(Base):
    """One version of the programme's rules (earn, expiry, tiers); the newest is in force.

    Versions are kept so that "why did this order earn 30 points?" can be answered with
    the rules of the day.
    """

    __tablename__ = "loyalty_config_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyAccount(Base):
    """A points account: one per member, and one per programme side (issued, redeemed, expired).

    Only member accounts keep a running balance (updated with a guarded UPDATE in the same
    transaction as their entries, so it can never go below zero, also under concurrency);
    the programme's accounts are busy for every posting, so their balances are summed from
    the entries when a report needs them instead of locking one hot row.
    """

    __tablename__ = "loyalty_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[LoyaltyAccountKind] = mapped_column(db_enum(LoyaltyAccountKind))
    balance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyMember(Base):
    """A customer enrolled in the programme, with a card and a tier.

    customer_id is set to NULL when the customer is erased: the member row and its
    ledger stay, so the programme's books still balance.
    """

    __tablename__ = "loyalty_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("loyalty_accounts.id"), unique=True)
    card_number: Mapped[str] = mapped_column(String(19), unique=True)
    status: Mapped[MemberStatus] = mapped_column(db_enum(MemberStatus), default=MemberStatus.active)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_via: Mapped[str] = mapped_column(String(20), default="api")
    tier: Mapped[str] = mapped_column(String(50))
    tier_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the tier is next reviewed: kept or downgraded on what the member earned or spent
    # in the window before; an upgrade happens as soon as the member qualifies.
    tier_review_at: Mapped[datetime] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_members.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoyaltyTransaction(Base):
    """One movement of points; its entries balance. Never updated, never deleted."""

    __tablename__ = "loyalty_transactions"
    __table_args__ = (
        Index("ix_loyalty_transactions_member_id_id", "member_id", "id"),
        Index("ix_loyalty_transactions_order_id", "order_id"),
        Index("ix_loyalty_transactions_created_at_kind", "created_at", "kind"),
        CheckConstraint("points >= 0", name="points_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Every movement has one: from the caller's Idempotency-Key, or made from what caused it
    # ("order:17:earn", "expire:3:2026-12-04"), so the same cause never posts twice.
    idempotency_key: Mapped[str] = mapped_column(String(250), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[LoyaltyTransactionKind] = mapped_column(db_enum(LoyaltyTransactionKind))
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    # What the member saw happen: points credited (+) or debited (-) to them.
    points: Mapped[int] = mapped_column(Integer)
    direction: Mapped[int] = mapped_column(Integer)  # +1 credit to the member, -1 debit, 0 nothing moved
    # What this movement adds to (or takes from) the points that qualify for a tier: an
    # order's points count, bonuses and redemptions do not; a clawback or a reversal of
    # an order's points takes them off again.
    qualifying_points: Mapped[int] = mapped_column(Integer, default=0)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    return_id: Mapped[int | None] = mapped_column(ForeignKey("order_returns.id", ondelete="SET NULL"))
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_rewards.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_transactions.id"), unique=True)
    config_version_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_config_versions.id"))
    memo: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyEntry(Base):
    """One side of a transaction: points into (+) or out of (-) one account.

    On member accounts, entries that make or unmake earned points are `lot` entries and
    carry their expiry; spending (redeem, expire, debit) is not, and is taken from the
    oldest lots first when the expiry job works out what has lapsed.
    """

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        Index("ix_loyalty_entries_account_id_id", "account_id", "id"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("loyalty_accounts.id"))
    amount: Mapped[int] = mapped_column(Integer)
    lot: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyReward(Base):
    """Something points buy: money off, a free product or free shipping."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (
        CheckConstraint("points_cost > 0", name="points_cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[RewardKind] = mapped_column(db_enum(RewardKind))
    points_cost: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal | None] = mapped_column(Money)  # voucher value
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    voucher_valid_days: Mapped[int] = mapped_column(Integer, default=90)
    min_tier: Mapped[str | None] = mapped_column(String(50))  # members-only rewards
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LoyaltyVoucher(Base):
    """What a redemption yields: a code a shop or till consumes once."""

    __tablename__ = "loyalty_vouchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("loyalty_rewards.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id"), unique=True)
    status: Mapped[VoucherStatus] = mapped_column(db_enum(VoucherStatus), default=VoucherStatus.issued)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consumed_by: Mapped[str | None] = mapped_column(String(200))
    consumed_reference: Mapped[str | None] = mapped_column(String(100))  # the till's order or receipt


class LoyaltyTierChange(Base):
    """A member's move between tiers, and why."""

    __tablename__ = "loyalty_tier_changes"
    __table_args__ = (Index("ix_loyalty_tier_changes_changed_at", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"), index=True)
    from_tier: Mapped[str | None] = mapped_column(String(50))
    to_tier: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(String(20))  # enrolled, upgrade, requalified, downgrade
    qualifying_value: Mapped[Decimal | None] = mapped_column(Money)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltyMergeMove(Base):
    """What a customer merge moved in the programme (a membership or points), kept by the
    loyalty domain itself so that undoing the merge can put it back."""

    __tablename__ = "loyalty_merge_moves"

    merge_id: Mapped[int] = mapped_column(ForeignKey("customer_merges.id", ondelete="CASCADE"), primary_key=True)
    undo: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
