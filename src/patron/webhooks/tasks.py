"""The delivery task: POST one event to one subscription, outside any transaction.

Reading the target and writing the attempt are each a short transaction of their own; the
HTTP call runs between them with no transaction open (SQLite's writers queue on one lock).
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from patron import outbox
from patron.db import session_scope
from patron.models.base import utcnow
from patron.settings import get_settings
from patron.webhooks import sender, service
from patron.webhooks.service import TOPIC, Verdict

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Raised so that the outbox retries the task with its backoff (or dead-letters it)."""


@outbox.task(TOPIC)
def deliver(engine: Engine, task: outbox.Task) -> None:
    """Deliver the event in the task to its subscription; raise DeliveryFailed to be retried."""
    subscription_id = task.payload["subscription_id"]
    envelope = task.payload["event"]
    with session_scope(engine, write=False) as session:
        target = service.delivery_target(session, subscription_id)
    if target is None:
        log.info("webhook %s for deleted subscription %s: not sent", envelope["id"], subscription_id)
        return
    if not target.active:
        log.info("webhook %s for inactive subscription %s: not sent", envelope["id"], subscription_id)
        with session_scope(engine) as session:
            service.record_not_sent(session, subscription_id=subscription_id, task=task, envelope=envelope)
        return

    settings = get_settings()
    # The timestamp is the real time of sending (receivers refuse ones more than 5 minutes
    # off), whatever clock the worker schedules by.
    body, headers = sender.signed_request(envelope, target.secret, now=utcnow())
    attempt = sender.post(
        target.url,
        body,
        headers,
        timeout=settings.webhook_timeout_seconds,
        allowed_networks=settings.webhook_allowed_networks,
    )
    with session_scope(engine) as session:
        verdict = service.record_attempt(
            session, subscription_id=subscription_id, task=task, envelope=envelope, attempt=attempt
        )
    if verdict is None:
        log.info("webhook %s: subscription %s was deleted while sending", envelope["id"], subscription_id)
    elif verdict == Verdict.delivered:
        log.debug("webhook %s delivered to subscription %s", envelope["id"], subscription_id)
    elif attempt.status_code == 410:
        log.warning("webhook subscription %s disabled: the receiver answered 410 Gone", subscription_id)
    else:
        # A retry, or the last attempt: the outbox schedules the next or dead-letters the task.
        raise DeliveryFailed(f"webhook to subscription {subscription_id} failed: {attempt.error}")
