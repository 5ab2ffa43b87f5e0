"""Queries over analysis runs, customer scores and insights, and their bulk writes.

Scores and insights are written from polars frames in bulk inside the caller's
transaction (patron.bulk: COPY on PostgreSQL, multi-row INSERTs on SQLite). No ORM
object is made per customer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl
from sqlalchemy import Connection, Select, delete, func, select
from sqlalchemy.orm import Session

from patron import bulk
from patron.models import AnalysisRun, CustomerInsight, CustomerScore
from patron.models.enums import AnalysisStatus

SCORE_COLUMNS = [c.name for c in CustomerScore.__table__.columns]
INSIGHT_COLUMNS = [c.name for c in CustomerInsight.__table__.columns]
FINISHED = (AnalysisStatus.completed, AnalysisStatus.partial)


def get(session: Session, run_id: int) -> AnalysisRun | None:
    """The analysis run with this id, or None."""
    return session.get(AnalysisRun, run_id)


def list_query() -> Select:
    """Every analysis run (the caller orders and pages)."""
    return select(AnalysisRun)


def latest_completed_run(session: Session) -> AnalysisRun | None:
    """The run with the latest as_of (then the newest) among those that stored scores."""
    stmt = (
        select(AnalysisRun)
        .where(AnalysisRun.status.in_(FINISHED))
        .order_by(AnalysisRun.as_of.desc(), AnalysisRun.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def customer_score_history(session: Session, customer_id: int) -> list[tuple[CustomerScore, AnalysisRun]]:
    """A customer's scores of every finished run, oldest as_of first."""
    stmt = (
        select(CustomerScore, AnalysisRun)
        .join(AnalysisRun, AnalysisRun.id == CustomerScore.run_id)
        .where(CustomerScore.customer_id == customer_id, AnalysisRun.status.in_(FINISHED))
        .order_by(CustomerScore.as_of, CustomerScore.run_id)
    )
    return [(score, run) for score, run in session.execute(stmt)]


def scores_of_run(session: Session, run_id: int) -> Iterator[CustomerScore]:
    """Every customer's scores of one run, by customer id (streamed)."""
    stmt = select(CustomerScore).where(CustomerScore.run_id == run_id).order_by(CustomerScore.customer_id)
    yield from session.scalars(stmt.execution_options(yield_per=10_000))


def latest_scores(session: Session) -> Iterator[CustomerScore]:
    """Every customer's scores from the latest finished run (none when there is no such run)."""
    run = latest_completed_run(session)
    if run is not None:
        yield from scores_of_run(session, run.id)


def customer_insight(session: Session, customer_id: int) -> CustomerInsight | None:
    """The customer's latest purchase-history insights, or None."""
    return session.get(CustomerInsight, customer_id)


# --------------------------------------------------------------------------- bulk writes


def insert_scores(conn: Connection, scores: pl.DataFrame) -> None:
    """Insert one run's customer_scores rows (a frame with SCORE_COLUMNS) in bulk, on the session's connection."""
    bulk.write_frame(conn, "customer_scores", scores.select(SCORE_COLUMNS))


def latest_insights_as_of(session: Session) -> date | None:
    """The as_of of the stored insights (all rows share it), or None when there are none."""
    return session.scalar(select(func.max(CustomerInsight.as_of)))


def clear_insights(conn: Connection) -> None:
    """Delete every stored insight, before insert_insights writes one analysis's in the same transaction.

    Customers without a row in the new frame (nothing bought in the window, merged away)
    lose theirs. A delete and a plain bulk insert instead of an upsert: ON CONFLICT DO
    UPDATE of a million rows took three times as long on PostgreSQL.
    """
    conn.execute(delete(CustomerInsight))


def insert_insights(conn: Connection, insights: pl.DataFrame) -> None:
    """Insert one analysis's insights (INSIGHT_COLUMNS) in bulk, after clear_insights."""
    bulk.write_frame(conn, "customer_insights", insights.select(INSIGHT_COLUMNS))
