"""What the customer 360 view returns: the profile with consents, order KPIs and the timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from patron.customers.schemas import Consent, Customer


class ChannelShare(BaseModel):
    channel: str
    orders: int
    share: float


class Favourite(BaseModel):
    name: str
    spend: Decimal
    quantity: int


class CustomerKPIs(BaseModel):
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    order_count: int
    total_spend: Decimal = Field(description="Order totals less refunds, cancelled orders excluded.")
    refunded: Decimal
    average_order_value: Decimal | None
    favourite_categories: list[Favourite]
    favourite_brands: list[Favourite]
    channel_mix: list[ChannelShare]


class TimelineEntry(BaseModel):
    type: Literal["order", "interaction"]
    id: int
    occurred_at: datetime
    kind: str = Field(description="Interaction kind, or the order status.")
    channel: str
    title: str
    body: str | None = None
    amount: Decimal | None = None
    user_name: str | None = None


class Customer360(BaseModel):
    profile: Customer
    consents: list[Consent]
    kpis: CustomerKPIs
    timeline: list[TimelineEntry]
    next_cursor: str | None = Field(description="Pass as ?cursor= for older timeline entries.")
