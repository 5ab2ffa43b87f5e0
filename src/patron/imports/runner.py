"""Imports started from the web UI run in a background thread of the server process.

This module keeps, per process, which runs are executing here and how far each has read
its file, so the run page can show a progress bar between the committed batches and never
offers to resume a run that is still working in this very process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from patron.db import session_scope
from patron.imports import service
from patron.models import ImportRun
from patron.models.enums import ImportStatus

log = logging.getLogger(__name__)

# A running run whose heartbeat (written with every committed batch) is older than this,
# and which no thread of this process is executing, has died: it is shown as interrupted.
STALE_AFTER = timedelta(minutes=2)


@dataclass
class Live:
    """What the executing thread last reported (updated after every batch)."""

    started: float  # time.monotonic() when the thread began
    rows_before: int = 0  # rows a resumed run had read before this thread began
    bytes_read: int = 0
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


_lock = threading.Lock()
_threads: dict[int, threading.Thread] = {}
_live: dict[int, Live] = {}


def launch(engine: Engine, run_id: int) -> threading.Thread:
    """Execute the run in a daemon thread; call only after the run's row is committed."""
    with _lock:
        current = _threads.get(run_id)
        if current is not None and current.is_alive():
            return current
        # Forget finished threads (the latest one stays until the next launch, for tests to join).
        for done in [i for i, t in _threads.items() if not t.is_alive()]:
            del _threads[done]
        live = Live(started=time.monotonic())
        thread = threading.Thread(target=_execute, args=(engine, run_id, live), name=f"import-{run_id}", daemon=True)
        _threads[run_id] = thread
        _live[run_id] = live
    thread.start()
    return thread


def _execute(engine: Engine, run_id: int, live: Live) -> None:
    def progress(run: ImportRun, bytes_read: int) -> None:
        live.bytes_read = bytes_read
        for name in ("rows_read", "inserted", "updated", "unchanged", "rejected"):
            setattr(live, name, getattr(run, name))

    try:
        with session_scope(engine) as session:
            live.rows_before = live.rows_read = service.get_run(session, run_id).rows_read
        service.execute(engine, run_id, progress=progress)
    except Exception:
        # execute() has already marked the run failed with the reason; keep the traceback for the operator.
        log.exception("import %s stopped by an internal error", run_id)
    finally:
        with _lock:
            _live.pop(run_id, None)


def is_executing_here(run_id: int) -> bool:
    """True while a thread of this process is executing the run."""
    with _lock:
        thread = _threads.get(run_id)
        return thread is not None and thread.is_alive()


def thread_for(run_id: int) -> threading.Thread | None:
    """The thread that executed (or is executing) the run in this process, if any."""
    with _lock:
        return _threads.get(run_id)


def live(run_id: int) -> Live | None:
    with _lock:
        return _live.get(run_id)


def display_status(run: ImportRun, *, now: datetime | None = None) -> str:
    """running, interrupted, completed or failed: a running run nobody is working on is interrupted."""
    if run.status != ImportStatus.running:
        return str(run.status)
    if is_executing_here(run.id):
        return "running"
    now = now or datetime.now(UTC)
    if run.heartbeat_at is not None and now - run.heartbeat_at > STALE_AFTER:
        return "interrupted"
    return "running"


@dataclass
class Progress:
    status: str
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    bytes_read: int | None  # of file_size; None when no thread of this process is reading it
    fraction: float | None  # 0..1 of the file read, when known
    rows_per_second: float | None


def progress_of(run: ImportRun) -> Progress:
    """The run's counters, with the live figures of a run executing in this process.

    Committed counters lag a dry run (its batches commit only at the end), so the thread's
    own figures win while it runs.
    """
    status = display_status(run)
    counts = {n: getattr(run, n) for n in ("rows_read", "inserted", "updated", "unchanged", "rejected")}
    bytes_read = fraction = rate = None
    current = live(run.id) if status == "running" else None
    if current is not None:
        if current.rows_read >= counts["rows_read"]:
            counts = {n: getattr(current, n) for n in counts}
        bytes_read = current.bytes_read
        if run.file_size:
            fraction = min(1.0, bytes_read / run.file_size)
        elapsed = time.monotonic() - current.started
        if elapsed > 0 and counts["rows_read"] > current.rows_before:
            rate = (counts["rows_read"] - current.rows_before) / elapsed
    elif status == "completed":
        fraction = 1.0
    if rate is None and run.finished_at and run.started_at and counts["rows_read"]:
        seconds = (run.finished_at - run.started_at).total_seconds()
        rate = counts["rows_read"] / seconds if seconds > 0 else None
    return Progress(status=status, bytes_read=bytes_read, fraction=fraction, rows_per_second=rate, **counts)
