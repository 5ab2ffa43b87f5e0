"""Events delivered to a real local receiver by the worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from patron import outbox
from patron.db import session_scope
from patron.models import OutboxTask, WebhookDelivery, WebhookSubscription
from patron.models.enums import DeliveryOutcome, OutboxStatus
from patron.webhooks import service
from patron.webhooks.service import TOPIC
from patron.worker import Worker
from tests.factories import create_customer, create_order
from tests.webhooks.conftest import Answer, subscribe

OTHER_SECRET = service.generate_secret()


def worker(engine, clock) -> Worker:
    return Worker(engine, clock=clock, rng=random.Random(0), run_jobs=False)


def tasks(engine) -> list[OutboxTask]:
    with session_scope(engine) as session:
        return list(session.scalars(select(OutboxTask).where(OutboxTask.topic == TOPIC).order_by(OutboxTask.id)))


def deliveries(engine, subscription_id: int) -> list[WebhookDelivery]:
    with session_scope(engine) as session:
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        return list(session.scalars(stmt.order_by(WebhookDelivery.id)))


def subscription(engine, subscription_id: int) -> WebhookSubscription:
    with session_scope(engine) as session:
        return session.get(WebhookSubscription, subscription_id)


def place_order(engine) -> int:
    with session_scope(engine) as session:
        return create_order(session, create_customer(session)).id


def test_a_committed_order_is_delivered_once_per_matching_subscription(fresh_engine, receiver, webhook_settings, clock):
    orders_id, secret = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    every_id, _ = subscribe(fresh_engine, receiver.url + "/all", ["*"])
    other_id, _ = subscribe(fresh_engine, receiver.url + "/other", ["customers.deleted"])
    order_id = place_order(fresh_engine)

    queued = tasks(fresh_engine)
    assert sorted((t.payload["subscription_id"], t.payload["event"]["type"]) for t in queued) == [
        (orders_id, "orders.recorded"),
        (every_id, "customers.created"),
        (every_id, "orders.recorded"),
    ]
    assert worker(fresh_engine, clock).drain() == 3

    assert {t.status for t in tasks(fresh_engine)} == {OutboxStatus.done}
    [log] = deliveries(fresh_engine, orders_id)
    assert (log.outcome, log.status_code, log.attempt) == (DeliveryOutcome.delivered, 200, 1)
    assert log.response_excerpt == "ok"
    assert log.latency_ms is not None and log.latency_ms >= 0
    assert len(deliveries(fresh_engine, every_id)) == 2
    assert deliveries(fresh_engine, other_id) == []

    [got] = [r for r in receiver.received if r.path == "/hooks"]
    body = json.loads(got.body)
    assert body["type"] == "orders.recorded" and body["data"] == {"order_ids": [order_id], "via": "api"}
    assert set(body) == {"id", "type", "occurred_at", "actor", "data"}
    assert got.headers["webhook-id"] == body["id"] == log.event_id
    assert got.headers["content-type"] == "application/json"
    assert Webhook(secret).verify(got.body, got.headers) == body
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):  # a body changed on the way
        Webhook(secret).verify(got.body.replace(b"orders.recorded", b"orders.returned"), got.headers)


def test_a_rolled_back_order_leaves_no_task_and_no_delivery(fresh_engine, receiver, webhook_settings, clock):
    sub_id, _ = subscribe(fresh_engine, receiver.url, ["*"])
    with pytest.raises(RuntimeError), session_scope(fresh_engine) as session:
        create_order(session, create_customer(session))
        assert len(session.scalars(select(OutboxTask).where(OutboxTask.topic == TOPIC)).all()) == 2
        raise RuntimeError("the request failed after the order was written")
    assert tasks(fresh_engine) == []
    assert worker(fresh_engine, clock).drain() == 0
    assert receiver.received == [] and deliveries(fresh_engine, sub_id) == []


def test_an_inactive_subscription_gets_no_task(fresh_engine, receiver, webhook_settings, clock):
    subscribe(fresh_engine, receiver.url, ["*"], active=False)
    place_order(fresh_engine)
    assert tasks(fresh_engine) == []


def test_failures_retry_on_the_backoff_schedule_then_dead_letter_and_disable(
    fresh_engine, receiver, webhook_settings, clock
):
    receiver.answer(Answer(500, "database down"))
    sub_id, _ = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    w = worker(fresh_engine, clock)
    expected_rng = random.Random(0)  # the worker's jitter, drawn in the same order
    [task] = tasks(fresh_engine)
    for attempt in range(1, task.max_attempts + 1):
        assert w.run_once() == 1
        [task] = tasks(fresh_engine)
        log = deliveries(fresh_engine, sub_id)
        assert len(log) == attempt and log[-1].attempt == attempt
        assert (log[-1].outcome, log[-1].status_code, log[-1].error) == (
            DeliveryOutcome.failed,
            500,
            "HTTP 500 Internal Server Error",
        )
        assert log[-1].response_excerpt == "database down"
        if attempt == task.max_attempts:
            break
        assert task.status == OutboxStatus.pending and "HTTP 500" in task.last_error
        assert task.available_at == clock.now + outbox.backoff(attempt, rng=expected_rng)
        assert subscription(fresh_engine, sub_id).consecutive_failures == attempt
        assert subscription(fresh_engine, sub_id).active
        clock.now = task.available_at - timedelta(seconds=1)
        assert w.run_once() == 0  # not before its time
        clock.now = task.available_at + timedelta(seconds=1)

    assert task.status == OutboxStatus.dead and task.attempts == task.max_attempts
    sub = subscription(fresh_engine, sub_id)
    assert not sub.active
    last = "HTTP 500 Internal Server Error"
    assert sub.disabled_reason == f"disabled after {task.max_attempts} failed attempts; last: {last}"
    assert len(receiver.received) == task.max_attempts
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one event id on every retry

    # Reactivating clears the reason and the count; a dead letter sent again is delivered.
    receiver.answer(Answer(204, ""))
    with session_scope(fresh_engine) as session:
        service.set_active(session, sub_id, active=True)
        outbox.retry_dead(session, task_id=task.id, now=clock.now)
    sub = subscription(fresh_engine, sub_id)
    assert (sub.active, sub.disabled_reason, sub.consecutive_failures) == (True, None, 0)
    assert w.drain() == 1
    assert deliveries(fresh_engine, sub_id)[-1].outcome == DeliveryOutcome.delivered


def test_410_gone_disables_at_once_and_does_not_retry(fresh_engine, receiver, webhook_settings, clock):
    receiver.answer(Answer(410, "no such hook"))
    sub_id, _ = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    assert worker(fresh_engine, clock).drain() == 1
    [task] = tasks(fresh_engine)
    assert task.status == OutboxStatus.done and task.attempts == 1
    [log] = deliveries(fresh_engine, sub_id)
    assert (log.outcome, log.status_code, log.error) == (DeliveryOutcome.failed, 410, "HTTP 410 Gone")
    sub = subscription(fresh_engine, sub_id)
    assert not sub.active and sub.disabled_reason == "disabled: the receiver answered HTTP 410 Gone"
    place_order(fresh_engine)
    assert len(tasks(fresh_engine)) == 1  # a disabled subscription gets no new events


def assert_retrying(engine, sub_id: int, error: str) -> WebhookDelivery:
    """One failed, logged attempt whose task waits for its retry: nothing lost."""
    [task] = tasks(engine)
    assert task.status == OutboxStatus.pending and task.attempts == 1 and error in task.last_error
    [log] = deliveries(engine, sub_id)
    assert log.outcome == DeliveryOutcome.failed and error in log.error
    return log


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(fresh_engine, receiver, webhook_settings, clock):
    webhook_settings(timeout=0.3)
    receiver.answer(Answer(200, "too late", delay=2))
    sub_id, _ = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    assert worker(fresh_engine, clock).drain() == 1
    log = assert_retrying(fresh_engine, sub_id, "timed out after 0.3 s")
    assert log.status_code is None


def test_a_redirect_to_another_host_is_refused(fresh_engine, receiver, webhook_settings, clock):
    receiver.answer(Answer(302, "", headers={"Location": "http://elsewhere.example/steal"}))
    sub_id, _ = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    assert worker(fresh_engine, clock).drain() == 1
    log = assert_retrying(fresh_engine, sub_id, "redirect to http://elsewhere.example/steal refused")
    assert log.status_code == 302
    assert len(receiver.received) == 1  # nothing sent to the other host


def test_a_redirect_on_the_same_origin_is_followed(fresh_engine, receiver, webhook_settings, clock):
    receiver.answer(Answer(308, "", headers={"Location": "/hooks/v2"}), Answer(200, "moved ok"))
    sub_id, secret = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    assert worker(fresh_engine, clock).drain() == 1
    [log] = deliveries(fresh_engine, sub_id)
    assert (log.outcome, log.status_code, log.response_excerpt) == (DeliveryOutcome.delivered, 200, "moved ok")
    first, second = receiver.received
    assert second.path == "/hooks/v2" and second.body == first.body
    Webhook(secret).verify(second.body, second.headers)


def test_a_target_on_this_machine_is_refused_without_the_setting(fresh_engine, receiver, webhook_settings, clock):
    webhook_settings(allowed="")
    sub_id, _ = subscribe(fresh_engine, f"http://localhost:{receiver.port}/hooks", ["orders.recorded"])
    place_order(fresh_engine)
    assert worker(fresh_engine, clock).drain() == 1
    log = assert_retrying(fresh_engine, sub_id, "target refused: localhost resolves to")
    assert "loopback address" in log.error and "PATRON_WEBHOOK_ALLOWED_NETWORKS" in log.error
    assert receiver.received == []


def test_a_refused_connection_is_a_failed_attempt(fresh_engine, webhook_settings, clock):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sub_id, _ = subscribe(fresh_engine, f"http://127.0.0.1:{port}/hooks", ["orders.recorded"])
    place_order(fresh_engine)
    assert worker(fresh_engine, clock).drain() == 1
    assert_retrying(fresh_engine, sub_id, "connection refused by 127.0.0.1")


def test_send_again_delivers_the_same_event(fresh_engine, receiver, webhook_settings, clock):
    sub_id, secret = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    w = worker(fresh_engine, clock)
    assert w.drain() == 1
    [first] = deliveries(fresh_engine, sub_id)
    with session_scope(fresh_engine) as session:
        task = service.resend(session, sub_id, first.id)
        assert task.event_id == first.event_id
    assert w.drain() == 1
    assert [d.event_id for d in deliveries(fresh_engine, sub_id)] == [first.event_id, first.event_id]
    one, two = receiver.received
    assert one.body == two.body and one.headers["webhook-id"] == two.headers["webhook-id"] == first.event_id
    Webhook(secret).verify(two.body, two.headers)


def test_a_subscription_switched_off_after_queueing_is_not_sent_but_logged(
    fresh_engine, receiver, webhook_settings, clock
):
    off_id, _ = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    gone_id, _ = subscribe(fresh_engine, receiver.url, ["orders.recorded"])
    place_order(fresh_engine)
    with session_scope(fresh_engine) as session:
        service.set_active(session, off_id, active=False)
        service.delete_subscription(session, gone_id)
    assert worker(fresh_engine, clock).drain() == 2
    assert receiver.received == []
    assert {t.status for t in tasks(fresh_engine)} == {OutboxStatus.done}
    [log] = deliveries(fresh_engine, off_id)
    assert log.outcome == DeliveryOutcome.failed and log.error == "not sent: the subscription is inactive"
