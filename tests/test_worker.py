"""The outbox and the worker: claims, leases, retries with backoff, dead letters (simulated clock)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron import outbox
from patron.db import session_scope
from patron.models import OutboxTask
from patron.models.enums import OutboxStatus
from patron.worker import Worker

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def flaky(monkeypatch):
    """The topic "test:flaky": fails while `failures` is above zero; `calls` counts attempts."""
    state = {"failures": 0, "calls": []}

    def run(engine, task):
        state["calls"].append((task.id, task.attempt))
        if state["failures"]:
            state["failures"] -= 1
            raise ConnectionError("receiver unreachable")

    monkeypatch.setitem(outbox._tasks, "test:flaky", run)
    return state


def add(engine, n: int = 1, *, max_attempts: int = outbox.DEFAULT_MAX_ATTEMPTS, at: datetime = T0) -> list[int]:
    with session_scope(engine) as session:
        rows = [
            outbox.enqueue(session, topic="test:flaky", payload={"n": i}, available_at=at, max_attempts=max_attempts)
            for i in range(n)
        ]
        session.flush()
        return [r.id for r in rows]


def row(engine, task_id: int) -> OutboxTask:
    with session_scope(engine, write=False) as session:
        found = session.get(OutboxTask, task_id)
        session.expunge(found)
        return found


def test_backoff_doubles_with_a_quarter_of_jitter_and_a_cap():
    rng = random.Random(1)
    for attempt in range(1, 15):
        base = min(outbox.BACKOFF_BASE * 2 ** (attempt - 1), outbox.BACKOFF_CAP)
        waits = [outbox.backoff(attempt, rng=rng) for _ in range(200)]
        assert all(base <= w <= base * 1.25 for w in waits)
        assert max(waits) - min(waits) > base * 0.2  # really spread, not one fixed delay
    assert outbox.backoff(20, rng=rng) <= outbox.BACKOFF_CAP * 1.25


def test_a_failing_task_is_retried_on_the_backoff_schedule_then_done(fresh_engine, flaky):
    clock = Clock()
    worker = Worker(fresh_engine, clock=clock, rng=random.Random(7), run_jobs=False)
    [task_id] = add(fresh_engine)
    flaky["failures"] = 2

    assert worker.run_once() == 1
    first = row(fresh_engine, task_id)
    assert (first.status, first.attempts, first.claimed_by) == (OutboxStatus.pending, 1, None)
    assert "receiver unreachable" in first.last_error
    wait = first.available_at - T0
    assert timedelta(seconds=30) <= wait <= timedelta(seconds=37.5)

    clock.now = first.available_at - timedelta(seconds=1)
    assert worker.run_once() == 0  # not due yet
    clock.now = first.available_at
    assert worker.run_once() == 1
    second = row(fresh_engine, task_id)
    assert timedelta(seconds=60) <= second.available_at - clock.now <= timedelta(seconds=75)

    clock.now = second.available_at
    assert worker.run_once() == 1
    done = row(fresh_engine, task_id)
    assert (done.status, done.attempts, done.finished_at) == (OutboxStatus.done, 3, clock.now)
    assert flaky["calls"] == [(task_id, 1), (task_id, 2), (task_id, 3)]


def test_after_the_last_attempt_the_task_is_dead_lettered_and_can_be_sent_again(fresh_engine, flaky):
    clock = Clock()
    worker = Worker(fresh_engine, clock=clock, rng=random.Random(3), run_jobs=False)
    [task_id] = add(fresh_engine, max_attempts=3)
    flaky["failures"] = 10
    for _ in range(3):
        assert worker.run_once() == 1
        clock.advance(hours=7)  # past any backoff
    dead = row(fresh_engine, task_id)
    assert (dead.status, dead.attempts) == (OutboxStatus.dead, 3)
    assert worker.run_once() == 0  # dead letters are not retried by themselves
    with session_scope(fresh_engine) as session:
        assert outbox.counts(session)["dead"] == 1
        assert [t.id for t in outbox.dead_letters(session)] == [task_id]
        outbox.retry_dead(session, task_id=task_id, now=clock.now)
    flaky["failures"] = 0
    assert worker.run_once() == 1
    assert row(fresh_engine, task_id).status == OutboxStatus.done


def test_a_killed_workers_claim_is_taken_over_when_its_lease_runs_out(fresh_engine, flaky):
    clock = Clock()
    ids = add(fresh_engine, 3)
    with session_scope(fresh_engine) as session:  # a worker claims, then dies without a word
        claimed = outbox.claim(session, worker="dead-worker", limit=10, now=T0, lease=timedelta(seconds=60))
    assert [t.id for t in claimed] == ids

    other = Worker(fresh_engine, name="other", clock=clock, run_jobs=False)
    clock.advance(seconds=59)
    assert other.run_once() == 0  # still leased
    clock.advance(seconds=2)
    assert other.run_once() == 3
    assert [row(fresh_engine, i).attempts for i in ids] == [2, 2, 2]  # the lost claim counted
    with session_scope(fresh_engine) as session:  # the dead worker's late word changes nothing
        assert not outbox.finish(session, worker="dead-worker", task_id=ids[0], now=clock.now)


def test_a_stopping_worker_gives_back_what_it_has_not_started(fresh_engine, monkeypatch):
    clock = Clock()
    ids = add(fresh_engine, 5)
    worker = Worker(fresh_engine, clock=clock, run_jobs=False, batch=5)
    done = []

    def first_then_stop(engine, task):
        done.append(task.id)
        worker.stopped.set()  # SIGTERM arrives while the first task runs

    monkeypatch.setitem(outbox._tasks, "test:flaky", first_then_stop)
    assert worker.run_once() == 5
    assert done == ids[:1]
    rest = [row(fresh_engine, i) for i in ids[1:]]
    assert all((r.status, r.claimed_by, r.attempts) == (OutboxStatus.pending, None, 0) for r in rest)


def test_a_topic_nobody_handles_is_retried_not_lost(fresh_engine):
    clock = Clock()
    with session_scope(fresh_engine) as session:
        task = outbox.enqueue(session, topic="nobody:home", payload={}, available_at=T0)
        session.flush()
        task_id = task.id
    Worker(fresh_engine, clock=clock, run_jobs=False).run_once()
    stored = row(fresh_engine, task_id)
    assert stored.status == OutboxStatus.pending and "no function for outbox topic 'nobody:home'" in stored.last_error


def test_two_workers_claim_disjoint_rows_on_postgresql(postgres_engine, flaky):
    # PostgreSQL alone: SKIP LOCKED lets a second claim pass rows another transaction holds.
    ids = set(add(postgres_engine, 10))
    with Session(postgres_engine) as a, Session(postgres_engine) as b:
        first = outbox.claim(a, worker="a", limit=4, now=T0, lease=timedelta(seconds=60))  # not committed yet
        got = threading.Event()
        second: list = []

        def claim_b():
            second.extend(outbox.claim(b, worker="b", limit=10, now=T0, lease=timedelta(seconds=60)))
            got.set()

        thread = threading.Thread(target=claim_b)
        thread.start()
        assert got.wait(timeout=30), "the second claim waited for the first instead of skipping its rows"
        thread.join()
        a.commit()
        b.commit()
    assert len(first) == 4 and len(second) == 6
    assert {t.id for t in first} | {t.id for t in second} == ids
    assert not {t.id for t in first} & {t.id for t in second}


def test_threads_of_one_worker_share_the_rows(fresh_engine, monkeypatch):
    ids = add(fresh_engine, 60)
    seen: list[int] = []
    lock = threading.Lock()

    def record(engine, task):
        with lock:
            seen.append(task.id)

    monkeypatch.setitem(outbox._tasks, "test:flaky", record)
    worker = Worker(fresh_engine, concurrency=3, batch=5, poll_seconds=0.05, run_jobs=False).start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while len(seen) < len(ids) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        worker.stop(wait=True)
    assert sorted(seen) == ids  # each exactly once
    with session_scope(fresh_engine, write=False) as session:
        statuses = set(session.execute(select(OutboxTask.status)).scalars())
    assert statuses == {OutboxStatus.done}


def test_the_embedded_worker_runs_with_sqlite_by_default(fresh_engine, flaky, monkeypatch):
    from patron.settings import get_settings
    from patron.worker import embedded

    url = fresh_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    monkeypatch.delenv("PATRON_EMBEDDED_WORKER", raising=False)
    get_settings.cache_clear()
    try:
        [task_id] = add(fresh_engine)
        with embedded(fresh_engine) as worker:
            if fresh_engine.dialect.name == "postgresql":
                assert worker is None  # several web servers: run `patron worker` instead
                return
            assert worker is not None
            deadline = datetime.now(UTC) + timedelta(seconds=60)
            while row(fresh_engine, task_id).status != OutboxStatus.done and datetime.now(UTC) < deadline:
                threading.Event().wait(0.05)
        assert row(fresh_engine, task_id).status == OutboxStatus.done
        assert not any(t.is_alive() for t in worker._threads)  # stopped with the block
        monkeypatch.setenv("PATRON_EMBEDDED_WORKER", "false")
        get_settings.cache_clear()
        with embedded(fresh_engine) as off:
            assert off is None
    finally:
        get_settings.cache_clear()
