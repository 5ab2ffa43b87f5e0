"""`patron worker`: does the outbox's tasks and runs the scheduled jobs.

Any number of workers, on any number of machines, can share one database: each claims
its own rows (see patron.outbox) and its own due jobs (see patron.jobs). `patron serve`
can run one embedded (PATRON_EMBEDDED_WORKER) so the single-machine default needs one
command.

A stop (SIGTERM, Ctrl-C, stop()) lets each thread finish the task it is doing, gives back
the tasks it had claimed but not started, and returns.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from patron import events, jobs, outbox
from patron.db import session_scope
from patron.models.base import utcnow
from patron.models.enums import OutboxStatus

log = logging.getLogger(__name__)


class Worker:
    """Claims outbox rows in batches on `concurrency` threads; one more thread runs the jobs."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str | None = None,
        concurrency: int = 1,
        batch: int = 20,
        lease: timedelta = timedelta(seconds=60),
        poll_seconds: float = 1.0,
        run_jobs: bool = True,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.run_jobs = run_jobs
        self.clock = clock
        self.rng = rng or random.Random()
        self.stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        events.load_subscribers()  # registers the after-commit subscribers' tasks

    # --- one pass, for tests and for each thread's loop -----------------------------------

    def run_once(self, *, thread: int = 0) -> int:
        """Claim one batch and do it; how many tasks were claimed."""
        me = f"{self.name}/{thread}"
        with session_scope(self.engine) as session:
            tasks = outbox.claim(session, worker=me, limit=self.batch, now=self.clock(), lease=self.lease)
        started = time.monotonic()
        for i, task in enumerate(tasks):
            if self.stopped.is_set():
                self._release(me, [t.id for t in tasks[i:]])
                break
            if time.monotonic() - started > self.lease.total_seconds() / 2:
                # A slow batch: keep the rest of it ours rather than let another worker redo it.
                with session_scope(self.engine) as session:
                    outbox.renew(session, worker=me, ids=[t.id for t in tasks[i:]], until=self.clock() + self.lease)
                started = time.monotonic()
            self._do(me, task)
        return len(tasks)

    def _do(self, me: str, task: outbox.Task) -> None:
        fn = outbox.function_for(task.topic)
        try:
            if fn is None:
                raise LookupError(f"no function for outbox topic {task.topic!r}")
            fn(self.engine, task)
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()
            with session_scope(self.engine) as session:
                status = outbox.fail(session, worker=me, task=task, error=error, now=self.clock(), rng=self.rng)
            level = logging.ERROR if status == OutboxStatus.dead else logging.WARNING
            log.log(level, "outbox task %s (%s) attempt %s failed: %s", task.id, task.topic, task.attempt, error)
            return
        with session_scope(self.engine) as session:
            if not outbox.finish(session, worker=me, task_id=task.id, now=self.clock()):
                log.warning("outbox task %s was taken over by another worker after its lease ran out", task.id)

    def _release(self, me: str, ids: list[int]) -> None:
        with session_scope(self.engine) as session:
            outbox.release(session, worker=me, ids=ids)

    def drain(self, *, max_passes: int = 10_000) -> int:
        """Do every task that is due now (and those they enqueue); how many were done."""
        done = 0
        for _ in range(max_passes):
            n = self.run_once()
            if n == 0:
                return done
            done += n
        return done

    # --- running until stopped ------------------------------------------------------------

    def start(self) -> Worker:
        """Start the threads and return (`patron serve`'s embedded worker)."""
        for i in range(self.concurrency):
            self._threads.append(threading.Thread(target=self._loop, args=(i,), name=f"worker-{i}", daemon=True))
        if self.run_jobs:
            self._threads.append(threading.Thread(target=self._jobs_loop, name="worker-jobs", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def run(self) -> None:
        """Start the threads and wait for them to end (after stop())."""
        self.start()
        while any(t.is_alive() for t in self._threads):
            for t in self._threads:
                t.join(timeout=0.5)

    def stop(self, *, wait: bool = False, timeout: float = 60) -> None:
        self.stopped.set()
        if wait:
            for t in self._threads:
                t.join(timeout=timeout)

    def _loop(self, thread: int) -> None:
        while not self.stopped.is_set():
            try:
                claimed = self.run_once(thread=thread)
            except Exception:  # the database went away for a moment: try again after the pause
                log.exception("worker thread %s: claiming failed", thread)
                claimed = 0
            if not claimed:
                self.stopped.wait(self.poll_seconds)

    def _jobs_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                jobs.run_due(self.engine, worker=self.name, now=self.clock())
            except Exception:
                log.exception("scheduled jobs failed")
            self.stopped.wait(self.poll_seconds * 5)


@contextmanager
def embedded(engine: Engine) -> Iterator[Worker | None]:
    """A worker in this process while the block runs, when PATRON_EMBEDDED_WORKER says so
    (by default with SQLite): `patron serve` and `patron demo` then need nothing else."""
    from patron.settings import get_settings

    if not get_settings().worker_embedded():
        yield None
        return
    worker = Worker(engine).start()
    log.info("embedded worker %s started", worker.name)
    try:
        yield worker
    finally:
        worker.stop(wait=True)
