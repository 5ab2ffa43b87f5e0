"""Web UI: server-rendered pages, their static assets and the session they run in."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from patron.api.deps import no_nul_in_query
from patron.settings import Settings
from patron.web.csrf import verify_csrf
from patron.web.forms import PageResponse

STATIC_DIR = Path(__file__).parent / "static"
PLOTLY_PATH = "/static/vendor/plotly.min.js"
SESSION_COOKIE = "patron_session"


def page_routers() -> list[APIRouter]:
    """Every HTML router; each domain's pages.py contributes one."""
    from patron.analytics.pages import router as analytics
    from patron.customer360.pages import router as customer360
    from patron.customers.pages import router as customers
    from patron.dashboard.pages import router as dashboard
    from patron.identity.pages import router as identity
    from patron.imports.pages import router as imports
    from patron.loyalty.pages import router as loyalty
    from patron.segments.pages import router as segments
    from patron.users.pages import router as users
    from patron.web.pages import router as coming_soon
    from patron.webhooks.pages import router as webhooks

    # customer360 after customers and identity: /customers/new and /customers/duplicates
    # are not ids.
    return [
        users,
        dashboard,
        customers,
        identity,
        customer360,
        imports,
        analytics,
        segments,
        loyalty,
        webhooks,
        coming_soon,
    ]


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed `plotly` package (never copied, never a CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Add the session middleware, static files, HTML error handling and every page router."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    plotly_file = plotly_js_path()

    # Registered before the /static mount so this exact path wins over the directory.
    @app.get(PLOTLY_PATH, include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(
            plotly_file,
            media_type="text/javascript",
            # The URL carries the plotly version, so the file can be cached for good.
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Every unsafe request to a page must carry the CSRF token; checked before anything else runs.
    for router in page_routers():
        app.include_router(
            router, include_in_schema=False, dependencies=[Depends(verify_csrf), Depends(no_nul_in_query)]
        )

    @app.exception_handler(PageResponse)
    async def page_response(_request: Request, exc: PageResponse):
        return exc.response

    @app.exception_handler(500)
    async def server_error(request: Request, _exc: Exception):
        from patron.web.errors import render_error_page

        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "Internal server error", "detail": None}, status_code=500)
        return render_error_page(request, 500, "Internal server error")
