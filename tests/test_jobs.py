"""Scheduled jobs: once per period however many workers, state stored; `patron jobs` and `patron outbox`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from patron import jobs, migrate, outbox, schedules
from patron.cli import app
from patron.db import get_engine, make_engine, session_scope
from patron.errors import InvalidInput
from patron.models import ScheduledJob
from patron.settings import Settings, get_settings

runner = CliRunner()
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def counting_job(name="count", schedule="0 3 * * *", *, fail=False, run_at_start=True):
    ran: list[int] = []
    lock = threading.Lock()

    def run(engine):
        with lock:
            ran.append(1)
        if fail:
            raise RuntimeError("the analysis found no orders")
        return f"ran {len(ran)}"

    return jobs.Job(name, "a test job", schedule, run, run_at_start=run_at_start), ran


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 3 * * *", datetime(2026, 6, 1, 2, 59, tzinfo=UTC), datetime(2026, 6, 1, 3, 0, tzinfo=UTC)),
        ("0 3 * * *", datetime(2026, 6, 1, 3, 0, tzinfo=UTC), datetime(2026, 6, 2, 3, 0, tzinfo=UTC)),
        ("30 2 * * 1", datetime(2026, 12, 7, 6, 0, tzinfo=UTC), datetime(2026, 12, 14, 2, 30, tzinfo=UTC)),
        ("every 7 days", T0, T0 + timedelta(days=7)),
        ("every 6h", T0, T0 + timedelta(hours=6)),
        ("every 15 minutes", T0, T0 + timedelta(minutes=15)),
    ],
)
def test_next_run(schedule, after, expected):
    assert schedules.next_run(schedule, after) == expected


@pytest.mark.parametrize("bad", ["", "daily", "61 * * * *", "every 0 days", "every 3 weeks", "* * *"])
def test_a_wrong_schedule_names_the_setting(bad):
    with pytest.raises(InvalidInput, match="PATRON_X must be a cron line"):
        schedules.check_schedule(bad, field="PATRON_X")
    with pytest.raises(ValueError, match="PATRON_LOYALTY_SCHEDULE"):
        Settings(loyalty_schedule=bad)


def test_a_job_runs_once_per_period_across_workers_and_keeps_its_state(fresh_engine):
    job, ran = counting_job()
    assert jobs.run_due(fresh_engine, worker="w1", now=T0, jobs=[job]) == ["count"]  # new: runs at start
    assert jobs.run_due(fresh_engine, worker="w2", now=T0 + timedelta(minutes=1), jobs=[job]) == []
    with session_scope(fresh_engine, write=False) as session:
        row = session.get(ScheduledJob, "count")
        assert (row.last_started_at, row.next_run_at) == (T0, datetime(2026, 6, 2, 3, 0, tzinfo=UTC))
        assert (row.last_outcome, row.last_message, row.running_by) == ("ok", "ran 1", None)
        assert row.last_duration_ms is not None and row.last_finished_at is not None
    assert jobs.run_due(fresh_engine, worker="w2", now=datetime(2026, 6, 2, 3, 0, tzinfo=UTC), jobs=[job]) == ["count"]
    assert len(ran) == 2


def test_a_job_new_to_the_database_waits_for_its_time_unless_it_runs_at_start(fresh_engine):
    job, ran = counting_job(run_at_start=False)
    assert jobs.run_due(fresh_engine, worker="w1", now=T0, jobs=[job]) == []
    assert jobs.run_due(fresh_engine, worker="w1", now=datetime(2026, 6, 2, 3, 0, tzinfo=UTC), jobs=[job]) == ["count"]
    assert ran == [1]


def test_many_workers_at_the_same_moment_run_it_once(fresh_engine):
    job, ran = counting_job()
    url = fresh_engine.url.render_as_string(hide_password=False)
    engine = make_engine(url, poolclass=NullPool)  # each thread its own connection
    with session_scope(engine) as session:
        jobs.sync_rows(session, [job], now=T0)
    start = threading.Barrier(6)

    def worker(i):
        start.wait()
        jobs.run_due(engine, worker=f"w{i}", now=T0, jobs=[job])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    engine.dispose()
    assert ran == [1]


def test_a_failed_run_is_stored_with_its_reason_and_the_next_run_planned(fresh_engine):
    job, _ = counting_job(fail=True)
    jobs.run_due(fresh_engine, worker="w1", now=T0, jobs=[job])
    with session_scope(fresh_engine, write=False) as session:
        row = session.get(ScheduledJob, "count")
        assert row.last_outcome == "failed" and "the analysis found no orders" in row.last_message
        assert row.next_run_at == datetime(2026, 6, 2, 3, 0, tzinfo=UTC) and row.running_by is None


def test_a_worker_that_died_mid_job_gives_it_up_after_the_lease(fresh_engine):
    job, ran = counting_job()
    with session_scope(fresh_engine) as session:
        jobs.sync_rows(session, [job], now=T0)
        assert jobs._claim(session, "count", worker="dead", now=T0, due_only=True)
    assert jobs.run_due(fresh_engine, worker="w2", now=T0 + timedelta(minutes=30), jobs=[job]) == []
    assert jobs.run_due(fresh_engine, worker="w2", now=T0 + jobs.JOB_LEASE + timedelta(seconds=1), jobs=[job]) == [
        "count"
    ]
    assert ran == [1]


def test_the_configured_jobs_follow_the_settings():
    names = [j.name for j in jobs.configured_jobs(Settings())]
    assert names == ["loyalty-daily", "segment-snapshots", "purge", "analyze"]
    off = Settings(loyalty_jobs=False, segment_snapshot_days=0, analyze_schedule="")
    assert [j.name for j in jobs.configured_jobs(off)] == ["purge"]
    weekly = {j.name: j.schedule for j in jobs.configured_jobs(Settings(segment_snapshot_days=3))}
    assert weekly["segment-snapshots"] == "every 3 days"


# --- the commands ---------------------------------------------------------------------------


@pytest.fixture
def db_url(database_factory, monkeypatch):
    url = database_factory.new_url()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_jobs_list_and_run(db_url):
    r = runner.invoke(app, ["jobs", "list"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    for name in ("loyalty-daily", "segment-snapshots", "purge", "analyze"):
        assert name in out
    assert "never run" in out

    r = runner.invoke(app, ["jobs", "run", "purge"])
    assert r.exit_code == 0, r.output
    assert "0 idempotency keys and 0 finished outbox tasks deleted" in " ".join(r.output.split())
    out = " ".join(runner.invoke(app, ["jobs", "list"]).output.split())
    assert "│ ok │" in out and "0 idempotency keys" in out

    r = runner.invoke(app, ["jobs", "run", "nightly"])
    assert r.exit_code == 1
    assert "no job 'nightly'; the configured jobs are loyalty-daily, segment-snapshots, purge, analyze" in " ".join(
        r.output.split()
    )
    assert "Traceback" not in r.output


def test_outbox_status_and_retry(db_url):
    with session_scope(get_engine()) as session:
        task = outbox.enqueue(session, topic="webhooks.deliver", payload={}, event_id="evt_1", max_attempts=1)
        session.flush()
        task_id = task.id
    with session_scope(get_engine()) as session:
        claimed = outbox.claim(session, worker="w", limit=1, now=datetime.now(UTC), lease=timedelta(seconds=5))
        outbox.fail(session, worker="w", task=claimed[0], error="HTTP 500 from the receiver", now=datetime.now(UTC))
    out = " ".join(runner.invoke(app, ["outbox"]).output.split())
    assert "0 pending, 0 retrying, 0 done, 1 dead" in out
    assert "HTTP 500 from the receiver" in out and "evt_1" in out
    r = runner.invoke(app, ["outbox", "retry", str(task_id)])
    assert r.exit_code == 0 and f"Task {task_id} is queued again." in r.output
    assert "0 pending, 1 retrying, 0 done, 0 dead" in runner.invoke(app, ["outbox"]).output  # its error is kept
    r = runner.invoke(app, ["outbox", "retry", str(task_id)])
    assert r.exit_code == 1 and f"no dead-lettered task {task_id}" in r.output
