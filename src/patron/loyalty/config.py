"""The programme's rules: how points are earned, when they expire, and the tiers.

One document, versioned in `loyalty_config_versions` (the newest is in force), edited
through the API, the UI or `patron loyalty configure FILE.yaml`. Everything here is
validated before a version is stored: a rule that cannot be applied is refused with the
field that is wrong.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from patron.models.enums import SalesChannel
from patron.validation import Currency, FieldError, InputModel

Multiplier = Annotated[Decimal, Field(gt=0, le=100, max_digits=8, decimal_places=4)]
Points = Annotated[int, Field(ge=0, le=1_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[^\s].*$")]


class _Rules(InputModel):
    model_config = ConfigDict(extra="forbid")


class Multipliers(_Rules):
    """Extra points for some purchases. A line earns at the highest of its category's and
    product's multiplier (categories match by path prefix, "Baby" covers "Baby/Toys");
    the channel's multiplier then applies to the whole order."""

    categories: dict[Annotated[str, Field(min_length=1, max_length=200)], Multiplier] = Field(default_factory=dict)
    # By SKU.
    products: dict[Annotated[str, Field(min_length=1, max_length=100)], Multiplier] = Field(default_factory=dict)
    channels: dict[SalesChannel, Multiplier] = Field(default_factory=dict)


class BonusPeriod(_Rules):
    """A promotion: orders placed from `start` to `end` (inclusive) earn `multiplier` times,
    on every line or only on lines in `categories`."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    start: date
    end: date
    multiplier: Multiplier
    categories: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> BonusPeriod:
        if self.end < self.start:
            raise FieldError("end", f"is before start ({self.start})")
        return self


class Bonuses(_Rules):
    """Points given once for an event rather than for spend."""

    signup: Points = 0
    birthday: Points = 0  # once a year, on the customer's birthday
    review: Points = 0  # per product review
    survey: Points = 0  # per survey answered


class Earn(_Rules):
    points_per_unit: Annotated[Decimal, Field(ge=0, le=1000, max_digits=10, decimal_places=4)] = Decimal(1)
    multipliers: Multipliers = Multipliers()
    bonus_periods: list[BonusPeriod] = Field(default_factory=list)
    bonuses: Bonuses = Bonuses()


class ExpiryPolicy(StrEnum):
    none = "none"  # points never expire
    rolling = "rolling"  # each earning expires `months` after it was earned
    fixed = "fixed"  # everything earned expires at the end of `fixed_date`


class Expiry(_Rules):
    policy: ExpiryPolicy = ExpiryPolicy.rolling
    months: Annotated[int, Field(ge=1, le=120)] | None = 24
    fixed_date: date | None = None

    @model_validator(mode="after")
    def _complete(self) -> Expiry:
        if self.policy == ExpiryPolicy.rolling and self.months is None:
            raise FieldError("months", "is required for a rolling expiry")
        if self.policy == ExpiryPolicy.fixed and self.fixed_date is None:
            raise FieldError("fixed_date", "is required for a fixed expiry date")
        return self


class Tier(_Rules):
    """A level members reach by points earned (or money spent) in the qualifying window."""

    name: Name
    threshold: Annotated[Decimal, Field(ge=0, le=10**9, max_digits=14, decimal_places=2)]
    earn_multiplier: Multiplier = Decimal(1)
    free_shipping: bool = False
    # Flags shops and pages check: "early_access", "vip_events", members-only rewards…
    members_only: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(default_factory=list)


class TierBasis(StrEnum):
    points = "points"  # points earned (clawbacks deducted), not counting bonuses for events
    spend = "spend"  # order totals less refunds


class Tiers(_Rules):
    basis: TierBasis = TierBasis.points
    window_months: Annotated[int, Field(ge=1, le=60)] = 12
    levels: Annotated[list[Tier], Field(min_length=1, max_length=20)]

    @field_validator("levels")
    @classmethod
    def _no_overlap(cls, levels: list[Tier]) -> list[Tier]:
        # Each member must fall in exactly one tier: thresholds start at 0 and strictly rise.
        if levels[0].threshold != 0:
            raise FieldError(
                "0.threshold", f"the first tier ({levels[0].name}) must start at 0, not {levels[0].threshold}"
            )
        seen: set[str] = set()
        for i, tier in enumerate(levels):
            if tier.name.casefold() in seen:
                raise FieldError(f"{i}.name", f"tier {tier.name!r} is named twice")
            seen.add(tier.name.casefold())
            if i and tier.threshold <= levels[i - 1].threshold:
                raise FieldError(
                    f"{i}.threshold",
                    f"tier {tier.name!r} starts at {tier.threshold}, which overlaps {levels[i - 1].name!r} "
                    f"(from {levels[i - 1].threshold}); thresholds must rise from tier to tier",
                )
        return levels


class Card(_Rules):
    # Card numbers are this prefix, random digits, and a Luhn check digit: 16 digits in all.
    prefix: Annotated[str, Field(pattern=r"^[0-9]{1,6}$")] = "2900"


class ProgrammeConfig(_Rules):
    """The whole programme (see the README's Loyalty section for a worked example)."""

    currency: Currency = "EUR"
    # What one point is worth to the business when redeemed: the liability of points outstanding.
    point_value: Annotated[Decimal, Field(gt=0, le=1000, max_digits=10, decimal_places=4)] = Decimal("0.01")
    earn: Earn = Earn()
    expiry: Expiry = Expiry()
    tiers: Tiers = Tiers(levels=[Tier(name="Member", threshold=Decimal(0))])
    card: Card = Card()

    def tier(self, name: str) -> Tier:
        """The tier called `name`, or the first tier if it no longer exists."""
        return next((t for t in self.tiers.levels if t.name == name), self.tiers.levels[0])

    def tier_for(self, value: Decimal) -> Tier:
        """The highest tier whose threshold `value` reaches."""
        return [t for t in self.tiers.levels if value >= t.threshold][-1]

    def tier_rank(self, name: str) -> int:
        return next((i for i, t in enumerate(self.tiers.levels) if t.name == name), 0)


class RewardConfig(_Rules):
    """A reward as written in a configuration file (and the API's RewardCreate)."""

    code: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    kind: Literal["voucher", "free_product", "free_shipping"]
    points_cost: Annotated[int, Field(gt=0, le=10_000_000)]
    amount: Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=12, decimal_places=2)] | None = None
    product_sku: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    stock: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    voucher_valid_days: Annotated[int, Field(ge=1, le=3650)] = 90
    min_tier: Name | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RewardConfig:
        if self.kind == "voucher" and self.amount is None:
            raise FieldError("amount", "is required for a voucher (the money off)")
        if self.kind != "voucher" and self.amount is not None:
            raise FieldError("amount", f"only vouchers have an amount, not {self.kind}")
        if self.kind == "free_product" and self.product_sku is None:
            raise FieldError("product_sku", "is required for a free product")
        if self.kind != "free_product" and self.product_sku is not None:
            raise FieldError("product_sku", f"only free products name a product, not {self.kind}")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise FieldError("valid_until", f"is before valid_from ({self.valid_from})")
        return self


class ConfigFile(ProgrammeConfig):
    """What `patron loyalty configure` reads: the rules, and rewards to create or update by code."""

    rewards: list[RewardConfig] = Field(default_factory=list)
