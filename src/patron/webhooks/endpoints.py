"""REST API for outgoing webhooks: subscriptions, their delivery log, send again. Admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from patron.api.deps import PathId, SessionDep, require
from patron.users.permissions import Permission
from patron.users.schemas import Principal
from patron.webhooks import service
from patron.webhooks.schemas import (
    Resent,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookSubscription,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionList,
    WebhookSubscriptionUpdate,
)

router = APIRouter(prefix="/webhooks/subscriptions", tags=["webhooks"])
WebhookManager = Annotated[Principal, Depends(require(Permission.manage_webhooks))]


@router.get("", response_model=WebhookSubscriptionList, summary="Every webhook subscription")
def list_subscriptions(session: SessionDep, _: WebhookManager):
    return WebhookSubscriptionList(items=[WebhookSubscription.of(s) for s in service.list_subscriptions(session)])


@router.post(
    "",
    response_model=WebhookSubscriptionCreated,
    status_code=201,
    summary="Subscribe a URL to events; the answer holds the signing secret, shown this once",
)
def create_subscription(body: WebhookSubscriptionCreate, session: SessionDep, principal: WebhookManager):
    row, secret = service.create_subscription(session, data=body, actor=f"api:{principal.email}")
    return WebhookSubscriptionCreated(**WebhookSubscription.of(row).model_dump(), secret=secret)


@router.get("/{subscription_id}", response_model=WebhookSubscription, summary="Read a subscription")
def get_subscription(subscription_id: PathId, session: SessionDep, _: WebhookManager):
    return WebhookSubscription.of(service.get_subscription(session, subscription_id))


@router.patch(
    "/{subscription_id}",
    response_model=WebhookSubscription,
    summary="Change a subscription; active=true re-enables a disabled one and clears its reason",
)
def update_subscription(
    subscription_id: PathId, body: WebhookSubscriptionUpdate, session: SessionDep, _: WebhookManager
):
    row = service.update_subscription(session, subscription_id, changes=body.model_dump(exclude_unset=True))
    return WebhookSubscription.of(row)


@router.delete("/{subscription_id}", status_code=204, summary="Delete a subscription and its delivery log")
def delete_subscription(subscription_id: PathId, session: SessionDep, _: WebhookManager):
    service.delete_subscription(session, subscription_id)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=WebhookDeliveryPage,
    summary="The delivery log: every attempt, newest first",
)
def list_deliveries(
    subscription_id: PathId,
    session: SessionDep,
    _: WebhookManager,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
):
    page = service.deliveries(session, subscription_id, limit=limit, cursor=cursor)
    return WebhookDeliveryPage(items=[WebhookDelivery.of(d) for d in page.items], next_cursor=page.next_cursor)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/resend",
    response_model=Resent,
    status_code=202,
    summary="Send a logged event again (same body, same event id) through the outbox",
)
def resend(subscription_id: PathId, delivery_id: PathId, session: SessionDep, _: WebhookManager):
    task = service.resend(session, subscription_id, delivery_id)
    return Resent(task_id=task.id, event_id=task.event_id)
