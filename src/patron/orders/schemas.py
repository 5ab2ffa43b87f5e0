"""Order payloads. Money must add up: total = subtotal - discount + shipping_fee + tax,
and subtotal = sum(quantity * unit_price - line discount) when lines are given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from patron.models.enums import OrderStatus, ReturnKind, SalesChannel
from patron.validation import Currency, FieldError, Id, InputModel, Money, reject_nulls, to_utc

Amount = Annotated[Money, Field(ge=0)]
ZERO = Decimal("0.00")
# Tills' clocks drift; anything further ahead than this is a data error.
CLOCK_SKEW = timedelta(minutes=10)


def _aware_past(value: datetime) -> datetime:
    value = to_utc(value)
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


AwarePast = Annotated[datetime, AfterValidator(_aware_past)]


class OrderLineCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Id | None = None
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: Amount
    discount: Amount = ZERO

    @model_validator(mode="after")
    def _check(self):
        if (self.product_id is None) == (self.sku is None):
            raise FieldError("product_id", "give exactly one of product_id or sku")
        if self.discount > self.quantity * self.unit_price:
            raise FieldError("discount", "is larger than quantity * unit_price")
        return self

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price - self.discount


class OrderCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(default=None, min_length=1, max_length=100)
    customer_id: Id
    placed_at: AwarePast
    channel: SalesChannel
    store_id: Id | None = None
    store_code: str | None = Field(default=None, min_length=1, max_length=32)
    status: OrderStatus = OrderStatus.placed
    currency: Currency = "USD"
    subtotal: Amount | None = Field(default=None, description="Computed from lines when omitted.")
    discount: Amount = ZERO
    shipping_fee: Amount = ZERO
    tax: Amount = ZERO
    total: Amount | None = Field(default=None, description="Computed when omitted; checked when given.")
    lines: list[OrderLineCreate] = Field(default_factory=list, max_length=1000)

    @field_validator("status")
    @classmethod
    def _new_status(cls, value: OrderStatus) -> OrderStatus:
        if value in (OrderStatus.returned, OrderStatus.partially_returned):
            raise ValueError("record returns with POST /orders/{id}/returns; a new order cannot start returned")
        return value

    @model_validator(mode="after")
    def _amounts(self):
        if self.store_id is not None and self.store_code is not None:
            raise FieldError("store_code", "give store_id or store_code, not both")
        if self.lines:
            computed = sum((line.amount for line in self.lines), ZERO)
            if self.subtotal is None:
                self.subtotal = computed
            elif self.subtotal != computed:
                raise FieldError("subtotal", f"{self.subtotal} does not equal the sum of the lines ({computed})")
        elif self.subtotal is None:
            raise FieldError("subtotal", "give subtotal, or lines to compute it from")
        if self.discount > self.subtotal:
            raise FieldError("discount", "is larger than subtotal")
        computed_total = self.subtotal - self.discount + self.shipping_fee + self.tax
        if self.total is None:
            self.total = computed_total
        elif self.total != computed_total:
            raise FieldError(
                "total", f"{self.total} does not equal subtotal - discount + shipping_fee + tax ({computed_total})"
            )
        return self


class OrderUpdate(InputModel):
    """What may change after an order is placed; amounts and lines are fixed (return instead)."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(default=None, min_length=1, max_length=100)
    status: OrderStatus | None = None
    channel: SalesChannel | None = None
    store_id: Id | None = None
    placed_at: AwarePast | None = None

    @model_validator(mode="after")
    def _no_nulls(self):
        reject_nulls(self, "status", "channel", "placed_at")
        return self


class OrderReturnCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReturnKind = ReturnKind.return_
    order_line_id: Id | None = None
    quantity: Id | None = None
    amount: Annotated[Money, Field(gt=0)]
    reason: str | None = Field(default=None, max_length=300)
    returned_at: AwarePast | None = None

    @model_validator(mode="after")
    def _quantity_needs_line(self):
        if self.quantity is not None and self.order_line_id is None:
            raise FieldError("order_line_id", "is required when quantity is given")
        return self


class OrderLine(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    line_no: int
    product_id: int
    quantity: int
    unit_price: Decimal
    discount: Decimal


class OrderReturn(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: ReturnKind
    order_line_id: int | None
    quantity: int | None
    amount: Decimal
    reason: str | None
    returned_at: datetime


class Order(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str | None
    customer_id: int
    placed_at: datetime
    channel: SalesChannel
    store_id: int | None
    status: OrderStatus
    currency: str
    subtotal: Decimal
    discount: Decimal
    shipping_fee: Decimal
    tax: Decimal
    total: Decimal
    lines: list[OrderLine]
    returns: list[OrderReturn]
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None


# --- what the loyalty programme reads of an order (internal, not an API payload) -----------


class PointsLine(BaseModel):
    quantity: int
    unit_price: Decimal
    discount: Decimal
    sku: str
    category_path: str


class PointsRefund(BaseModel):
    id: int
    amount: Decimal
    returned_at: datetime


class PointsOrder(BaseModel):
    id: int
    customer_id: int
    placed_at: datetime
    channel: SalesChannel
    status: OrderStatus
    subtotal: Decimal
    discount: Decimal
    total: Decimal
    lines: list[PointsLine] = []
    refunds: list[PointsRefund] = []
