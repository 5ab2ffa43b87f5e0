"""REST API for import runs: list them, read one, download its error report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from patron.api.deps import Importer, PathId, SessionDep
from patron.db import get_session
from patron.imports import service
from patron.imports.schemas import ImportRun, ImportRunPage

router = APIRouter(prefix="/imports", tags=["imports"])

# The error report streams after the endpoint returns, so its session must live until the
# response is sent (the default request scope), not close when the function returns.
StreamingSessionDep = Annotated[Session, Depends(get_session)]


@router.get("", response_model=ImportRunPage, summary="List import runs, newest first")
def list_runs(
    session: SessionDep,
    _: Importer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.list_runs(session, limit=limit, cursor=cursor)
    return ImportRunPage(items=[ImportRun.of(run) for run in page.items], next_cursor=page.next_cursor)


@router.get("/{run_id}", response_model=ImportRun, summary="Read an import run: status, counts, progress")
def get_run(run_id: PathId, session: SessionDep, _: Importer):
    return ImportRun.of(service.get_run(session, run_id))


@router.get(
    "/{run_id}/errors",
    summary="Download the rows an import rejected, as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "row, column, value, reason"}},
)
def error_report(run_id: PathId, session: StreamingSessionDep, _: Importer):
    service.get_run(session, run_id)  # a 404 now, before the response has started
    return error_report_response(session, run_id)


def error_report_response(session: Session, run_id: int) -> StreamingResponse:
    """The CSV error report as a download (also used by the run page)."""
    return StreamingResponse(
        service.error_report_lines(session, run_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{run_id}-errors.csv"'},
    )
