"""Who is signed in to the web UI, and what their role lets them do on each page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends
from starlette.requests import Request

from patron.api.deps import SessionDep
from patron.errors import NotAuthenticated, NotFound, PermissionDenied
from patron.models import User
from patron.users import service as users_service
from patron.users.permissions import Permission, allows
from patron.users.schemas import Principal
from patron.web.csrf import new_token

USER_KEY = "user_id"
# Name and role as of sign-in, only to draw the layout on pages that load no user
# (404s, 500s); every permission check reads the role from the database.
DISPLAY_KEY = "who"


def current_user(request: Request, session: SessionDep) -> Principal:
    """The signed-in, still active user; otherwise a 401 that pages turn into a login redirect."""
    user_id = request.session.get(USER_KEY)
    if not isinstance(user_id, int):
        raise NotAuthenticated("Please sign in.")
    try:
        user = users_service.get_user(session, user_id)
    except NotFound:
        user = None
    if user is None or not user.is_active:
        request.session.clear()
        raise NotAuthenticated("Please sign in.")
    principal = users_service.principal_for_user(user)
    request.state.principal = principal
    return principal


def require_page(permission: Permission) -> Callable[..., Principal]:
    """A page dependency: sign-in required, then a 403 page unless the role has `permission`."""

    def check(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
        if not allows(principal.role, permission):
            raise PermissionDenied(f"Your role ({principal.role}) does not allow this.")
        return principal

    check.required_permission = permission  # read by the every-page-is-protected test
    return check


PageReader = Annotated[Principal, Depends(require_page(Permission.read))]
PageCustomerWriter = Annotated[Principal, Depends(require_page(Permission.write_customers))]
PageInteractionWriter = Annotated[Principal, Depends(require_page(Permission.write_interactions))]
PageImporter = Annotated[Principal, Depends(require_page(Permission.import_data))]
PageMerger = Annotated[Principal, Depends(require_page(Permission.merge_customers))]


def sign_in(request: Request, user: User) -> None:
    """Start a new session for `user`: nothing from before sign-in survives (no fixation)."""
    request.session.clear()
    request.session[USER_KEY] = user.id
    request.session[DISPLAY_KEY] = _who(user.name, user.email, user.role)
    new_token(request)


def sign_out(request: Request) -> None:
    """Forget the user; the next page needs a new sign-in."""
    request.session.clear()


def display_user(request: Request) -> dict[str, Any] | None:
    """Name, email, role and permissions of the signed-in user for the layout, if any."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        who = _who(principal.name, principal.email, principal.role)
        role = principal.role
    elif "session" in request.scope and isinstance(request.session.get(DISPLAY_KEY), dict):
        who = dict(request.session[DISPLAY_KEY])
        role = who.get("role")
    else:
        return None
    try:
        who["can"] = {p.value: allows(role, p) for p in Permission}
    except (KeyError, ValueError):
        who["can"] = {}
    return who


def _who(name: str, email: str, role) -> dict[str, Any]:
    return {"name": name or email, "email": email, "role": str(role)}


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default` (no open redirects)."""
    if not target or not isinstance(target, str):
        return default
    if any(ch in target for ch in "\\\r\n\t\x00") or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def login_url(request: Request) -> str:
    """/login?next=<this page> for GETs; other methods cannot be replayed, so go home after."""
    if request.method != "GET":
        return "/login"
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(path, safe="/")
