"""The one Jinja2 environment of the web UI and the render() helper every page uses."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

import patron

PACKAGE_DIR = Path(patron.__file__).parent
WEB_DIR = Path(__file__).parent

# Sent with every HTML page. Scripts only from our own origin (Plotly is served locally);
# Plotly sets inline styles on its SVG, hence 'unsafe-inline' for styles only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show personal data: keep them out of shared caches and the back-button cache after sign-out.
    "Cache-Control": "no-store",
}


def template_dirs() -> list[Path]:
    """web/templates first, then every domain's templates/ folder (each namespaced by domain)."""
    dirs = [WEB_DIR / "templates"]
    dirs += sorted(
        p / "templates" for p in PACKAGE_DIR.iterdir() if p.is_dir() and p != WEB_DIR and (p / "templates").is_dir()
    )
    return dirs


def _money(value: Decimal | float | int | None, places: int = 2) -> str:
    if value is None:
        return "—"
    return f"{Decimal(str(value)):,.{places}f}"


def _number(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def _datetime(value, fmt: str = "%d %b %Y, %H:%M") -> str:
    return "—" if value is None else value.strftime(fmt)


def _date(value, fmt: str = "%d %b %Y") -> str:
    return "—" if value is None else value.strftime(fmt)


# Values that are abbreviations, shown as people write them rather than capitalised.
_LABELS = {"sms": "SMS"}


def label(value: Any) -> str:
    """'in_store' -> 'In store'; enum members show their value."""
    if value is None or value == "":
        return "—"
    text = str(getattr(value, "value", value))
    if text in _LABELS:
        return _LABELS[text]
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


def _build_environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in template_dirs()]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=_money, number=_number, datetime=_datetime, date=_date, label=label)
    # The version in the URL lets browsers cache the 4 MB file until plotly is upgraded.
    env.globals["plotly_src"] = f"/static/vendor/plotly.min.js?v={_plotly_version()}"
    return env


def _plotly_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("plotly")
    except PackageNotFoundError:
        return "0"


env = _build_environment()


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page template inside the layout, with who is signed in and the CSRF token."""
    from patron.web.auth import display_user
    from patron.web.csrf import csrf_token

    ctx = {
        "request": request,
        "user": display_user(request),
        "csrf_token": csrf_token(request) if "session" in request.scope else "",
        "active": "",
        "title": "",
    }
    ctx.update(context or {})
    html = env.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
