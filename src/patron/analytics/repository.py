"""Queries over analysis runs, customer scores and insights, and their bulk writes.

Scores and insights are written from polars frames in bulk inside the caller's
transaction (patron.bulk: COPY on PostgreSQL, multi-row INSERTs on SQLite). No ORM
object is made per customer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl
import psycopg
from sqlalchemy import Connection, Select, delete, func, select
from sqlalchemy.exc import OperationalError
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


# How long a run waits for readers of the insights (the 360 page, segment counts) before
# it deletes the old insights row by row instead of truncating the table; see replace_insights.
TRUNCATE_LOCK_TIMEOUT = "2s"


def replace_insights(conn: Connection, insights: pl.DataFrame) -> None:
    """Replace every stored insight by one analysis's (a frame with INSIGHT_COLUMNS), in the caller's transaction.

    Customers without a row in the new frame (nothing bought in the window, merged away)
    lose theirs. PostgreSQL gets a TRUNCATE: after a DELETE, inserting ~700k rows among
    the dead ones took 2.2 s instead of 1.0 s (1M customers, 2 cores). TRUNCATE locks
    readers out of the table until the run commits, so it comes right before the insert,
    about a second before the commit, and if readers hold the table for longer than
    TRUNCATE_LOCK_TIMEOUT the rows are deleted instead. SQLite empties a table as fast by
    DELETE. Not an upsert: ON CONFLICT DO UPDATE of a million rows took three times as long.
    """
    if not (conn.dialect.name == "postgresql" and _truncated(conn, CustomerInsight.__tablename__)):
        conn.execute(delete(CustomerInsight))
    bulk.write_frame(conn, CustomerInsight.__tablename__, insights.select(INSIGHT_COLUMNS))


def _truncated(conn: Connection, table: str) -> bool:
    """TRUNCATE table unless its lock is not had within TRUNCATE_LOCK_TIMEOUT (PostgreSQL)."""
    previous = conn.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar()
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{TRUNCATE_LOCK_TIMEOUT}'")
            conn.exec_driver_sql(f"TRUNCATE {table}")
    except OperationalError as exc:
        if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            raise
        return False  # rolled back to the savepoint, lock_timeout with it
    # SET LOCAL outlives the released savepoint: the transaction's own value back for the rest.
    conn.exec_driver_sql("SELECT set_config('lock_timeout', %s, true)", (previous,))
    return True
