"""Sign-in and sign-out pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patron.api.deps import SessionDep
from patron.errors import NotAuthenticated
from patron.users import service
from patron.web.auth import USER_KEY, safe_next, sign_in, sign_out
from patron.web.forms import FormDep, PageResponse, text
from patron.web.templating import render

router = APIRouter(include_in_schema=False)

FAILED = "Incorrect email or password."


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form; someone already signed in goes straight on."""
    target = safe_next(next)
    if isinstance(request.session.get(USER_KEY), int):
        return RedirectResponse(target, status_code=303)
    return render(request, "users/login.html", {"title": "Sign in", "next": target, "email": "", "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, form: FormDep) -> Response:
    """Check the password; on success start a fresh session and go to `next` (local paths only)."""
    email, target = text(form, "email"), safe_next(text(form, "next"))
    password = form.get("password")
    try:
        user = service.authenticate(session, email=email, password=password if isinstance(password, str) else "")
    except NotAuthenticated:
        # Same message whether or not the email exists; raised so the transaction rolls back.
        page = render(
            request, "users/login.html", {"title": "Sign in", "next": target, "email": email, "error": FAILED}
        )
        raise PageResponse(page) from None
    sign_in(request, user)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session (a POST with the CSRF token, so other sites cannot sign people out)."""
    sign_out(request)
    return RedirectResponse("/login", status_code=303)
