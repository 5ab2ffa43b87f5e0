"""The duplicates review page: candidate pairs side by side, merge, recent merges and undo."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from patron.api.deps import PathId, SessionDep
from patron.errors import PatronError, ValidationFailed
from patron.identity import service
from patron.validation import MAX_ID
from patron.web.auth import PageMerger, PageReader, safe_next
from patron.web.forms import FormDep, PageResponse, text
from patron.web.templating import render

router = APIRouter(prefix="/duplicates", include_in_schema=False)

PAIRS_SHOWN = 50
MERGES_SHOWN = 20
# What the page offers as the minimum score; the default matches the API and CLI.
SCORE_CHOICES = [
    (0.4, "Possible (score 0.4 and up)"),
    (service.DEFAULT_MIN_SCORE, f"Likely (score {service.DEFAULT_MIN_SCORE} and up)"),
    (0.8, "Strong (score 0.8 and up)"),
]
NOTICE_KEY = "duplicates_notice"


@router.get("", response_class=HTMLResponse)
def duplicates(request: Request, session: SessionDep, _: PageReader, min_score: str = "") -> HTMLResponse:
    """Candidate pairs best first, each with a merge form, and the latest merges with undo."""
    score = _min_score(min_score)
    notice = request.session.pop(NOTICE_KEY, None)
    return _page(request, session, min_score=score, notice=notice if isinstance(notice, dict) else None)


@router.post("/merge", response_class=HTMLResponse)
def merge(request: Request, session: SessionDep, principal: PageMerger, form: FormDep) -> Response:
    """Merge the pair's other customer into the one chosen to keep."""
    try:
        survivor_id, merged_id = _pair_choice(form)
        record = service.merge(session, survivor_id=survivor_id, merged_id=merged_id, user_id=principal.user_id)
        summary = service.summary(session, record)
    except PatronError as exc:
        raise _error(request, session, exc) from None
    request.session[NOTICE_KEY] = {"text": summary, "merge_id": record.id}
    return RedirectResponse(_back(form), status_code=303)


@router.post("/merges/{merge_id}/undo", response_class=HTMLResponse)
def undo(request: Request, session: SessionDep, principal: PageMerger, form: FormDep, merge_id: PathId) -> Response:
    """Undo a merge and come back to the list, where the pair shows again."""
    try:
        record = service.unmerge(session, merge_id=merge_id, user_id=principal.user_id)
        summary = service.summary(session, record)
    except PatronError as exc:
        raise _error(request, session, exc) from None
    request.session[NOTICE_KEY] = {"text": summary, "merge_id": None}
    return RedirectResponse(_back(form), status_code=303)


def _page(
    request: Request,
    session,
    *,
    min_score: float = service.DEFAULT_MIN_SCORE,
    notice: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    review = service.review(session, limit=PAIRS_SHOWN, min_score=min_score, merges=MERGES_SHOWN)
    return render(
        request,
        "identity/duplicates.html",
        {
            "title": "Duplicates",
            "active": "duplicates",
            "review": review,
            "min_score": min_score,
            "score_choices": SCORE_CHOICES,
            "limit": PAIRS_SHOWN,
            "notice": notice,
            "error": error,
            "back": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        },
        status_code=status,
    )


def _error(request: Request, session, exc: PatronError) -> PageResponse:
    """The page again with the error on top; raising it rolls the request's work back."""
    return PageResponse(_page(request, session, error=exc.message, status=exc.status))


def _min_score(value: str) -> float:
    if not value.strip():
        return service.DEFAULT_MIN_SCORE
    try:
        score = float(value)
    except ValueError:
        score = -1.0
    if not 0 <= score <= 1:
        raise ValidationFailed([{"field": "min_score", "message": "must be a number between 0 and 1"}])
    return score


def _pair_choice(form: FormData) -> tuple[int, int]:
    """(survivor, merged) from the pair's two ids and the one chosen to keep."""
    ids = {}
    for name in ("a", "b", "keep"):
        value = text(form, name)
        if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
            raise ValidationFailed([{"field": name, "message": "must be a customer id"}])
        ids[name] = int(value)
    if ids["keep"] not in (ids["a"], ids["b"]):
        raise ValidationFailed([{"field": "keep", "message": "choose one of the pair to keep"}])
    return ids["keep"], ids["b"] if ids["keep"] == ids["a"] else ids["a"]


def _back(form: FormData) -> str:
    """Where to return after an action: the list as it was filtered, never another site."""
    return safe_next(text(form, "back"), "/duplicates")
