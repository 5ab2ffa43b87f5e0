"""The customer 360 page, and adding a note to its timeline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from patron.analytics import equity
from patron.api.deps import PathId, SessionDep
from patron.customer360 import service
from patron.customers import service as customers
from patron.identity import service as identity
from patron.interactions import service as interactions
from patron.interactions.schemas import InteractionCreate
from patron.loyalty import service as loyalty
from patron.web.auth import PageInteractionWriter, PageReader
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import render

router = APIRouter(prefix="/customers", include_in_schema=False)

CustomerId = PathId
TIMELINE_SIZE = 20


# --- 360 and notes ------------------------------------------------------------------------


@router.get("/{customer_id}", response_class=HTMLResponse)
def customer_360(
    request: Request, session: SessionDep, _: PageReader, customer_id: CustomerId, cursor: str = ""
) -> Response:
    """Profile, KPIs, consents and the merged timeline, newest first; a merged customer's is the survivor's."""
    survivor = customers.resolve_customer_id(session, customer_id)
    if survivor != customer_id:
        return RedirectResponse(f"/customers/{survivor}", status_code=303)
    return _360_page(request, session, customer_id, cursor=cursor)


@router.post("/{customer_id}/notes", response_class=HTMLResponse)
def add_note(
    request: Request, session: SessionDep, principal: PageInteractionWriter, form: FormDep, customer_id: CustomerId
) -> Response:
    """Add a staff note to the timeline, then show the 360 again with the note on top."""
    body, subject = text(form, "body"), text(form, "subject")
    try:
        data = InteractionCreate(customer_id=customer_id, kind="note", body=body or None, subject=subject or None)
    except ValidationError as exc:
        page = _360_page(
            request, session, customer_id, note={"body": body, "subject": subject}, note_errors=field_errors(exc)
        )
        raise PageResponse(page) from None
    note = interactions.create_interaction(session, data=data, user_id=principal.user_id)
    return RedirectResponse(f"/customers/{note.customer_id}#timeline", status_code=303)


def _360_page(
    request: Request,
    session,
    customer_id: int,
    *,
    cursor: str = "",
    note: dict[str, str] | None = None,
    note_errors: dict[str, str] | None = None,
) -> HTMLResponse:
    view = service.customer_360(session, customer_id, cursor=cursor or None, limit=TIMELINE_SIZE)
    member = loyalty.member_for_customer(session, customer_id)
    merged_from = identity.recent_merges(session, survivor_id=customer_id, active_only=True, limit=10)
    outlook = equity.customer_outlook(session, customer_id=customer_id)
    profile = view.profile
    name = f"{profile.first_name} {profile.last_name}".strip() or profile.email or f"Customer {profile.id}"
    return render(
        request,
        "customer360/detail.html",
        {
            "title": name,
            "active": "customers",
            "view": view,
            "c": profile,
            "cursor": cursor,
            "note": note or {"body": "", "subject": ""},
            "note_errors": note_errors or {},
            "merged_from": merged_from,
            "outlook": outlook,
            "value_chart": _value_chart(outlook),
            "member": member,
            "balance": loyalty.balances_of(session, [member])[member.id] if member else None,
            "customer_id": customer_id,
        },
        status_code=422 if note_errors else 200,
    )


def _value_chart(outlook) -> dict | None:
    """CLV and P(alive) across the customer's analyses, when there are at least two to compare."""
    if outlook is None or len(outlook.history) < 2:
        return None
    return {
        "kind": "history",
        "x": [score.as_of.isoformat() for score, _ in outlook.history],
        "clv": [float(score.clv) if score.clv is not None else None for score, _ in outlook.history],
        "p_alive": [score.p_alive for score, _ in outlook.history],
    }
