"""Settings › Webhooks: the subscriptions, a form to add or change one, and each one's delivery log
with "Send again". Admin only; every form carries the CSRF token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from patron.api.deps import PathId, SessionDep
from patron.errors import PatronError
from patron.events import EVENT_TYPES
from patron.models import WebhookSubscription
from patron.users.permissions import Permission
from patron.users.schemas import Principal
from patron.web.auth import require_page
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import render
from patron.webhooks import service
from patron.webhooks.schemas import ALL_EVENTS, WebhookSubscriptionCreate, WebhookSubscriptionUpdate, mask_secret

router = APIRouter(prefix="/settings/webhooks", include_in_schema=False)

PageWebhookManager = Annotated[Principal, Depends(require_page(Permission.manage_webhooks))]
NOTICE_KEY = "webhooks_notice"
DELIVERIES_PER_PAGE = 25
FORM_FIELDS = ("url", "description", "event_types", "secret")
EVENT_CHOICES = [(ALL_EVENTS, "Every event")] + [(name, cls.summary) for name, cls in EVENT_TYPES.items()]


def _notice(request: Request) -> str | None:
    notice = request.session.pop(NOTICE_KEY, None)
    return notice if isinstance(notice, str) else None


def _values(form: FormData) -> dict[str, Any]:
    return {
        "url": text(form, "url"),
        "description": text(form, "description"),
        "event_types": [v for v in form.getlist("event_types") if isinstance(v, str)],
        "secret": text(form, "secret"),
    }


def _errors(exc: ValidationError | PatronError) -> dict[str, str]:
    return {(k if k in FORM_FIELDS else ""): v for k, v in field_errors(exc).items()}


def _context(**extra: Any) -> dict[str, Any]:
    return {"active": "settings", "event_choices": EVENT_CHOICES, "mask": mask_secret, **extra}


# --------------------------------------------------------------------------- list and create


@router.get("", response_class=HTMLResponse)
def subscription_list(request: Request, session: SessionDep, _: PageWebhookManager) -> HTMLResponse:
    """Every subscription with its events and state."""
    return render(
        request,
        "webhooks/list.html",
        _context(
            title="Webhooks",
            subscriptions=service.list_subscriptions(session),
            notice=_notice(request),
        ),
    )


def _new_page(request: Request, *, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> HTMLResponse:
    return render(
        request,
        "webhooks/form.html",
        _context(title="New webhook", subscription=None, values=values, errors=errors, action="/settings/webhooks/new"),
        status_code=status,
    )


@router.get("/new", response_class=HTMLResponse)
def new_subscription(request: Request, _: PageWebhookManager) -> HTMLResponse:
    return _new_page(request, values={"event_types": []}, errors={})


@router.post("/new", response_class=HTMLResponse)
def create_subscription(
    request: Request, session: SessionDep, principal: PageWebhookManager, form: FormDep
) -> HTMLResponse:
    """Save the subscription and show its secret, this once."""
    values = _values(form)
    try:
        data = WebhookSubscriptionCreate.model_validate({**values, "secret": values["secret"] or None})
        row, secret = service.create_subscription(session, data=data, actor=f"web:{principal.email}")
    except (ValidationError, PatronError) as exc:
        status = exc.status if isinstance(exc, PatronError) else 422
        raise PageResponse(_new_page(request, values=values, errors=_errors(exc), status=status)) from None
    return _detail_page(request, session, row, created_secret=secret, status=201)


# --------------------------------------------------------------------------- one subscription


def _detail_page(
    request: Request,
    session: Session,
    row: WebhookSubscription,
    *,
    cursor: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    created_secret: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    page = service.deliveries(session, row.id, limit=DELIVERIES_PER_PAGE, cursor=cursor)
    return render(
        request,
        "webhooks/detail.html",
        _context(
            title=row.description or row.url,
            subscription=row,
            deliveries=page.items,
            next_cursor=page.next_cursor,
            values=values or {"url": row.url, "description": row.description, "event_types": row.event_types},
            errors=errors or {},
            created_secret=created_secret,
            notice=_notice(request),
            action=f"/settings/webhooks/{row.id}",
        ),
        status_code=status,
    )


@router.get("/{subscription_id}", response_class=HTMLResponse)
def subscription_detail(
    request: Request,
    session: SessionDep,
    _: PageWebhookManager,
    subscription_id: PathId,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The subscription, its settings form and its delivery log (newest first)."""
    return _detail_page(request, session, service.get_subscription(session, subscription_id), cursor=cursor)


@router.post("/{subscription_id}", response_class=HTMLResponse)
def update_subscription(
    request: Request, session: SessionDep, _: PageWebhookManager, subscription_id: PathId, form: FormDep
) -> Response:
    """Change the URL, description or event types (and the secret, when a new one is given)."""
    values = _values(form)
    changes = {k: v for k, v in values.items() if k != "secret" or v}
    try:
        data = WebhookSubscriptionUpdate.model_validate(changes)
        service.update_subscription(session, subscription_id, changes=data.model_dump(exclude_unset=True))
    except (ValidationError, PatronError) as exc:
        if isinstance(exc, PatronError) and exc.status == 404:
            raise
        status = exc.status if isinstance(exc, PatronError) else 422
        row = service.get_subscription(session, subscription_id)
        page = _detail_page(request, session, row, values=values, errors=_errors(exc), status=status)
        raise PageResponse(page) from None
    request.session[NOTICE_KEY] = "Saved."
    return RedirectResponse(f"/settings/webhooks/{subscription_id}", status_code=303)


@router.post("/{subscription_id}/activate")
def activate(request: Request, session: SessionDep, _: PageWebhookManager, subscription_id: PathId, form: FormDep):
    """Turn deliveries on again; a disabled subscription's reason and failure count are cleared."""
    service.set_active(session, subscription_id, active=True)
    request.session[NOTICE_KEY] = "Activated: new events will be delivered."
    return RedirectResponse(f"/settings/webhooks/{subscription_id}", status_code=303)


@router.post("/{subscription_id}/deactivate")
def deactivate(request: Request, session: SessionDep, _: PageWebhookManager, subscription_id: PathId, form: FormDep):
    service.set_active(session, subscription_id, active=False)
    request.session[NOTICE_KEY] = "Deactivated: no events are delivered until you activate it again."
    return RedirectResponse(f"/settings/webhooks/{subscription_id}", status_code=303)


@router.post("/{subscription_id}/delete")
def delete(request: Request, session: SessionDep, _: PageWebhookManager, subscription_id: PathId, form: FormDep):
    service.delete_subscription(session, subscription_id)
    request.session[NOTICE_KEY] = "Deleted the subscription and its delivery log."
    return RedirectResponse("/settings/webhooks", status_code=303)


@router.post("/{subscription_id}/deliveries/{delivery_id}/resend")
def resend(
    request: Request,
    session: SessionDep,
    _: PageWebhookManager,
    subscription_id: PathId,
    delivery_id: PathId,
    form: FormDep,
) -> Response:
    """Queue the delivery's event again (same body, same event id)."""
    try:
        task = service.resend(session, subscription_id, delivery_id)
    except PatronError as exc:
        if exc.status == 404:
            raise
        row = service.get_subscription(session, subscription_id)
        raise PageResponse(_detail_page(request, session, row, errors={"": exc.message}, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Event {task.event_id} queued to be sent again."
    return RedirectResponse(f"/settings/webhooks/{subscription_id}", status_code=303)
