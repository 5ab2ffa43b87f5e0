"""CSRF protection for every form: a random per-session token, checked on each POST."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

from patron.errors import PermissionDenied
from patron.validation import refuse_nul

SESSION_KEY = "csrf"
FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(request: Request) -> str:
    """The session's token, issued on first use (also before sign-in, for the login form)."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def new_token(request: Request) -> str:
    """Issue a fresh token (after sign-in, so a token seen before it is worthless)."""
    request.session[SESSION_KEY] = secrets.token_urlsafe(32)
    return request.session[SESSION_KEY]


def streams_form(page):
    """Mark a page that reads its (large, multipart) body itself instead of request.form().

    verify_csrf leaves its body alone; the page must call check_token() before it acts on
    anything sent, e.g. before writing an uploaded file.
    """
    page.streams_form = True
    return page


def check_token(request: Request, sent: object) -> None:
    """Refuse unless `sent` is the session's token."""
    expected = request.session.get(SESSION_KEY)
    if not (isinstance(expected, str) and expected and isinstance(sent, str) and sent) or not hmac.compare_digest(
        sent.encode(), expected.encode()
    ):
        raise PermissionDenied(
            "This form has expired or did not come from this site. Go back, reload the page and try again."
        )


async def verify_csrf(request: Request) -> None:
    """Router dependency: refuse any unsafe request whose form lacks the session's token.

    Runs before the page's own dependencies and body, so a refused request writes nothing.
    The parsed form is kept on request.state for the page (see forms.FormDep).
    """
    if request.method in SAFE_METHODS or getattr(request.scope.get("endpoint"), "streams_form", False):
        return
    form = await request.form()
    check_token(request, form.get(FIELD))
    # PostgreSQL text cannot hold NUL; refuse it up front like the API does.
    refuse_nul(form.multi_items())
    request.state.form = form
