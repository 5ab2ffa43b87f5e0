"""Orders, returns, and the purchase KPIs built on them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron import events
from patron.customer360.schemas import ChannelShare, CustomerKPIs, Favourite, TimelineEntry
from patron.errors import Conflict, NotFound, ValidationFailed
from patron.models import Order, OrderLine, OrderReturn, Product
from patron.models.enums import OrderStatus
from patron.orders import repository
from patron.orders.schemas import OrderCreate, OrderReturnCreate, OrderUpdate, PointsLine, PointsOrder, PointsRefund
from patron.pagination import Page, paginate, parse_sort

SORTS = {"placed_at": Order.placed_at, "id": Order.id, "total": Order.total, "created_at": Order.created_at}
CENT = Decimal("0.01")


def get_order(session: Session, order_id: int) -> Order:
    order = repository.get(session, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found", detail={"field": "order_id"})
    return order


def list_orders(
    session: Session, *, sort: str = "-placed_at", limit: int = 50, cursor: str | None = None, **filters
) -> Page[Order]:
    sort_col, descending = parse_sort(sort, SORTS)
    return paginate(
        session,
        repository.list_query(**filters),
        sort_col=sort_col,
        id_col=Order.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )


def create_order(session: Session, *, data: OrderCreate, via: str = "api") -> Order:
    """Record an order with its lines; every reference is checked before anything is written.

    An order for a customer that was merged into another is recorded for the survivor.
    """
    from patron.customers import service as customers
    from patron.products import service as products

    if data.external_id:
        _ensure_external_id_free(session, data.external_id)
    customer_id = customers.resolve_customer_id(session, data.customer_id)
    store_id = data.store_id
    if data.store_code:
        store_id = products.store_id_for_code(session, data.store_code)
    elif store_id is not None:
        products.get_store(session, store_id)
    product_ids = _resolve_lines(session, data)

    order = Order(
        **data.model_dump(exclude={"lines", "store_code", "store_id", "customer_id"}),
        customer_id=customer_id,
        store_id=store_id,
        lines=[
            OrderLine(
                line_no=i, product_id=pid, quantity=line.quantity, unit_price=line.unit_price, discount=line.discount
            )
            for i, (line, pid) in enumerate(zip(data.lines, product_ids, strict=True), start=1)
        ],
    )
    session.add(order)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent insert with the same external_id
        raise Conflict(f"an order with external_id {data.external_id} already exists") from exc
    events.publish(session, events.OrdersRecorded(order_ids=[order.id], via=via))
    return order


def _ensure_external_id_free(session: Session, external_id: str, *, order_id: int | None = None) -> None:
    existing = repository.id_for_external_id(session, external_id)
    if existing is not None and existing != order_id:
        raise Conflict(
            f"an order with external_id {external_id} already exists (id {existing})",
            detail={"field": "external_id", "order_id": existing},
        )


def _resolve_lines(session: Session, data: OrderCreate) -> list[int]:
    from patron.products import service as products

    ids = [line.product_id for line in data.lines if line.product_id is not None]
    skus = [line.sku for line in data.lines if line.sku is not None]
    found_ids, sku_ids = products.resolve_product_ids(session, ids=ids, skus=skus)
    errors, resolved = [], []
    for i, line in enumerate(data.lines):
        if line.product_id is not None:
            if line.product_id not in found_ids:
                errors.append({"field": f"lines.{i}.product_id", "message": f"no product with id {line.product_id}"})
            resolved.append(line.product_id)
        else:
            if line.sku not in sku_ids:
                errors.append({"field": f"lines.{i}.sku", "message": f"no product with sku {line.sku!r}"})
            resolved.append(sku_ids.get(line.sku))
    if errors:
        raise ValidationFailed(errors)
    return resolved


def update_order(session: Session, order_id: int, *, data: OrderUpdate, via: str | None = "api") -> Order:
    """Change an order's fields; via=None when the caller publishes the change itself (a batch)."""
    from patron.products import service as products

    order = get_order(session, order_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("external_id"):
        _ensure_external_id_free(session, changes["external_id"], order_id=order.id)
    if changes.get("store_id") is not None:
        products.get_store(session, changes["store_id"])
    for name, value in changes.items():
        setattr(order, name, value)
    session.flush()
    if via is not None:
        cancelled = changes.get("status") == OrderStatus.cancelled
        event = events.OrdersCancelled if cancelled else events.OrdersUpdated
        events.publish(session, event(order_ids=[order.id], via=via))
    return order


def delete_order(session: Session, order_id: int) -> None:
    session.delete(get_order(session, order_id))
    session.flush()


def record_return(session: Session, order_id: int, *, data: OrderReturnCreate, via: str = "api") -> OrderReturn:
    """Record goods returned or money refunded; never more than was bought or paid."""
    order = get_order(session, order_id)
    if order.status == OrderStatus.cancelled:
        raise Conflict(f"order {order_id} is cancelled; nothing to return", detail={"field": "order_id"})
    refunded, per_line = repository.returned_so_far(session, order_id)
    refunded = Decimal(str(refunded)).quantize(CENT)
    errors = []
    if refunded + data.amount > order.total:
        errors.append(
            {
                "field": "amount",
                "message": f"refunds would total {refunded + data.amount}, more than the order total {order.total}",
            }
        )
    if data.order_line_id is not None:
        line = next((ln for ln in order.lines if ln.id == data.order_line_id), None)
        if line is None:
            errors.append({"field": "order_line_id", "message": f"order {order_id} has no line {data.order_line_id}"})
        elif data.quantity is not None and per_line.get(line.id, 0) + data.quantity > line.quantity:
            errors.append(
                {
                    "field": "quantity",
                    "message": f"only {line.quantity - per_line.get(line.id, 0)} of this line are left to return",
                }
            )
    if errors:
        raise ValidationFailed(errors)
    record = OrderReturn(order_id=order_id, **data.model_dump(exclude={"returned_at"}))
    record.returned_at = data.returned_at or datetime.now(UTC)
    order.returns.append(record)
    order.status = OrderStatus.returned if refunded + data.amount == order.total else OrderStatus.partially_returned
    session.flush()
    events.publish(session, events.OrdersReturned(order_ids=[order_id], via=via))
    return record


def customer_kpis(session: Session, *, customer_id: int) -> CustomerKPIs:
    """Purchase KPIs for one customer: recency, frequency, spend, favourites and channels."""
    first, last, count, gross = repository.customer_summary(session, customer_id)
    refunded = _money(repository.customer_refunded(session, customer_id))
    net = _money(gross) - refunded
    channels = repository.customer_channel_counts(session, customer_id)
    return CustomerKPIs(
        first_purchase_at=first,
        last_purchase_at=last,
        order_count=count,
        total_spend=net,
        refunded=refunded,
        average_order_value=(net / count).quantize(CENT) if count else None,
        favourite_categories=_favourites(repository.customer_top(session, customer_id, Product.category_path)),
        favourite_brands=_favourites(repository.customer_top(session, customer_id, Product.brand)),
        channel_mix=[ChannelShare(channel=ch, orders=n, share=round(n / count, 4)) for ch, n in channels],
    )


def order_counts(session: Session, *, customer_ids: list[int]) -> dict[int, int]:
    """How many orders (any status) each customer has; customers without orders map to 0."""
    counts: dict[int, int] = dict.fromkeys(customer_ids, 0)
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), 1000):  # keep each IN list well under every driver's parameter limit
        counts.update(repository.order_counts(session, ids[start : start + 1000]))
    return counts


def timeline_entries(
    session: Session, *, customer_id: int, before: tuple[datetime, int] | None, limit: int
) -> list[TimelineEntry]:
    """The customer's orders as timeline entries, newest first, strictly before `before`."""
    orders = repository.customer_orders_before(session, customer_id, before, limit)
    return [
        TimelineEntry(
            type="order",
            id=o.id,
            occurred_at=o.placed_at,
            kind=o.status,
            channel=o.channel,
            title=f"Order {o.external_id or '#' + str(o.id)}: {sum(ln.quantity for ln in o.lines)} item(s), "
            f"{o.total} {o.currency}",
            amount=o.total,
        )
        for o in orders
    ]


def revenue_by_month(session: Session, *, since: datetime) -> list[tuple[str, int, Decimal]]:
    return [(m, n, _money(total)) for m, n, total in repository.revenue_by_month(session, since)]


def orders_by_channel(session: Session, *, since: datetime) -> list[tuple[str, int, Decimal]]:
    return [(ch, n, _money(total)) for ch, n, total in repository.orders_by_channel(session, since)]


def _favourites(rows) -> list[Favourite]:
    return [Favourite(name=name, spend=_money(spend), quantity=int(qty)) for name, spend, qty in rows]


def _money(value) -> Decimal:
    # Aggregates come back as Decimal (PostgreSQL) or float (SQLite); normalise to cents.
    return Decimal(str(value or 0)).quantize(CENT)


# --- for the loyalty programme ------------------------------------------------------------

# Bound IN lists: SQLite allows 32,766 parameters, and shorter lists plan better everywhere.
_CHUNK = 1000


def order_customers(session: Session, *, order_ids: list[int]) -> list[tuple[int, int, datetime]]:
    """(order id, customer id, placed_at) of the given orders that exist."""
    out: list[tuple[int, int, datetime]] = []
    for start in range(0, len(order_ids), _CHUNK):
        out += [tuple(r) for r in repository.brief_orders(session, order_ids[start : start + _CHUNK])]
    return out


def orders_for_points(session: Session, *, order_ids: list[int]) -> list[PointsOrder]:
    """The orders with what points are worked out from: lines (SKU, category) and refunds.

    Built without validation (model_construct): the values are the database's own, and
    validating tens of thousands of them per import batch cost as much as the queries."""
    out: list[PointsOrder] = []
    for start in range(0, len(order_ids), _CHUNK):
        orders, lines, refunds = repository.orders_with_lines(session, order_ids[start : start + _CHUNK])
        by_order: dict[int, PointsOrder] = {}
        for oid, cid, placed_at, channel, status, subtotal, discount, total in orders:
            by_order[oid] = PointsOrder.model_construct(
                id=oid,
                customer_id=cid,
                placed_at=placed_at,
                channel=channel,
                status=status,
                subtotal=_money(subtotal),
                discount=_money(discount),
                total=_money(total),
                lines=[],
                refunds=[],
            )
        for oid, quantity, unit_price, discount, sku, category in lines:
            by_order[oid].lines.append(
                PointsLine.model_construct(
                    quantity=quantity,
                    unit_price=_money(unit_price),
                    discount=_money(discount),
                    sku=sku,
                    category_path=category,
                )
            )
        for oid, rid, amount, returned_at in refunds:
            by_order[oid].refunds.append(
                PointsRefund.model_construct(id=rid, amount=_money(amount), returned_at=returned_at)
            )
        out += by_order.values()
    return out


def net_spend_by_customer(session: Session, *, customer_ids: list[int], since: datetime) -> dict[int, Decimal]:
    """Each customer's order totals less refunds since `since` (cancelled orders left out)."""
    spend: dict[int, Decimal] = dict.fromkeys(customer_ids, Decimal("0.00"))
    for start in range(0, len(customer_ids), _CHUNK):
        for cid, amount in repository.net_spend(session, customer_ids[start : start + _CHUNK], since):
            spend[cid] = _money(amount)
    return spend


def order_ids_placed_since(
    session: Session, *, since: datetime | None = None, after_id: int = 0, limit: int = 1000
) -> list[int]:
    """Ids of orders placed at or after `since` (all orders when None), by id, after `after_id`:
    keyset pages for work over many orders (`patron loyalty sync`)."""
    return repository.order_ids_placed_since(session, since, after_id, limit)
