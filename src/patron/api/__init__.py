"""create_app(): the one ASGI application serving the REST API, the web UI and static files."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron import __version__
from patron.db import get_engine, session_factory
from patron.errors import PatronError
from patron.settings import Settings, get_settings
from patron.validation import error_list

API_PREFIX = "/api/v1"


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the application bound to `engine` (default: PATRON_DATABASE_URL)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Patron",
        version=__version__,
        summary="Retention CRM: customers, orders, interactions and everything built on them.",
        docs_url="/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
        # Covers chunked bodies too: the limit is enforced while reading, not from Content-Length.
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.sessionmaker = session_factory(engine or get_engine())

    _add_error_handlers(app)

    from patron.customers.endpoints import router as customers_router
    from patron.interactions.endpoints import router as interactions_router
    from patron.orders.endpoints import router as orders_router
    from patron.products.endpoints import router as products_router

    for router in (customers_router, products_router, orders_router, interactions_router):
        app.include_router(router, prefix=API_PREFIX)

    from patron.web import mount_web

    mount_web(app, settings)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _add_error_handlers(app: FastAPI) -> None:
    from patron.web.errors import render_error_page

    def respond(request: Request, status: int, message: str, detail=None, headers=None):
        if _wants_json(request):
            return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=headers)
        return render_error_page(request, status, message)

    @app.exception_handler(PatronError)
    async def patron_error(request: Request, exc: PatronError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return respond(request, exc.status, exc.message, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = error_list(exc)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return respond(request, 422, f"Invalid input ({summary})", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return respond(request, exc.status_code, str(exc.detail), None, exc.headers)
