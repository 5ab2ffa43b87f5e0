"""Webhooks react to every event: a delivery task per matching active subscription.

Runs in the event's transaction, so a rolled-back cause leaves no task; costs one small
query per transaction however many events it publishes (an import, a batch request).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from patron.events import Event, subscribe
from patron.webhooks import service
from patron.webhooks import tasks as _tasks  # noqa: F401  (registers the delivery task with the outbox)


@subscribe("*")
def deliver_to_subscribers(session: Session, event: Event) -> None:
    """Queue the event for each active subscription that asked for its type."""
    service.enqueue_for(session, event)
