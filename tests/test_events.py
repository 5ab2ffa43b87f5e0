"""Domain events: published in the cause's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from patron import events, outbox
from patron.db import session_scope
from patron.models import Order, OutboxTask
from patron.models.enums import OutboxStatus
from patron.worker import Worker
from tests.factories import create_customer, create_order, create_product

PLACED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TOPIC = "test:record"


@pytest.fixture
def received(monkeypatch) -> list[dict]:
    """An after-commit subscriber to every event, for this test only: the envelopes it got."""
    got: list[dict] = []
    events.load_subscribers()
    monkeypatch.setitem(outbox._tasks, TOPIC, lambda engine, task: got.append(task.payload))
    monkeypatch.setitem(events._after_commit, "*", [*events._after_commit.get("*", []), TOPIC])
    return got


def tasks(session, topic: str = TOPIC) -> list[OutboxTask]:
    return list(session.execute(select(OutboxTask).where(OutboxTask.topic == topic).order_by(OutboxTask.id)).scalars())


def test_a_committed_order_makes_one_event_done_once_by_the_worker(fresh_engine, received):
    with session_scope(fresh_engine) as session:
        order = create_order(session, create_customer(session), placed_at=PLACED)
        order_id = order.id
    with session_scope(fresh_engine) as session:
        rows = tasks(session)
        types = [r.payload["type"] for r in rows]
        assert types == ["customers.created", "orders.recorded"]
        recorded = rows[1]
        assert recorded.payload["data"] == {"order_ids": [order_id], "via": "api"}
        assert recorded.event_id == recorded.payload["id"] and recorded.event_id.startswith("evt_")
    assert received == []  # nothing happens before a worker runs

    worker = Worker(fresh_engine, run_jobs=False)
    assert worker.drain() == 2
    assert [e["type"] for e in received] == ["customers.created", "orders.recorded"]
    assert received[1]["id"] == recorded.event_id
    with session_scope(fresh_engine) as session:
        assert {r.status for r in tasks(session)} == {OutboxStatus.done}
    assert worker.drain() == 0


def test_a_rolled_back_order_leaves_no_event(fresh_engine, received):
    with pytest.raises(RuntimeError), session_scope(fresh_engine) as session:
        create_order(session, create_customer(session), placed_at=PLACED)
        raise RuntimeError("the request failed after the order was written")
    with session_scope(fresh_engine) as session:
        assert tasks(session) == []
        assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert Worker(fresh_engine, run_jobs=False).drain() == 0
    assert received == []


def test_an_in_transaction_subscriber_that_fails_takes_the_cause_back(fresh_engine, monkeypatch):
    def refuse(session, event):
        raise RuntimeError("points could not be posted")

    events.load_subscribers()
    monkeypatch.setitem(events._in_transaction, "orders.recorded", [refuse])
    with pytest.raises(RuntimeError, match="points"), session_scope(fresh_engine) as session:
        create_order(session, create_customer(session), placed_at=PLACED)
    with session_scope(fresh_engine) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxTask)) == 0


def test_a_batch_is_one_event_with_every_id(admin, session, received):
    create_product(session, sku="MUG-1", price=Decimal("9.50"))
    customer = create_customer(session)
    body = [
        {
            "external_id": f"B-{i}",
            "customer_id": customer.id,
            "placed_at": PLACED.isoformat(),
            "channel": "online",
            "lines": [{"sku": "MUG-1", "quantity": 1, "unit_price": "9.50"}],
        }
        for i in range(3)
    ]
    r = admin.post("/api/v1/orders/batch", json={"records": body})
    assert r.status_code == 200, r.text
    ids = [x["id"] for x in r.json()["results"]]
    recorded = [t for t in tasks(session) if t.payload["type"] == "orders.recorded"]
    assert len(recorded) == 1
    assert recorded[0].payload["data"] == {"order_ids": ids, "via": "batch"}

    # The same batch again changes nothing: no event. A cancellation is its own event.
    assert admin.post("/api/v1/orders/batch", json={"records": body}).status_code == 200
    body[0]["status"] = "cancelled"
    assert admin.post("/api/v1/orders/batch", json={"records": body}).status_code == 200
    later = [t.payload for t in tasks(session) if t.payload["type"].startswith("orders.")]
    assert [(e["type"], e["data"]["order_ids"]) for e in later] == [
        ("orders.recorded", ids),
        ("orders.cancelled", [ids[0]]),
    ]


def test_every_event_type_round_trips_through_its_envelope():
    samples = {
        "order_ids": [1, 2],
        "customer_ids": [3],
        "via": "api",
        "customer_id": 4,
        "merge_id": 5,
        "survivor_id": 6,
        "merged_id": 7,
        "channel": "email",
        "status": "granted",
        "movements": [{"transaction_id": 8, "member_id": 9, "kind": "earn", "points": 10}],
        "run_id": 11,
        "customers": 12,
        "snapshot_id": 13,
    }
    for name, cls in events.EVENT_TYPES.items():
        fields = {k: samples[k] for k in cls.model_fields if k not in ("id", "occurred_at", "actor")}
        event = cls(actor="test", **fields)
        again = events.Event.from_envelope(event.envelope())
        assert again == event and again.type == name


def test_points_posted_and_snapshots_taken_are_events(session, received):
    from patron.loyalty import service as loyalty
    from patron.segments import service as segments

    customer = create_customer(session)
    member = loyalty.enrol(session, customer_id=customer.id, by="test", now=datetime(2026, 3, 1, tzinfo=UTC))
    order = create_order(session, customer, lines=[(create_product(session), 1, Decimal("40.00"))], placed_at=PLACED)
    posted = [t.payload["data"]["movements"] for t in tasks(session) if t.payload["type"] == "loyalty.posted"]
    assert [[(m["member_id"], m["kind"], m["points"]) for m in ms] for ms in posted] == [
        [(member.id, "enrol", 100)],
        [(member.id, "earn", 40)],
    ]
    earned = loyalty.statement(session, member_id=member.id).items[0]
    assert posted[1][0]["transaction_id"] == earned.id and order.id

    snap = segments.take_snapshot(session, actor="test")
    [taken] = [t.payload for t in tasks(session) if t.payload["type"] == "segments.snapshot_taken"]
    assert taken["data"] == {"snapshot_id": snap.id} and taken["actor"] == "test"
