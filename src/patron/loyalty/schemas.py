"""What the loyalty API takes and returns.

The programme's rules travel as `ProgrammeConfig` and rewards are created from
`RewardConfig` (both in loyalty/config.py, shared with the YAML file); the rest is here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from patron.loyalty.config import Name, ProgrammeConfig
from patron.models import LoyaltyMember as MemberRow
from patron.models import LoyaltyReward as RewardRow
from patron.models import LoyaltyTransaction as TransactionRow
from patron.models import LoyaltyVoucher as VoucherRow
from patron.models.enums import LoyaltyTransactionKind, MemberStatus, RewardKind
from patron.validation import CENT, FieldError, Id, InputModel, reject_nulls

MAX_POINTS = 10_000_000
PositivePoints = Annotated[int, Field(ge=1, le=MAX_POINTS)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


def _cents(amount: Decimal | None) -> Decimal | None:
    # A reward just saved still holds the Decimal it was given ("10"); the column keeps cents.
    return None if amount is None else amount.quantize(CENT)


# --- configuration ---------------------------------------------------------------------------


class ConfigVersion(BaseModel):
    id: int
    created_at: datetime
    created_by: str
    config: ProgrammeConfig


# --- members ---------------------------------------------------------------------------------


class MemberCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Id


class MemberImportResult(BaseModel):
    """What a member file did (or, with dry_run, would do)."""

    enrolled: int
    points: int = Field(description="Opening points credited in all.")
    member_ids: list[int] = Field(description="The new members, in file order (empty for a dry run).")


class CustomerRef(BaseModel):
    id: int
    name: str
    email: str | None


class Member(BaseModel):
    id: int
    customer_id: int | None = Field(description="null once the customer was erased; the ledger stays.")
    customer: CustomerRef | None
    card_number: str
    status: MemberStatus
    tier: str
    tier_since: datetime
    tier_review_at: datetime
    enrolled_at: datetime
    enrolled_via: str
    merged_into_id: int | None
    closed_at: datetime | None

    @classmethod
    def of(cls, m: MemberRow, customers: dict[int, Any]) -> Member:
        c = customers.get(m.customer_id) if m.customer_id else None
        return cls(
            id=m.id,
            customer_id=m.customer_id,
            customer=CustomerRef(id=c.id, name=f"{c.first_name} {c.last_name}".strip(), email=c.email) if c else None,
            card_number=m.card_number,
            status=m.status,
            tier=m.tier,
            tier_since=m.tier_since,
            tier_review_at=m.tier_review_at,
            enrolled_at=m.enrolled_at,
            enrolled_via=m.enrolled_via,
            merged_into_id=m.merged_into_id,
            closed_at=m.closed_at,
        )


class MemberPage(BaseModel):
    items: list[Member]
    next_cursor: str | None


class Benefits(BaseModel):
    earn_multiplier: Decimal
    free_shipping: bool
    members_only: list[str]


class NextTier(BaseModel):
    name: str
    threshold: Decimal
    to_go: Decimal = Field(description="Points (or spend) still needed in the qualifying window.")
    progress: float = Field(description="0 to 1: how far from this tier's threshold to the next one's.")


class ExpiringPoints(BaseModel):
    expires_at: datetime
    points: int


class MemberDetail(Member):
    balance: int
    balance_value: Decimal = Field(description="The balance's worth at the programme's point value.")
    currency: str
    benefits: Benefits
    qualifying_value: Decimal = Field(description="Points earned (or money spent) in the tier window.")
    tier_basis: Literal["points", "spend"]
    window_months: int
    next_tier: NextTier | None = Field(description="null at the top tier.")
    expiring: list[ExpiringPoints] = Field(description="Points that lapse in the next 90 days unless spent.")

    @classmethod
    def of_summary(cls, s: Any, customers: dict[int, Any]) -> MemberDetail:
        next_tier = None
        if s.next_tier is not None:
            span = s.next_tier.threshold - s.tier.threshold
            done = (s.qualifying_value - s.tier.threshold) / span if span > 0 else Decimal(1)
            next_tier = NextTier(
                name=s.next_tier.name,
                threshold=s.next_tier.threshold,
                to_go=s.to_next_tier,
                progress=round(float(min(max(done, Decimal(0)), Decimal(1))), 4),
            )
        return cls(
            **Member.of(s.member, customers).model_dump(),
            balance=s.balance,
            balance_value=(s.balance * s.point_value).quantize(Decimal("0.01")),
            currency=s.currency,
            benefits=Benefits(
                earn_multiplier=s.tier.earn_multiplier,
                free_shipping=s.tier.free_shipping,
                members_only=list(s.tier.members_only),
            ),
            qualifying_value=s.qualifying_value,
            tier_basis=str(s.basis),
            window_months=s.window_months,
            next_tier=next_tier,
            expiring=[ExpiringPoints(expires_at=at, points=n) for at, n in s.expiring],
        )


# --- the ledger ------------------------------------------------------------------------------


class Transaction(BaseModel):
    id: int
    kind: LoyaltyTransactionKind
    member_id: int
    points: int = Field(description="Points moved, always >= 0; `change` carries the sign.")
    change: int = Field(description="What the member's balance moved by: + credited, - debited.")
    balance_after: int = Field(description="The member's balance just after this transaction.")
    memo: str
    created_at: datetime
    created_by: str
    order_id: int | None
    reward_id: int | None
    reverses_id: int | None

    @classmethod
    def of(cls, t: TransactionRow, balance_after: int, change: int | None = None) -> Transaction:
        # On a statement, `change` is what moved on this member's account (a merge's
        # transfer is posted to the receiving member but shows on both statements).
        return cls(
            id=t.id,
            kind=t.kind,
            member_id=t.member_id,
            points=t.points,
            change=t.direction * t.points if change is None else change,
            balance_after=balance_after,
            memo=t.memo,
            created_at=t.created_at,
            created_by=t.created_by,
            order_id=t.order_id,
            reward_id=t.reward_id,
            reverses_id=t.reverses_id,
        )


class Statement(BaseModel):
    member_id: int
    items: list[Transaction] = Field(description="Newest first, each with the balance after it.")
    next_cursor: str | None

    @classmethod
    def of(cls, member_id: int, lines: list[Any], next_cursor: str | None) -> Statement:
        items = [Transaction.of(line.transaction, line.balance, change=line.points) for line in lines]
        return cls(member_id=member_id, items=items, next_cursor=next_cursor)


class BonusCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["birthday", "review", "survey", "goodwill"]
    points: PositivePoints | None = Field(
        default=None, description="Required for goodwill; otherwise the programme's amount for the reason."
    )
    reference: str | None = Field(default=None, max_length=100, description='What it is for, e.g. "review 812".')
    memo: str = Field(default="", max_length=500)


class AdjustmentCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS, description="Non-zero: + credits the member, - debits.")
    reason: Reason

    @field_validator("points")
    @classmethod
    def _moves(cls, points: int) -> int:
        if points == 0:
            raise ValueError("must not be 0: give a positive number to credit or a negative one to debit")
        return points

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("say why the points are adjusted")
        return reason.strip()


class ReversalCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("say why the transaction is reversed")
        return reason.strip()


class RedemptionCreate(InputModel):
    """The reward to redeem, by id or by code (one of the two)."""

    model_config = ConfigDict(extra="forbid")

    reward_id: Id | None = None
    reward_code: str | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one(self) -> RedemptionCreate:
        if (self.reward_id is None) == (self.reward_code is None):
            raise FieldError("reward_id", "give either reward_id or reward_code")
        return self


# --- rewards ---------------------------------------------------------------------------------


class Reward(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    description: str
    kind: RewardKind
    points_cost: int
    amount: Decimal | None
    product_id: int | None
    stock: int | None = Field(description="null: unlimited.")
    valid_from: date | None
    valid_until: date | None
    voucher_valid_days: int
    min_tier: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @field_validator("amount")
    @classmethod
    def _in_cents(cls, amount: Decimal | None) -> Decimal | None:
        return _cents(amount)


class RewardList(BaseModel):
    items: list[Reward]


class RewardUpdate(InputModel):
    """The fields to change; those left out stay. Only the optional ones may be set to null."""

    model_config = ConfigDict(extra="forbid")

    # Typed without None: an explicit null is refused (422); a field left out is not set.
    code: str = Field(default=None, min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")  # type: ignore[assignment]
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    description: str = Field(default=None, max_length=2000)  # type: ignore[assignment]
    kind: Literal["voucher", "free_product", "free_shipping"] = Field(default=None)  # type: ignore[assignment]
    points_cost: int = Field(default=None, gt=0, le=MAX_POINTS)  # type: ignore[assignment]
    amount: Decimal | None = Field(default=None, gt=0, le=1_000_000, max_digits=12, decimal_places=2)
    product_sku: str | None = Field(default=None, min_length=1, max_length=100)
    stock: int | None = Field(default=None, ge=0, le=MAX_POINTS)
    valid_from: date | None = None
    valid_until: date | None = None
    voucher_valid_days: int = Field(default=None, ge=1, le=3650)  # type: ignore[assignment]
    min_tier: Name | None = None
    is_active: bool = Field(default=None)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _no_nulls(self) -> RewardUpdate:
        reject_nulls(self, "code", "name", "description", "kind", "points_cost", "voucher_valid_days", "is_active")
        return self


# --- vouchers --------------------------------------------------------------------------------


class RewardRef(BaseModel):
    id: int
    code: str
    name: str
    kind: RewardKind
    amount: Decimal | None
    product_id: int | None

    @field_validator("amount")
    @classmethod
    def _in_cents(cls, amount: Decimal | None) -> Decimal | None:
        return _cents(amount)


class MemberRef(BaseModel):
    id: int
    card_number: str
    tier: str
    status: MemberStatus


class Voucher(BaseModel):
    code: str
    status: Literal["issued", "consumed", "cancelled", "expired"] = Field(
        description="issued: valid now; expired: issued but past expires_at."
    )
    valid: bool = Field(description="Whether it can be consumed now.")
    reward: RewardRef
    member: MemberRef
    issued_at: datetime
    expires_at: datetime
    consumed_at: datetime | None
    consumed_reference: str | None
    transaction_id: int
    points_spent: int

    @classmethod
    def of(cls, v: VoucherRow, reward: RewardRow, member: MemberRow, tx: TransactionRow, **extra: Any):
        status = str(v.status)
        if status == "issued" and v.expires_at <= datetime.now(UTC):
            status = "expired"
        return cls(
            code=v.code,
            status=status,
            valid=status == "issued",
            reward=RewardRef(
                id=reward.id,
                code=reward.code,
                name=reward.name,
                kind=reward.kind,
                amount=reward.amount,
                product_id=reward.product_id,
            ),
            member=MemberRef(id=member.id, card_number=member.card_number, tier=member.tier, status=member.status),
            issued_at=v.issued_at,
            expires_at=v.expires_at,
            consumed_at=v.consumed_at,
            consumed_reference=v.consumed_reference,
            transaction_id=v.transaction_id,
            points_spent=tx.points,
            **extra,
        )


class Redemption(Voucher):
    balance: int = Field(description="The member's balance just after the redemption.")


class VoucherConsume(InputModel):
    model_config = ConfigDict(extra="forbid")

    reference: str | None = Field(default=None, max_length=100, description="The till's order or receipt number.")


# --- reports and jobs ------------------------------------------------------------------------


class MonthMovements(BaseModel):
    month: str = Field(description="YYYY-MM")
    earned: int
    bonus: int
    redeemed: int
    expired: int
    clawed_back: int
    adjusted: int
    reversed: int
    transferred: int


class TierCount(BaseModel):
    tier: str
    members: int
    points: int


class TierMovement(BaseModel):
    from_tier: str | None
    to_tier: str
    reason: str
    members: int


class TopEarner(BaseModel):
    member_id: int
    card_number: str
    customer_id: int | None
    name: str | None
    points: int


class ProgrammeReport(BaseModel):
    months: int
    members: int
    outstanding_points: int
    liability: Decimal = Field(description="outstanding_points x point_value")
    currency: str
    point_value: Decimal
    by_month: list[MonthMovements]
    earned_total: int = Field(description="Earned and bonus points over the period.")
    redeemed_total: int
    expired_total: int
    breakage_rate: float | None = Field(description="expired / earned over the period; null when nothing was earned.")
    tiers: list[TierCount]
    tier_movements: list[TierMovement]
    top_earners: list[TopEarner]
    books_balanced: bool

    @classmethod
    def of(cls, r: Any, months: int) -> ProgrammeReport:
        return cls(
            months=months,
            members=r.members,
            outstanding_points=r.outstanding_points,
            liability=r.liability,
            currency=r.currency,
            point_value=r.point_value,
            by_month=[MonthMovements(month=m, **counts) for m, counts in sorted(r.by_month.items())],
            earned_total=r.earned_total,
            redeemed_total=r.redeemed_total,
            expired_total=r.expired_total,
            breakage_rate=r.breakage_rate,
            tiers=[TierCount(tier=t, members=n, points=p) for t, n, p in r.tiers],
            tier_movements=[
                TierMovement(from_tier=f, to_tier=t, reason=why, members=n) for f, t, why, n in r.tier_movements
            ],
            top_earners=[
                TopEarner(
                    member_id=m.id,
                    card_number=m.card_number,
                    customer_id=m.customer_id,
                    name=f"{c.first_name} {c.last_name}".strip() if c else None,
                    points=n,
                )
                for m, c, n in r.top_earners
            ],
            books_balanced=r.books_balanced,
        )


class BooksCheck(BaseModel):
    balanced: bool
    problems: list[str] = Field(description="Each way the ledger is out of balance; empty when it is right.")


class TierReviewCounts(BaseModel):
    reviewed: int
    upgraded: int
    kept: int
    downgraded: int


class JobsRun(BaseModel):
    expired_members: int
    expired_points: int
    tiers: TierReviewCounts
    birthdays: int
