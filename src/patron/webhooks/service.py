"""Outgoing webhooks: subscriptions, the tasks that deliver events to them, and the log.

An event is delivered at least once to each active subscription whose event types match:
the subscriber in handlers.py writes one outbox task per subscription in the event's own
transaction, and the task (tasks.py) POSTs it, writing a delivery row per attempt.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from patron import outbox
from patron.errors import Conflict, NotFound
from patron.events import Event
from patron.models import OutboxTask, WebhookDelivery, WebhookSubscription
from patron.models.enums import DeliveryOutcome
from patron.pagination import Page
from patron.webhooks import repository as repo
from patron.webhooks.schemas import ALL_EVENTS, SECRET_PREFIX, WebhookSubscriptionCreate
from patron.webhooks.sender import Attempt

TOPIC = "webhooks.deliver"
ERROR_CHARS = 500
# session.info key: the active subscriptions read once per transaction (an import publishes
# an event per batch; each should not read them again).
_TARGETS_KEY = "patron_webhook_targets"


def generate_secret() -> str:
    """A new Standard Webhooks secret: 'whsec_' + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# --- subscriptions ---------------------------------------------------------------------------


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    return repo.all_subscriptions(session)


def get_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    row = repo.get(session, subscription_id)
    if row is None:
        raise NotFound(f"webhook subscription {subscription_id} not found", detail={"field": "subscription_id"})
    return row


def create_subscription(
    session: Session, *, data: WebhookSubscriptionCreate, actor: str = ""
) -> tuple[WebhookSubscription, str]:
    """Add a subscription; it and its secret (generated when none was given), to show once."""
    secret = data.secret or generate_secret()
    row = repo.add(
        session,
        WebhookSubscription(
            url=data.url,
            description=data.description,
            event_types=data.event_types,
            secret=secret,
            active=data.active,
            consecutive_failures=0,
            created_by=actor,
        ),
    )
    _forget_targets(session)
    return row, secret


def update_subscription(session: Session, subscription_id: int, *, changes: dict[str, Any]) -> WebhookSubscription:
    """Apply validated changes (WebhookSubscriptionUpdate, exclude_unset). Activating a
    subscription clears the reason it was disabled and its failure count."""
    row = get_subscription(session, subscription_id)
    for name in ("url", "description", "event_types", "secret"):
        if name in changes:
            setattr(row, name, changes[name])
    if "active" in changes:
        _set_active(row, changes["active"])
    session.flush()
    _forget_targets(session)
    return row


def set_active(session: Session, subscription_id: int, *, active: bool) -> WebhookSubscription:
    return update_subscription(session, subscription_id, changes={"active": active})


def _set_active(row: WebhookSubscription, active: bool) -> None:
    if active and not row.active:
        row.disabled_reason = None
        row.consecutive_failures = 0
    row.active = active


def delete_subscription(session: Session, subscription_id: int) -> None:
    """Delete it with its delivery log; tasks already queued for it finish without sending."""
    repo.delete(session, get_subscription(session, subscription_id))
    _forget_targets(session)


def deliveries(session: Session, subscription_id: int, *, limit: int = 50, cursor: str | None = None) -> Page:
    """The subscription's delivery log, newest first."""
    get_subscription(session, subscription_id)
    return repo.deliveries_page(session, subscription_id, limit=limit, cursor=cursor)


def resend(session: Session, subscription_id: int, delivery_id: int) -> OutboxTask:
    """Queue the event of a logged delivery again: the same body and event id, a fresh set of attempts."""
    sub = get_subscription(session, subscription_id)
    delivery = repo.get_delivery(session, subscription_id, delivery_id)
    if delivery is None:
        raise NotFound(
            f"delivery {delivery_id} of webhook subscription {subscription_id} not found",
            detail={"field": "delivery_id"},
        )
    if not sub.active:
        raise Conflict(
            "the subscription is inactive: activate it first, then send again", detail={"field": "subscription_id"}
        )
    task = _enqueue(session, subscription_id, delivery.payload)
    session.flush()
    return task


# --- in the event's transaction: who gets it -------------------------------------------------------


def enqueue_for(session: Session, event: Event) -> int:
    """One delivery task per active subscription that wants this event; how many."""
    ids = [sid for sid, types in _targets(session) if ALL_EVENTS in types or event.type in types]
    if ids:
        envelope = event.envelope()
        for sid in ids:
            _enqueue(session, sid, envelope)
    return len(ids)


def _enqueue(session: Session, subscription_id: int, envelope: dict[str, Any]) -> OutboxTask:
    return outbox.enqueue(
        session, topic=TOPIC, payload={"subscription_id": subscription_id, "event": envelope}, event_id=envelope["id"]
    )


def _targets(session: Session) -> list[tuple[int, list[str]]]:
    transaction = session.get_transaction()
    cached = session.info.get(_TARGETS_KEY)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    targets = repo.active_targets(session)
    session.info[_TARGETS_KEY] = (transaction, targets)
    return targets


def _forget_targets(session: Session) -> None:
    session.info.pop(_TARGETS_KEY, None)


# --- in the delivery task: before and after the POST ---------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    secret: str
    active: bool


class Verdict(StrEnum):
    delivered = "delivered"
    retry = "retry"  # failed: the outbox tries again after its backoff
    disabled = "disabled"  # failed for good: the subscription is now disabled


def delivery_target(session: Session, subscription_id: int) -> Target | None:
    row = repo.get(session, subscription_id)
    return None if row is None else Target(row.url, row.secret, row.active)


def record_not_sent(session: Session, *, subscription_id: int, task: outbox.Task, envelope: dict[str, Any]) -> None:
    """Log that an event was not sent because its subscription is inactive (send again later)."""
    row = repo.get(session, subscription_id)
    if row is None:
        return
    reason = f" ({row.disabled_reason})" if row.disabled_reason else ""
    _log(session, subscription_id, task, envelope, Attempt(None, 0, f"not sent: the subscription is inactive{reason}"))


def record_attempt(
    session: Session, *, subscription_id: int, task: outbox.Task, envelope: dict[str, Any], attempt: Attempt
) -> Verdict | None:
    """Write the attempt to the log and keep the subscription's failure count; disable it on
    410 Gone or when this was the task's last attempt. None: the subscription is gone."""
    row = repo.get(session, subscription_id)
    if row is None:
        return None
    _log(session, subscription_id, task, envelope, attempt)
    if attempt.delivered:
        row.consecutive_failures = 0
        session.flush()
        return Verdict.delivered
    repo.count_failure(session, subscription_id)
    session.refresh(row)
    if attempt.status_code == 410:
        _disable(row, "disabled: the receiver answered HTTP 410 Gone")
    elif task.attempt >= task.max_attempts:
        _disable(row, f"disabled after {task.attempt} failed attempts; last: {attempt.error}")
    else:
        return Verdict.retry
    session.flush()
    return Verdict.disabled


def _disable(row: WebhookSubscription, reason: str) -> None:
    row.active = False
    row.disabled_reason = reason[:ERROR_CHARS]


def _log(session: Session, subscription_id: int, task: outbox.Task, envelope: dict[str, Any], attempt: Attempt):
    repo.add_delivery(
        session,
        WebhookDelivery(
            subscription_id=subscription_id,
            outbox_id=task.id,
            event_id=envelope["id"],
            event_type=envelope["type"],
            attempt=task.attempt,
            outcome=DeliveryOutcome.delivered if attempt.delivered else DeliveryOutcome.failed,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error[:ERROR_CHARS] if attempt.error else None,
            response_excerpt=attempt.excerpt,
            payload=envelope,
        ),
    )
