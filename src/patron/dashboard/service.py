"""Dashboard figures, assembled from the orders and customers services (no queries of its own)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from patron.customers import service as customers
from patron.orders import service as orders

MONTHS = 12
CENT = Decimal("0.01")


@dataclass(frozen=True)
class MonthPoint:
    month: str  # "YYYY-MM" (UTC)
    label: str  # "Nov 2026"
    value: Decimal | int


@dataclass(frozen=True)
class ChannelPoint:
    channel: str
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class Dashboard:
    since: datetime
    customers: int
    new_customers: int
    orders: int
    revenue: Decimal
    average_order_value: Decimal | None
    revenue_by_month: list[MonthPoint] = field(default_factory=list)
    new_customers_by_month: list[MonthPoint] = field(default_factory=list)
    orders_by_channel: list[ChannelPoint] = field(default_factory=list)


def month_keys(now: datetime, months: int = MONTHS) -> list[str]:
    """The `months` calendar months ending with the one containing `now`, oldest first."""
    index = now.year * 12 + now.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - months + 1, index + 1)]


def _month_label(key: str) -> str:
    return datetime.strptime(key, "%Y-%m").strftime("%b %Y")


def overview(session: Session, *, now: datetime | None = None) -> Dashboard:
    """Customers, orders, revenue and AOV for the last 12 calendar months (UTC), with chart series."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    keys = month_keys(now)
    since = datetime.strptime(keys[0], "%Y-%m").replace(tzinfo=UTC)

    # Months without orders or sign-ups are absent from the queries; show them as zero.
    revenue = {m: (n, total) for m, n, total in orders.revenue_by_month(session, since=since)}
    signups = dict(customers.customers_created_by_month(session, since=since))
    order_count = sum(n for n, _ in revenue.values())
    revenue_total = sum((total for _, total in revenue.values()), Decimal("0.00"))

    return Dashboard(
        since=since,
        customers=customers.count_customers(session),
        new_customers=sum(signups.values()),
        orders=order_count,
        revenue=revenue_total,
        average_order_value=(revenue_total / order_count).quantize(CENT) if order_count else None,
        revenue_by_month=[MonthPoint(m, _month_label(m), revenue.get(m, (0, Decimal("0.00")))[1]) for m in keys],
        new_customers_by_month=[MonthPoint(m, _month_label(m), int(signups.get(m, 0))) for m in keys],
        orders_by_channel=[
            ChannelPoint(channel=str(ch), orders=n, revenue=total)
            for ch, n, total in orders.orders_by_channel(session, since=since)
        ],
    )
