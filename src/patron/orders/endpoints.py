"""REST API for orders, their lines and returns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from patron.api.deps import OrderWriter, PathId, QueryId, Reader, SessionDep
from patron.models.enums import OrderStatus, SalesChannel
from patron.orders import service
from patron.orders.schemas import Order, OrderCreate, OrderPage, OrderReturn, OrderReturnCreate, OrderUpdate
from patron.validation import AwareDateTime

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("", response_model=OrderPage, summary="List orders")
def list_orders(
    session: SessionDep,
    _: Reader,
    customer_id: QueryId = None,
    channel: SalesChannel | None = None,
    status: OrderStatus | None = None,
    store_id: QueryId = None,
    placed_from: AwareDateTime | None = None,
    placed_to: AwareDateTime | None = None,
    external_id: str | None = None,
    sort: str = "-placed_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.list_orders(
        session,
        sort=sort,
        limit=limit,
        cursor=cursor,
        customer_id=customer_id,
        channel=channel,
        status=status,
        store_id=store_id,
        placed_from=placed_from,
        placed_to=placed_to,
        external_id=external_id,
    )
    return OrderPage(items=page.items, next_cursor=page.next_cursor)


@router.post("", response_model=Order, status_code=201, summary="Record an order with its lines")
def create_order(data: OrderCreate, session: SessionDep, _: OrderWriter):
    return service.create_order(session, data=data)


@router.get("/{order_id}", response_model=Order, summary="Read an order")
def get_order(order_id: PathId, session: SessionDep, _: Reader):
    return service.get_order(session, order_id)


@router.patch("/{order_id}", response_model=Order, summary="Change status, channel, store or time")
def update_order(order_id: PathId, data: OrderUpdate, session: SessionDep, _: OrderWriter):
    return service.update_order(session, order_id, data=data)


@router.delete("/{order_id}", status_code=204, summary="Delete an order")
def delete_order(order_id: PathId, session: SessionDep, _: OrderWriter):
    service.delete_order(session, order_id)
    return Response(status_code=204)


@router.post("/{order_id}/returns", response_model=OrderReturn, status_code=201, summary="Record a return or refund")
def record_return(order_id: PathId, data: OrderReturnCreate, session: SessionDep, _: OrderWriter):
    return service.record_return(session, order_id, data=data)
