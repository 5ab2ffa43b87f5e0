"""The loyalty daily jobs as the worker runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from patron import jobs, schedules
from patron.db import session_scope
from patron.loyalty import service
from patron.loyalty.tasks import _ADVISORY_KEY, run_daily_jobs
from tests.factories import create_customer


def _member_with_points(engine, *, enrolled: datetime) -> int:
    """A member enrolled at `enrolled` with the seeded programme's 100 sign-up points (24-month expiry)."""
    with session_scope(engine) as session:
        customer = create_customer(session)
        return service.enrol(session, customer_id=customer.id, by="test", now=enrolled).id


def _balance(engine, member_id: int) -> int:
    with session_scope(engine) as session:
        return service.summary(session, member_id=member_id).balance


def test_daily_jobs_expire_lapsed_points_once(fresh_engine):
    now = datetime.now(UTC)
    lapsed = _member_with_points(fresh_engine, enrolled=now - timedelta(days=800))
    current = _member_with_points(fresh_engine, enrolled=now - timedelta(days=30))

    result = run_daily_jobs(fresh_engine, now=now)
    assert (result.expired.members, result.expired.points) == (1, 100)
    # The older member was due a tier review (a year after enrolling): no points from orders, so Member stays.
    assert (result.tiers.reviewed, result.tiers.kept, result.tiers.downgraded) == (1, 1, 0)
    assert _balance(fresh_engine, lapsed) == 0
    assert _balance(fresh_engine, current) == 100

    again = run_daily_jobs(fresh_engine, now=now + timedelta(minutes=5))  # a second server, the same day
    assert (again.expired.members, again.expired.points, again.tiers.reviewed) == (0, 0, 0)
    with session_scope(fresh_engine) as session:
        assert service.check_books(session) == []


def test_daily_jobs_skip_while_another_server_holds_the_lock(postgres_engine):
    # PostgreSQL only: one SQLite file has one writer at a time, and no advisory locks.
    fresh_engine = postgres_engine
    member = _member_with_points(fresh_engine, enrolled=datetime.now(UTC) - timedelta(days=800))
    with fresh_engine.connect() as other, other.begin():
        assert other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY}).scalar()
        assert run_daily_jobs(fresh_engine) is None
        assert _balance(fresh_engine, member) == 100
    result = run_daily_jobs(fresh_engine)  # the lock ended with the other transaction
    assert result.expired.points == 100
    assert _balance(fresh_engine, member) == 0


def test_the_worker_runs_them_at_its_first_start_and_then_daily(fresh_engine):
    member = _member_with_points(fresh_engine, enrolled=datetime.now(UTC) - timedelta(days=800))
    daily = [j for j in jobs.configured_jobs() if j.name == "loyalty-daily"]
    now = datetime.now(UTC)
    assert jobs.run_due(fresh_engine, worker="w1", now=now, jobs=daily) == ["loyalty-daily"]
    assert _balance(fresh_engine, member) == 0
    # Stored for every worker: a second one (or the first, later the same day) finds nothing due.
    assert jobs.run_due(fresh_engine, worker="w2", now=now + timedelta(minutes=5), jobs=daily) == []
    next_day = schedules.next_run(daily[0].schedule, now)
    assert jobs.run_due(fresh_engine, worker="w2", now=next_day, jobs=daily) == ["loyalty-daily"]
