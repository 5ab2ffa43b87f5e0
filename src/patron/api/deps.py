"""Dependencies shared by every API endpoint: the session and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from patron import idempotency
from patron.db import get_session
from patron.errors import NotAuthenticated, PermissionDenied
from patron.users import service as users_service
from patron.users.permissions import Permission, allows
from patron.users.schemas import Principal
from patron.validation import MAX_ID, refuse_nul

SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API token from `patron tokens create`.")


def current_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("Missing bearer token: send 'Authorization: Bearer <token>'.")
    return users_service.principal_for_token(session, credentials.credentials)


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that lets the request through only with `permission`."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not allows(principal.role, permission):
            raise PermissionDenied(f"the {principal.role} role may not do this (needs {permission})")
        return principal

    check.required_permission = permission  # read by the deny-by-default test
    return check


Reader = Annotated[Principal, Depends(require(Permission.read))]
CustomerWriter = Annotated[Principal, Depends(require(Permission.write_customers))]
CustomerDeleter = Annotated[Principal, Depends(require(Permission.delete_customers))]
InteractionWriter = Annotated[Principal, Depends(require(Permission.write_interactions))]
OrderWriter = Annotated[Principal, Depends(require(Permission.write_orders))]
CatalogWriter = Annotated[Principal, Depends(require(Permission.write_catalog))]
Importer = Annotated[Principal, Depends(require(Permission.import_data))]
Merger = Annotated[Principal, Depends(require(Permission.merge_customers))]
Analyst = Annotated[Principal, Depends(require(Permission.run_analysis))]
SegmentManager = Annotated[Principal, Depends(require(Permission.manage_segments))]
LoyaltyManager = Annotated[Principal, Depends(require(Permission.manage_loyalty))]
LoyaltyOperator = Annotated[Principal, Depends(require(Permission.operate_loyalty))]

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def no_nul_in_query(request: Request) -> None:
    """Refuse NUL characters in query parameters (PostgreSQL cannot compare against them)."""
    refuse_nul(request.query_params.multi_items())


async def idempotent_request(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            min_length=1,
            max_length=idempotency.MAX_KEY_LENGTH,
            description=idempotency.HEADER_DESCRIPTION,
        ),
    ] = None,
) -> idempotency.IdempotentRequest:
    """The request's Idempotency-Key, scoped to the caller and the endpoint, with the raw body."""
    return idempotency.IdempotentRequest(
        scope=idempotency.scope_for(principal.user_id, request.method, request.url.path),
        key=key,
        body=await request.body(),
    )


Idempotent = Annotated[idempotency.IdempotentRequest, Depends(idempotent_request)]
