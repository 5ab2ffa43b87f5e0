"""REST API for duplicates and merges, under /customers (registered before the customers
router so /customers/duplicates and /customers/merges are not read as customer ids).

Reading candidates and merges needs only `read`, like every other customer read; merging
and undoing need `merge_customers`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from patron.api.deps import Merger, PathId, QueryId, Reader, SessionDep
from patron.identity import service
from patron.identity.schemas import DuplicateList, Merge, MergeCreate, MergePage

router = APIRouter(prefix="/customers", tags=["duplicates and merges"])


@router.get("/duplicates", response_model=DuplicateList, summary="Candidate duplicate customers, best first")
def list_duplicates(
    session: SessionDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = service.DEFAULT_LIMIT,
    min_score: Annotated[float, Query(ge=0, le=1, description="Leave out pairs scoring lower.")] = (
        service.DEFAULT_MIN_SCORE
    ),
):
    return DuplicateList(items=service.find_duplicates(session, limit=limit, min_score=min_score))


@router.post("/merges", response_model=Merge, status_code=201, summary="Merge a duplicate into a survivor")
def create_merge(data: MergeCreate, session: SessionDep, principal: Merger):
    return service.merge(session, survivor_id=data.survivor_id, merged_id=data.merged_id, user_id=principal.user_id)


@router.get("/merges", response_model=MergePage, summary="Merges, newest first")
def list_merges(
    session: SessionDep,
    _: Reader,
    customer_id: Annotated[QueryId, Query(description="Only merges this customer took part in.")] = None,
    active: Annotated[bool | None, Query(description="true: not undone; false: undone.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.list_merges(session, limit=limit, cursor=cursor, customer_id=customer_id, active=active)
    return MergePage(items=page.items, next_cursor=page.next_cursor)


@router.get("/merges/{merge_id}", response_model=Merge, summary="Read a merge")
def get_merge(merge_id: PathId, session: SessionDep, _: Reader):
    return service.get_merge(session, merge_id)


@router.post("/merges/{merge_id}/undo", response_model=Merge, summary="Undo a merge")
def undo_merge(merge_id: PathId, session: SessionDep, principal: Merger):
    return service.unmerge(session, merge_id=merge_id, user_id=principal.user_id)
