"""REST API for segments: preview a rule, CRUD, members and CSV export, static lists, reports, snapshots, clusters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from patron.api.deps import PathId, QueryId, Reader, SegmentManager, SessionDep
from patron.errors import InvalidInput
from patron.segments import examples, fields, service
from patron.segments.schemas import (
    ClusterRequest,
    FreezeRequest,
    MemberPage,
    MemberSummary,
    MigrationMatrix,
    RulePreview,
    RulePreviewRequest,
    Segment,
    SegmentComparison,
    SegmentCreate,
    SegmentList,
    SegmentReport,
    SegmentUpdate,
    Snapshot,
    StaticMembers,
    StaticMembersResult,
)
from patron.validation import MAX_ID

router = APIRouter(tags=["segments"])
MAX_CSV_BYTES = 50 * 1024 * 1024


@router.get("/segments/fields", summary="Every field a rule can test, with its operators and values")
def list_fields(_: Reader) -> list[dict]:
    return fields.catalogue()


@router.get("/segments/examples", summary="Ready example rules: demographic, geographic, behavioural, benefits sought")
def list_examples(_: Reader) -> list[dict]:
    return examples.EXAMPLES


@router.post(
    "/segments/preview", response_model=RulePreview, summary="Count and sample a rule's members, saving nothing"
)
def preview(body: RulePreviewRequest, session: SessionDep, _: Reader):
    result = service.preview(session, rule=body.rule, sample_size=body.sample_size)
    return RulePreview(
        count=result.count,
        total=result.total,
        sample=[MemberSummary.of(c) for c in result.sample],
        warnings=result.warnings,
    )


@router.get("/segments/snapshots", response_model=list[Snapshot], summary="Membership snapshots, newest first")
def list_snapshots(session: SessionDep, _: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    return [
        Snapshot(id=s.id, taken_at=s.taken_at, taken_by=s.taken_by, sizes=s.sizes)
        for s in service.list_snapshots(session, limit=limit)
    ]


@router.post(
    "/segments/snapshots", response_model=Snapshot, status_code=201, summary="Record every segment's members now"
)
def take_snapshot(session: SessionDep, principal: SegmentManager):
    s = service.take_snapshot(session, actor=f"api:{principal.email}")
    return Snapshot(id=s.id, taken_at=s.taken_at, taken_by=s.taken_by, sizes=s.sizes)


@router.get(
    "/segments/migration",
    response_model=MigrationMatrix,
    summary="Customers who moved between segments from one snapshot to another (default: the last two, RFM segments)",
)
def migration(
    session: SessionDep,
    _: Reader,
    before: QueryId = None,
    after: QueryId = None,
    segments: Annotated[str | None, Query(description="Comma-separated segment ids")] = None,
):
    ids = _id_list(segments, "segments") if segments else None
    return service.migration(session, before_id=before, after_id=after, segment_ids=ids)


@router.get("/segments/compare", response_model=SegmentComparison, summary="Two segments' reports side by side")
def compare(
    session: SessionDep,
    _: Reader,
    first: Annotated[int, Query(ge=1, le=MAX_ID)],
    second: Annotated[int, Query(ge=1, le=MAX_ID)],
):
    return service.compare(session, first, second)


@router.post("/segments/clusters", response_model=SegmentList, status_code=201, summary="Cluster buyers on behaviour")
def make_clusters(body: ClusterRequest, session: SessionDep, principal: SegmentManager):
    if body.k_min > body.k_max:
        raise InvalidInput("k_min must not exceed k_max", detail={"field": "k_min"})
    made = service.cluster(
        session, k_min=body.k_min, k_max=body.k_max, method=body.method, actor=f"api:{principal.email}"
    )
    return SegmentList(items=[Segment.of(s, members=s.cluster["size"]) for s in made])


@router.get("/segments", response_model=SegmentList, summary="Every segment")
def list_segments(session: SessionDep, _: Reader, include_archived: bool = False):
    return SegmentList(items=[Segment.of(s) for s in service.list_segments(session, include_archived=include_archived)])


@router.post("/segments", response_model=Segment, status_code=201, summary="Create a dynamic segment or a static list")
def create_segment(body: SegmentCreate, session: SessionDep, principal: SegmentManager):
    segment = service.create_segment(session, **body.model_dump(), actor=f"api:{principal.email}")
    return Segment.of(segment, members=service.count_members(session, segment.id))


@router.get("/segments/{segment_id}", response_model=Segment, summary="Read a segment with its member count")
def get_segment(segment_id: PathId, session: SessionDep, _: Reader):
    return Segment.of(service.get_segment(session, segment_id), members=service.count_members(session, segment_id))


@router.patch("/segments/{segment_id}", response_model=Segment, summary="Change a segment")
def update_segment(segment_id: PathId, body: SegmentUpdate, session: SessionDep, _: SegmentManager):
    segment = service.update_segment(session, segment_id, changes=body.model_dump(exclude_unset=True))
    return Segment.of(segment, members=service.count_members(session, segment.id))


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment")
def delete_segment(segment_id: PathId, session: SessionDep, _: SegmentManager):
    service.delete_segment(session, segment_id)
    return Response(status_code=204)


@router.get("/segments/{segment_id}/members", response_model=MemberPage, summary="The members, by customer id")
def members(
    segment_id: PathId,
    session: SessionDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.members_page(session, segment_id, limit=limit, cursor=cursor)
    return MemberPage(items=[MemberSummary.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get(
    "/segments/{segment_id}/members.csv",
    summary="Export the members as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV file"}},
)
def export_members(segment_id: PathId, session: SessionDep, _: Reader):
    segment = service.get_segment(session, segment_id)
    chunks = list(service.export_csv(session, segment_id))  # read inside the request's transaction
    filename = f"segment-{segment.id}.csv"
    return StreamingResponse(
        iter(chunks), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.post(
    "/segments/{segment_id}/members", response_model=StaticMembersResult, summary="Add members to a static list"
)
def add_members(segment_id: PathId, body: StaticMembers, session: SessionDep, _: SegmentManager):
    return service.set_static_members(session, segment_id, customer_ids=body.customer_ids, replace=body.replace)


@router.post(
    "/segments/{segment_id}/members.csv",
    response_model=StaticMembersResult,
    summary="Add members to a static list from CSV (a customer_id or email column)",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_members(
    segment_id: PathId, request: Request, session: SessionDep, _: SegmentManager, replace: bool = False
):
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is larger than {MAX_CSV_BYTES // 1024 // 1024} MB", detail={"field": "file"})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV is not UTF-8 (byte {exc.start})", detail={"field": "file"}) from None
    return service.import_static_csv(session, segment_id, text=text, replace=replace)


@router.post(
    "/segments/{segment_id}/freeze",
    response_model=Segment,
    status_code=201,
    summary="Save today's members as a static list",
)
def freeze(segment_id: PathId, body: FreezeRequest, session: SessionDep, principal: SegmentManager):
    frozen = service.freeze(session, segment_id, name=body.name, actor=f"api:{principal.email}")
    return Segment.of(frozen, members=service.count_members(session, frozen.id))


@router.get(
    "/segments/{segment_id}/report", response_model=SegmentReport, summary="Size, revenue, margin, CLV, churn risk"
)
def report(segment_id: PathId, session: SessionDep, _: Reader):
    return service.report(session, segment_id)


def _id_list(raw: str, field: str) -> list[int]:
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput(f"{field} takes comma-separated segment ids, not {raw!r}", detail={"field": field}) from None
    if not ids:
        raise InvalidInput(f"{field} is empty", detail={"field": field})
    if not all(1 <= i <= MAX_ID for i in ids):
        raise InvalidInput(f"{field} takes segment ids from 1 to {MAX_ID}", detail={"field": field})
    return ids
