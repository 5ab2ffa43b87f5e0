"""GET /customers/{id}/360: everything about one customer in one read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from patron.api.deps import PathId, Reader, SessionDep
from patron.customer360 import service
from patron.customer360.schemas import Customer360
from patron.customers.endpoints import MOVED, to_survivor

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get(
    "/{customer_id}/360", response_model=Customer360, summary="Profile, consents, KPIs and timeline", responses=MOVED
)
def customer_360(
    customer_id: PathId,
    session: SessionDep,
    _: Reader,
    request: Request,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
):
    if moved := to_survivor(request, session, customer_id):
        return moved
    return service.customer_360(session, customer_id, cursor=cursor, limit=limit)
