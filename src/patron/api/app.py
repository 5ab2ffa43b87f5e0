"""create_app(): the one ASGI application serving the REST API, the web UI and static files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron import __version__
from patron.api.deps import no_nul_in_query
from patron.api.schemas import ErrorBody
from patron.db import get_engine, is_lock_timeout, session_factory
from patron.errors import PatronError
from patron.settings import Settings, get_settings
from patron.validation import error_list

API_PREFIX = "/api/v1"
# Seconds a client is asked to wait after a 503 for a busy database (the server has already
# waited its busy timeout for the lock).
RETRY_AFTER = "2"


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "Bad query parameter (sort, cursor)",
        401: "Missing or invalid bearer token",
        403: "The token's role may not do this",
        404: "Unknown id",
        409: "Duplicate (email, external id, SKU) or a state that forbids it",
        413: "Request body over the size limit",
        422: "Invalid input: detail lists each bad field",
        503: "The database stayed busy (SQLite's write lock); nothing was done: retry after Retry-After seconds",
    }.items()
}


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the application bound to `engine` (default: PATRON_DATABASE_URL)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Patron",
        version=__version__,
        summary="Retention CRM: customers, orders, interactions and everything built on them.",
        docs_url="/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine or get_engine()  # also for work that outlives a request (imports)
    app.state.sessionmaker = session_factory(app.state.engine)

    _add_error_handlers(app)
    from patron.imports.uploads import upload_body_limits
    from patron.ingest.endpoints import BATCH_PATHS

    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        path_limits={
            **{API_PREFIX + path: settings.max_batch_body_bytes for path in BATCH_PATHS},
            **upload_body_limits(settings),
        },
    )
    if settings.secure_cookies:
        app.add_middleware(StrictTransportMiddleware)
    for router in api_routers():
        app.include_router(
            router, prefix=API_PREFIX, responses=ERROR_RESPONSES, dependencies=[Depends(no_nul_in_query)]
        )

    from patron.web.app import mount_web

    mount_web(app, settings)
    return app


def api_routers() -> list[APIRouter]:
    """Every REST router, in the order they appear in the OpenAPI document."""
    from patron.analytics.endpoints import router as analytics
    from patron.customer360.endpoints import router as customer360
    from patron.customers.endpoints import router as customers
    from patron.identity.endpoints import router as identity
    from patron.imports.endpoints import router as imports
    from patron.ingest.endpoints import router as ingest
    from patron.interactions.endpoints import router as interactions
    from patron.loyalty.endpoints import router as loyalty
    from patron.orders.endpoints import router as orders
    from patron.products.endpoints import router as products
    from patron.segments.endpoints import router as segments
    from patron.webhooks.endpoints import router as webhooks

    # identity first: its /customers/duplicates and /customers/merges would otherwise be
    # taken for /customers/{customer_id}.
    return [
        identity,
        customers,
        customer360,
        products,
        orders,
        interactions,
        imports,
        ingest,
        analytics,
        segments,
        loyalty,
        webhooks,
    ]


class StrictTransportMiddleware:
    """Strict-Transport-Security on every answer when Patron is served over HTTPS
    (PATRON_SECURE_COOKIES): browsers then refuse plain http for a year, so a sign-in
    cookie is never offered over an unencrypted first request."""

    HEADER = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.HEADER]
            await send(message)

        await self.app(scope, receive, send_with_header)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit, declared (Content-Length) or streamed.

    The limit is `limit` bytes, or `path_limits[path]` for the few paths that take more
    (the batch endpoints). An HTTPException raised from inside the body read is passed
    through by FastAPI to the error handlers below, so a streamed oversized body gets the
    usual error shape too.
    """

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int] | None = None):
        self.app = app
        self.limit = limit
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.path_limits.get(scope["path"], self.limit)
        message = f"request body is larger than the {limit}-byte limit"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = JSONResponse({"error": message, "detail": {"limit": limit}}, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            msg = await receive()
            received += len(msg.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, detail=message)
            return msg

        await self.app(scope, counting_receive, send)


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
        # Webhooks authenticate by signature; their error names that scheme instead.
        headers = {"WWW-Authenticate": getattr(exc, "challenge", "Bearer")} if exc.status == 401 else None
        return respond(request, exc.status, exc.message, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = error_list(exc)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return respond(request, 422, f"Invalid input ({summary})", errors)

    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError):
        # SQLite's write lock was not had within the busy timeout: the transaction was rolled
        # back with nothing done, so the client may simply retry. Any other database error
        # stays a 500.
        if not is_lock_timeout(exc):
            raise exc
        response = respond(request, 503, "The database is busy; nothing was done: retry in a moment.")
        response.headers["Retry-After"] = RETRY_AFTER
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return respond(request, exc.status_code, str(exc.detail), None, exc.headers)
