"""REST API for the touchpoint timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from patron.api.deps import InteractionWriter, PathId, QueryId, Reader, SessionDep
from patron.interactions import service
from patron.interactions.schemas import Interaction, InteractionCreate, InteractionPage, InteractionUpdate
from patron.models.enums import InteractionChannel, InteractionKind
from patron.validation import AwareDateTime

router = APIRouter(prefix="/interactions", tags=["interactions"])


@router.get("", response_model=InteractionPage, summary="List interactions")
def list_interactions(
    session: SessionDep,
    _: Reader,
    customer_id: QueryId = None,
    kind: InteractionKind | None = None,
    channel: InteractionChannel | None = None,
    occurred_from: AwareDateTime | None = None,
    occurred_to: AwareDateTime | None = None,
    sort: str = "-occurred_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.list_interactions(
        session,
        sort=sort,
        limit=limit,
        cursor=cursor,
        customer_id=customer_id,
        kind=kind,
        channel=channel,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )
    return InteractionPage(items=page.items, next_cursor=page.next_cursor)


@router.post("", response_model=Interaction, status_code=201, summary="Add a touchpoint")
def create_interaction(data: InteractionCreate, session: SessionDep, principal: InteractionWriter):
    return service.create_interaction(session, data=data, user_id=principal.user_id)


@router.get("/{interaction_id}", response_model=Interaction, summary="Read an interaction")
def get_interaction(interaction_id: PathId, session: SessionDep, _: Reader):
    return service.get_interaction(session, interaction_id)


@router.patch("/{interaction_id}", response_model=Interaction, summary="Update the fields sent")
def update_interaction(interaction_id: PathId, data: InteractionUpdate, session: SessionDep, _: InteractionWriter):
    return service.update_interaction(session, interaction_id, data=data)


@router.delete("/{interaction_id}", status_code=204, summary="Delete an interaction")
def delete_interaction(interaction_id: PathId, session: SessionDep, _: InteractionWriter):
    service.delete_interaction(session, interaction_id)
    return Response(status_code=204)
