"""How the loyalty programme reacts to what happens elsewhere (in the cause's transaction)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patron.events import (
    CustomersMerged,
    CustomersUnmerged,
    OrdersCancelled,
    OrdersRecorded,
    OrdersReturned,
    OrdersUpdated,
    subscribe,
)
from patron.loyalty import service
from patron.models import LoyaltyMergeMove


@subscribe(OrdersRecorded, OrdersUpdated, OrdersReturned, OrdersCancelled)
def earn_or_claw_back(session: Session, event: OrdersRecorded) -> None:
    """Points for members' new orders, claw-backs for returns and cancellations; each order
    earns once however often it is sent, so a re-import or a replayed request earns nothing more."""
    if event.order_ids and service.has_active_members(session):
        service.sync_orders(session, order_ids=event.order_ids, by=f"orders via {event.via}")


@subscribe(CustomersMerged)
def follow_the_merge(session: Session, event: CustomersMerged) -> None:
    """The duplicate's membership (or its points, when both are members) follows it to the survivor."""
    undo = service.on_customers_merged(
        session, survivor_id=event.survivor_id, merged_id=event.merged_id, by=event.actor
    )
    if undo:
        session.add(LoyaltyMergeMove(merge_id=event.merge_id, undo=undo))
        session.flush()


@subscribe(CustomersUnmerged)
def undo_the_merge(session: Session, event: CustomersUnmerged) -> None:
    move = session.get(LoyaltyMergeMove, event.merge_id)
    if move is not None:
        service.on_customers_unmerged(session, undo=move.undo, by=event.actor)
        session.delete(move)
        session.flush()
