"""Queries over webhook subscriptions and their delivery log."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron.models import WebhookDelivery, WebhookSubscription
from patron.pagination import Page, paginate


def get(session: Session, subscription_id: int) -> WebhookSubscription | None:
    return session.get(WebhookSubscription, subscription_id)


def all_subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def active_targets(session: Session) -> list[tuple[int, list[str]]]:
    """(id, event types) of every active subscription: one small query."""
    rows = session.execute(
        select(WebhookSubscription.id, WebhookSubscription.event_types)
        .where(WebhookSubscription.active.is_(True))
        .order_by(WebhookSubscription.id)
    ).all()
    return [(sid, list(types or [])) for sid, types in rows]


def add(session: Session, row: WebhookSubscription) -> WebhookSubscription:
    session.add(row)
    session.flush()
    return row


def delete(session: Session, row: WebhookSubscription) -> None:
    session.delete(row)
    session.flush()


def add_delivery(session: Session, row: WebhookDelivery) -> WebhookDelivery:
    session.add(row)
    session.flush()
    return row


def count_failure(session: Session, subscription_id: int) -> int | None:
    """Add one to the subscription's consecutive failures in the database (two workers may
    fail on it at once); the new count, or None when it no longer exists."""
    return session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .values(consecutive_failures=WebhookSubscription.consecutive_failures + 1)
        .returning(WebhookSubscription.consecutive_failures)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def get_delivery(session: Session, subscription_id: int, delivery_id: int) -> WebhookDelivery | None:
    row = session.get(WebhookDelivery, delivery_id)
    return row if row is not None and row.subscription_id == subscription_id else None


def deliveries_page(session: Session, subscription_id: int, *, limit: int, cursor: str | None) -> Page:
    """The subscription's delivery attempts, newest first."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    return paginate(
        session,
        stmt,
        sort_col=WebhookDelivery.id,
        id_col=WebhookDelivery.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
