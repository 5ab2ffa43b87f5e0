"""Queries over orders, their lines and returns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from patron.models import Order, OrderLine, OrderReturn, Product
from patron.models.enums import OrderStatus
from patron.sqlfunctions import year_month

_COUNTED = Order.status != OrderStatus.cancelled


def get(session: Session, order_id: int) -> Order | None:
    return session.get(Order, order_id)


def id_for_external_id(session: Session, external_id: str) -> int | None:
    return session.scalar(select(Order.id).where(Order.external_id == external_id))


def list_query(
    *,
    customer_id: int | None = None,
    channel: str | None = None,
    status: str | None = None,
    store_id: int | None = None,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    external_id: str | None = None,
) -> Select:
    stmt = select(Order)
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if channel:
        stmt = stmt.where(Order.channel == channel)
    if status:
        stmt = stmt.where(Order.status == status)
    if store_id is not None:
        stmt = stmt.where(Order.store_id == store_id)
    if placed_from:
        stmt = stmt.where(Order.placed_at >= placed_from)
    if placed_to:
        stmt = stmt.where(Order.placed_at < placed_to)
    if external_id:
        stmt = stmt.where(Order.external_id == external_id)
    return stmt


def returned_so_far(session: Session, order_id: int) -> tuple:
    """(amount refunded, {line_id: quantity returned}) for one order."""
    amount = session.scalar(
        select(func.coalesce(func.sum(OrderReturn.amount), 0)).where(OrderReturn.order_id == order_id)
    )
    per_line = dict(
        session.execute(
            select(OrderReturn.order_line_id, func.sum(OrderReturn.quantity))
            .where(OrderReturn.order_id == order_id, OrderReturn.order_line_id.is_not(None))
            .group_by(OrderReturn.order_line_id)
        ).all()
    )
    return amount, per_line


def customer_summary(session: Session, customer_id: int):
    """first, last, count and sum of a customer's non-cancelled orders."""
    return session.execute(
        select(
            func.min(Order.placed_at), func.max(Order.placed_at), func.count(), func.coalesce(func.sum(Order.total), 0)
        ).where(Order.customer_id == customer_id, _COUNTED)
    ).one()


def order_counts(session: Session, customer_ids: list[int]) -> dict[int, int]:
    """{customer_id: number of orders of any status} for the given customers that have orders."""
    stmt = (
        select(Order.customer_id, func.count()).where(Order.customer_id.in_(customer_ids)).group_by(Order.customer_id)
    )
    return {cid: n for cid, n in session.execute(stmt)}


def customer_refunded(session: Session, customer_id: int):
    return session.scalar(
        select(func.coalesce(func.sum(OrderReturn.amount), 0))
        .join(Order, Order.id == OrderReturn.order_id)
        .where(Order.customer_id == customer_id, _COUNTED)
    )


def customer_top(session: Session, customer_id: int, dimension, limit: int = 3):
    """Top values of a product attribute by the customer's spend on it."""
    spend = func.sum(OrderLine.quantity * OrderLine.unit_price - OrderLine.discount)
    stmt = (
        select(dimension, spend.label("spend"), func.sum(OrderLine.quantity))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Order.customer_id == customer_id, _COUNTED, dimension.is_not(None), dimension != "")
        .group_by(dimension)
        .order_by(spend.desc(), dimension)
        .limit(limit)
    )
    return session.execute(stmt).all()


def customer_channel_counts(session: Session, customer_id: int):
    return session.execute(
        select(Order.channel, func.count())
        .where(Order.customer_id == customer_id, _COUNTED)
        .group_by(Order.channel)
        .order_by(func.count().desc(), Order.channel)
    ).all()


def customer_orders_before(
    session: Session, customer_id: int, before: tuple[datetime, int] | None, limit: int
) -> list[Order]:
    stmt = select(Order).where(Order.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(tuple_(Order.placed_at, Order.id) < before)
    stmt = stmt.order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def revenue_by_month(session: Session, since: datetime):
    month = year_month(Order.placed_at)
    return session.execute(
        select(month, func.count(), func.coalesce(func.sum(Order.total), 0))
        .where(Order.placed_at >= since, _COUNTED)
        .group_by(month)
        .order_by(month)
    ).all()


def orders_by_channel(session: Session, since: datetime):
    return session.execute(
        select(Order.channel, func.count(), func.coalesce(func.sum(Order.total), 0))
        .where(Order.placed_at >= since, _COUNTED)
        .group_by(Order.channel)
        .order_by(Order.channel)
    ).all()


def brief_orders(session: Session, order_ids: list[int]):
    """(id, customer_id, placed_at) of the given orders."""
    return session.execute(select(Order.id, Order.customer_id, Order.placed_at).where(Order.id.in_(order_ids))).all()


def orders_with_lines(session: Session, order_ids: list[int]):
    """The orders, and (order_id, quantity, unit_price, discount, sku, category_path) of their lines."""
    orders = session.execute(
        select(
            Order.id,
            Order.customer_id,
            Order.placed_at,
            Order.channel,
            Order.status,
            Order.subtotal,
            Order.discount,
            Order.total,
        ).where(Order.id.in_(order_ids))
    ).all()
    lines = session.execute(
        select(
            OrderLine.order_id,
            OrderLine.quantity,
            OrderLine.unit_price,
            OrderLine.discount,
            Product.sku,
            Product.category_path,
        )
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.line_no)
    ).all()
    refunds = session.execute(
        select(OrderReturn.order_id, OrderReturn.id, OrderReturn.amount, OrderReturn.returned_at)
        .where(OrderReturn.order_id.in_(order_ids))
        .order_by(OrderReturn.order_id, OrderReturn.returned_at, OrderReturn.id)
    ).all()
    return orders, lines, refunds


def net_spend(session: Session, customer_ids: list[int], since: datetime):
    """(customer_id, order totals less refunds) since `since`, cancelled orders left out."""
    refunded = (
        select(func.coalesce(func.sum(OrderReturn.amount), 0)).where(OrderReturn.order_id == Order.id).scalar_subquery()
    )
    return session.execute(
        select(Order.customer_id, func.sum(Order.total - refunded))
        .where(Order.customer_id.in_(customer_ids), Order.placed_at >= since, _COUNTED)
        .group_by(Order.customer_id)
    ).all()


def order_ids_placed_since(session: Session, since: datetime | None, after_id: int, limit: int) -> list[int]:
    query = select(Order.id).where(Order.id > after_id)
    if since is not None:
        query = query.where(Order.placed_at >= since)
    return list(session.scalars(query.order_by(Order.id).limit(limit)))
