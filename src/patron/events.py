"""Domain events: what happened, published inside the transaction that caused it.

`publish(session, event)` is called by the domain where something happens. Subscribers
live in the reacting domain's `handlers.py` and are of two kinds:

- in-transaction (`@subscribe(OrdersRecorded)`): run right away in the publisher's
  transaction, so their writes commit or roll back with the cause (points for an order);
- after-commit (`@subscribe(OrdersRecorded, after_commit=True)`): an outbox row is written
  in the same transaction and `patron worker` runs the subscriber once it has committed
  (at least once: it may run again after a crash, so it must tolerate repeats).

Who reacts to what is read in the modules of SUBSCRIBERS, and nowhere else.

Events about many records (an import batch, a batch API call) carry every id of the
batch in one event rather than one event per record: a million-row import publishes a
hundred events, not a million.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import import_module
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from patron import outbox
from patron.models.base import utcnow

# The modules that subscribe to events, imported on first use.
SUBSCRIBERS = ("patron.loyalty.handlers", "patron.webhooks.handlers")


class Event(BaseModel):
    """Something that happened: an id (stable across redeliveries), when, who did it, and data."""

    model_config = ConfigDict(frozen=True)

    type: ClassVar[str]
    # What happened, in a shop owner's words: shown where people choose events (webhooks).
    summary: ClassVar[str]
    id: str = Field(default_factory=lambda: f"evt_{uuid.uuid4().hex}")
    occurred_at: datetime = Field(default_factory=utcnow)
    actor: str = ""

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"id", "occurred_at", "actor"})

    def envelope(self) -> dict[str, Any]:
        """The event as JSON: what after-commit subscribers get and webhooks send."""
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "data": self.data(),
        }

    @staticmethod
    def from_envelope(envelope: dict[str, Any]) -> Event:
        cls = EVENT_TYPES[envelope["type"]]
        meta = {k: envelope[k] for k in ("id", "occurred_at", "actor")}
        return cls(**meta, **envelope["data"])


# --- orders ---------------------------------------------------------------------------------


class OrdersRecorded(Event):
    type: ClassVar[str] = "orders.recorded"
    summary: ClassVar[str] = "New orders, whichever way they came in (API, batch, order webhook or file import)."
    order_ids: list[int]
    via: str


class OrdersUpdated(Event):
    type: ClassVar[str] = "orders.updated"
    summary: ClassVar[str] = "Orders changed after they were recorded (status, lines or fields)."
    order_ids: list[int]
    via: str


class OrdersReturned(Event):
    type: ClassVar[str] = "orders.returned"
    summary: ClassVar[str] = "Goods returned or money refunded on orders."
    order_ids: list[int]
    via: str


class OrdersCancelled(Event):
    type: ClassVar[str] = "orders.cancelled"
    summary: ClassVar[str] = "Orders cancelled."
    order_ids: list[int]
    via: str


# --- customers ------------------------------------------------------------------------------


class CustomersCreated(Event):
    type: ClassVar[str] = "customers.created"
    summary: ClassVar[str] = "New customers, with their first consents."
    customer_ids: list[int]
    via: str


class CustomersUpdated(Event):
    type: ClassVar[str] = "customers.updated"
    summary: ClassVar[str] = "Customers' contact data, profile or attributes changed."
    customer_ids: list[int]
    via: str


class CustomerDeleted(Event):
    type: ClassVar[str] = "customers.deleted"
    summary: ClassVar[str] = "A customer deleted."
    customer_id: int


class CustomersMerged(Event):
    type: ClassVar[str] = "customers.merged"
    summary: ClassVar[str] = "A duplicate customer merged into the one that stays."
    merge_id: int
    survivor_id: int
    merged_id: int


class CustomersUnmerged(Event):
    type: ClassVar[str] = "customers.unmerged"
    summary: ClassVar[str] = "A merge undone: both customers stand on their own again."
    merge_id: int
    survivor_id: int
    merged_id: int


class ConsentChanged(Event):
    type: ClassVar[str] = "consents.changed"
    summary: ClassVar[str] = "A customer gave or withdrew consent for a channel."
    customer_id: int
    channel: str
    status: str


# --- loyalty, analysis, segments ------------------------------------------------------------


class LoyaltyPosted(Event):
    type: ClassVar[str] = "loyalty.posted"
    summary: ClassVar[str] = "Loyalty points earned, redeemed, expired, clawed back or moved."
    movements: list[dict[str, Any]]


class AnalysisCompleted(Event):
    type: ClassVar[str] = "analysis.completed"
    summary: ClassVar[str] = "A customer analysis finished (scores, churn risk, lifetime value)."
    run_id: int
    customers: int


class SegmentSnapshotTaken(Event):
    type: ClassVar[str] = "segments.snapshot_taken"
    summary: ClassVar[str] = "Every segment's members recorded."
    snapshot_id: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        OrdersRecorded,
        OrdersUpdated,
        OrdersReturned,
        OrdersCancelled,
        CustomersCreated,
        CustomersUpdated,
        CustomerDeleted,
        CustomersMerged,
        CustomersUnmerged,
        ConsentChanged,
        LoyaltyPosted,
        AnalysisCompleted,
        SegmentSnapshotTaken,
    )
}

# --- subscribing and publishing ---------------------------------------------------------------

InTransaction = Callable[[Session, Any], None]
_in_transaction: dict[str, list[InTransaction]] = defaultdict(list)
_after_commit: dict[str, list[str]] = defaultdict(list)
_loaded = False
_enabled = True


def subscribe(*event_types: type[Event] | str, after_commit: bool = False):
    """Register the decorated function for these events ("*": every event).

    In-transaction subscribers are called as fn(session, event). After-commit ones become
    the outbox task "event:<module>.<name>", called by the worker as fn(engine, event).
    """
    names = [t if isinstance(t, str) else t.type for t in event_types]

    def register(fn):
        if after_commit:
            topic = f"event:{fn.__module__}.{fn.__qualname__}"
            outbox.task(topic)(lambda engine, task: fn(engine, Event.from_envelope(task.payload)))
            for name in names:
                _after_commit[name].append(topic)
        else:
            for name in names:
                _in_transaction[name].append(fn)
        return fn

    return register


def load_subscribers() -> None:
    """Import every subscribing module once (they register themselves on import)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for name in SUBSCRIBERS:
            import_module(name)


def publish(session: Session, event: Event) -> None:
    """Tell the subscribers: in-transaction ones now, after-commit ones through the outbox."""
    if not _enabled:
        return
    load_subscribers()
    for fn in (*_in_transaction.get(event.type, ()), *_in_transaction.get("*", ())):
        fn(session, event)
    topics = (*_after_commit.get(event.type, ()), *_after_commit.get("*", ()))
    if topics:
        envelope = event.envelope()
        for topic in topics:
            outbox.enqueue(session, topic=topic, payload=envelope, event_id=event.id)


@contextmanager
def publishing_off() -> Iterator[None]:
    """No event is published inside (nobody reacts): for benchmarks that measure what
    publishing costs. Not for production code: loyalty earning rides on the events."""
    global _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = True
