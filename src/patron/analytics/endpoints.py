"""REST API for analyses: run one, list them, read one with its validation plot; a customer's scores."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from patron.analytics import service
from patron.analytics.schemas import (
    AnalysisRun,
    AnalysisRunCreate,
    AnalysisRunPage,
    AnalysisRunSummary,
    CustomerScore,
    CustomerScoreHistory,
)
from patron.api.deps import Analyst, PathId, Reader, SessionDep

router = APIRouter(tags=["analytics"])


@router.post(
    "/analytics/runs",
    response_model=AnalysisRun,
    status_code=201,
    summary="Run an analysis now: score every customer and store the run",
)
def create_run(body: AnalysisRunCreate, session: SessionDep, principal: Analyst):
    # Synchronous: about 20 s for a million customers on two cores; the response is the stored run.
    run = service.analyze(session, **body.model_dump(), actor=f"api:{principal.email}")
    return AnalysisRun.of(run)


@router.get("/analytics/runs", response_model=AnalysisRunPage, summary="List analysis runs, newest first")
def list_runs(
    session: SessionDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.list_runs(session, limit=limit, cursor=cursor)
    return AnalysisRunPage(items=[AnalysisRunSummary.of(run) for run in page.items], next_cursor=page.next_cursor)


@router.get("/analytics/runs/{run_id}", response_model=AnalysisRun, summary="Read a run: fits, validation, timings")
def get_run(run_id: PathId, session: SessionDep, _: Reader):
    return AnalysisRun.of(service.get_run(session, run_id))


@router.get(
    "/analytics/runs/{run_id}/tracking.png",
    summary="The run's holdout validation plot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "PNG image"}},
)
def tracking_png(run_id: PathId, session: SessionDep, _: Reader):
    return Response(service.tracking_png(session, run_id), media_type="image/png")


@router.get(
    "/customers/{customer_id}/scores",
    response_model=CustomerScoreHistory,
    summary="A customer's scores across analysis runs, oldest first",
)
def customer_scores(customer_id: PathId, session: SessionDep, _: Reader):
    live_id, history = service.customer_scores(session, customer_id)
    return CustomerScoreHistory(customer_id=live_id, items=[CustomerScore.of(score, run) for score, run in history])
