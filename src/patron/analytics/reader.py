"""What one analysis run reads from the operational database, through DuckDB, before it writes.

The reads come in two parts. First the customer summaries, the orders dated after
as_of, the products' cost margin when asked for, and the calibration summaries and
daily transactions of the holdout check: analyze() needs them to fit and score. The
purchase insights, the slowest query, go on meanwhile (in a thread, or in the child
process below) and are only waited for when the run writes them, so the query runs
while the models are fitted and the scores written instead of before.

SQLite is read in a child process. DuckDB's SQLite scanner links its own copy of SQLite,
and POSIX file locks belong to a process, not to a connection: when the scanner closes
the database file, the locks that Python's sqlite3 (SQLAlchemy's connections) holds on
that file in the same process are gone too. A later write then failed with "locking
protocol" or "database is locked", and another process could have written at the same
time. In a child process each side's locks are its own, and WAL lets it read while the
parent's transaction is open. PostgreSQL is read in this process. The child gets the
database as a `Source` (plain data) and imports neither SQLAlchemy nor the models: it
then starts in ~1 s instead of ~2.5 s on a 2-core machine, and the run waits for that.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from patron.analytics.engine import TABLES, Source, duckdb_connection, source_of
from patron.errors import PatronError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Progress = Callable[[str], None]
# DuckDB's working memory for one run (the copied tables and the queries): 1M customers
# and 3M orders stay within it; more spills to a temporary folder.
DUCKDB_MEMORY_LIMIT = "1GB"
# The purchase-insights query runs while the models are fitted and the scores written, so
# it gets one thread, and memory by backend (1M customers, 2 cores):
# - SQLite: 500MB. The reader process lives beside the parent, with its own Python, polars
#   and copied tables; at 900MB the two peaked at 2.0-2.2 GB together. The query spills
#   copied tables it is not reading and ends 5.7-6.2 s after the summaries, still before
#   the scores' write ends, which it has to wait for anyway.
# - PostgreSQL: 900MB, in the one process, which then peaked at ~1.8 GB. At 500MB the
#   spilling query took 7.7-9.2 s instead of 5.1-5.5 and the run waited for it at the end.
DUCKDB_INSIGHTS_THREADS = 1
DUCKDB_INSIGHTS_MEMORY_LIMIT = {"sqlite": "500MB", "postgresql": "900MB"}
_FRAMES = ("summaries", "calibration", "daily")


class ReaderFailed(PatronError):
    """The child process reading the SQLite database ended without its results."""

    status = 500


@dataclass
class RunInputs:
    """Everything a run needs from the operational data; close() it (or use `with`) when done."""

    summaries: pl.DataFrame
    orders_after: int  # orders (not cancelled) dated after as_of, left out
    cost_margin: float | None  # 1 - cost/revenue of the last year's lines with unit costs (when asked for)
    holdout_days: int | None  # the holdout check's length, or None (see holdout_note)
    holdout_note: str | None
    calibration_end: date | None
    calibration: pl.DataFrame | None  # customer_summaries up to calibration_end, buyers only
    daily: pl.DataFrame | None  # daily_transactions from the first purchase day to as_of
    timings: dict[str, float] = field(default_factory=dict)
    pending_insights: Future | None = None  # None when the insights were not asked for
    stop: Callable[[], None] = lambda: None  # ends the insights query if it still runs

    def insights(self) -> pl.DataFrame:
        """The purchase insights of customers with orders in the insights' window (waits for the query)."""
        if self.pending_insights is None:
            raise RuntimeError("read_inputs was called with insights=False")
        return self.pending_insights.result()

    def close(self) -> None:
        """Stop the insights query if nobody waited for it, and free what it holds; safe to call again."""
        self.stop()

    def __enter__(self) -> RunInputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_inputs(
    engine: Engine,
    *,
    as_of: date,
    holdout_days: int | None,
    cost_margin: bool,
    insights: bool = True,
    progress: Progress | None = None,
) -> RunInputs:
    """Read a run's inputs from the database behind `engine` (in a child process for SQLite).

    Returns once the summaries are read; with insights=True the purchase insights are
    still being read, and RunInputs.insights() waits for them.
    """
    options = {"as_of": as_of, "holdout_days": holdout_days, "cost_margin": cost_margin, "insights": insights}
    progress = progress or (lambda step: None)
    source = source_of(engine)
    if source.backend == "sqlite":
        return _read_in_child(source, **options, progress=progress)
    return read_here(source, **options, progress=progress)


def read_here(
    source: Source,
    *,
    as_of: date,
    holdout_days: int | None,
    cost_margin: bool,
    insights: bool,
    progress: Progress,
    scratch: str | None = None,
) -> RunInputs:
    """read_inputs in this process (the insights in a thread of it); DuckDB spills into a folder under scratch."""
    from patron.analytics import queries, snapshot, validation

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - clock, 3)
        clock = now

    spill = tempfile.TemporaryDirectory(prefix="patron-analyze-", dir=scratch)
    conn = duckdb_connection(source)

    def release() -> None:
        conn.close()
        spill.cleanup()

    try:
        # DuckDB would cache up to 80% of the machine's memory; past the limit it spills
        # to a private folder (not the working directory, its default).
        conn.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        conn.execute(f"SET temp_directory = '{spill.name}'")
        progress("summaries")
        # The order lines only when the cost margin needs them now; else the insights copy them.
        lines_later = insights and not cost_margin
        snapshot.materialize(conn, tuple(t for t in TABLES if not (lines_later and t == "order_lines")))
        lap("snapshot")
        # The holdout's length depends on the first purchase day; knowing it first, one pass
        # over the orders gives both the summaries and the calibration summaries.
        first_day = queries.first_purchase_day(conn, as_of=as_of)
        days, note = validation.choose_holdout(first_day, as_of, holdout_days)
        calibration_end = calibration = daily = None
        if days is None:
            summaries = queries.customer_summaries(conn, as_of=as_of, unit="days")
        else:
            calibration_end = as_of - timedelta(days=days)
            summaries, calibration = queries.customer_summaries_with_holdout(
                conn, as_of=as_of, calibration_end=calibration_end, unit="days"
            )
            calibration = calibration.filter(pl.col("first_purchase").is_not_null())
        orders_after = queries.orders_after(conn, as_of=as_of)
        margin = queries.cost_margin(conn, as_of=as_of) if cost_margin else None
        lap("summaries")
        if days is not None:
            progress("validation")
            daily = queries.daily_transactions(conn, start=first_day, end=as_of, unit="days")
            lap("validation_queries")
    except BaseException:
        release()
        raise
    inputs = RunInputs(
        summaries=summaries,
        orders_after=orders_after,
        cost_margin=margin,
        holdout_days=days,
        holdout_note=note,
        calibration_end=calibration_end,
        calibration=calibration,
        daily=daily,
        timings=timings,
    )
    if not insights:
        release()
        return inputs
    pending: Future = Future()
    # conn.interrupt() stops the statement running, not the ones after it: stop() also sets this.
    stopping = threading.Event()

    def query() -> None:
        started = time.perf_counter()
        try:
            # The other core is for the models being fitted meanwhile, then for the scores' write.
            conn.execute(f"SET threads = {DUCKDB_INSIGHTS_THREADS}")
            conn.execute(f"SET memory_limit = '{DUCKDB_INSIGHTS_MEMORY_LIMIT[source.backend]}'")
            if lines_later:
                snapshot.materialize(conn, ("order_lines",))
                timings["insights_snapshot"] = round(time.perf_counter() - started, 3)
            if stopping.is_set():
                raise InterruptedError("the run ended before the purchase insights were read")
            frame = queries.purchase_insights(conn, as_of=as_of)
        except BaseException as exc:
            pending.set_exception(exc)
        else:
            timings["insights_query"] = round(time.perf_counter() - started, 3)  # the copy included
            pending.set_result(frame)
        finally:
            release()

    worker = threading.Thread(target=query, name="patron-analytics-insights", daemon=True)
    worker.start()

    def stop() -> None:
        stopping.set()
        if not pending.done():
            conn.interrupt()
        worker.join()

    inputs.pending_insights, inputs.stop = pending, stop
    return inputs


# --------------------------------------------------------------------------- the child process


class _Child:
    """The reader process: its messages on stdout, its stderr in a file, its frames in a folder."""

    def __init__(self, request: dict[str, Any]):
        self.folder = tempfile.TemporaryDirectory(prefix="patron-analyze-read-")
        # stderr to a file: a pipe nobody reads while stdout is being read could fill and stall the child.
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "patron.analytics.reader"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        self._closed = threading.Lock()
        self.process.stdin.write(json.dumps({**request, "folder": self.folder.name}))
        self.process.stdin.close()

    def next_message(self, progress: Progress | None = None) -> tuple[str, dict[str, Any]]:
        """The next result message (kind, payload), passing progress steps on; raises on error or exit."""
        for line in self.process.stdout:
            kind, _, payload = line.rstrip("\n").partition(" ")
            if kind == "step":
                if progress is not None:
                    progress(payload)
                continue
            message = json.loads(payload)
            if kind == "error":
                raise PatronError(message["message"], detail=message.get("detail"), status=message["status"])
            return kind, message
        self.process.wait()
        self.errors.seek(0)
        tail = "\n".join(self.errors.read().strip().splitlines()[-5:])
        raise ReaderFailed(f"reading the database failed (exit status {self.process.returncode}): {tail}")

    def frame(self, name: str) -> pl.DataFrame:
        # Read into memory from a file object: a path is memory-mapped (the folder is deleted
        # by close()), and bytes read first would be held twice while polars decodes them.
        with (Path(self.folder.name) / f"{name}.arrow").open("rb") as file:
            return pl.read_ipc(file)

    def close(self) -> None:
        """End the process if it still runs and remove its files; safe to call again and from any thread."""
        with self._closed:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            self.errors.close()
            self.folder.cleanup()


def _read_in_child(
    source: Source, *, as_of: date, holdout_days: int | None, cost_margin: bool, insights: bool, progress: Progress
) -> RunInputs:
    started = time.perf_counter()
    request = {
        "source": source.as_json(),
        "as_of": as_of.isoformat(),
        "holdout_days": holdout_days,
        "cost_margin": cost_margin,
        "insights": insights,
    }
    child = _Child(request)
    try:
        _, outcome = child.next_message(progress)
        frames = {name: child.frame(name) if name in outcome["frames"] else None for name in _FRAMES}
    except BaseException:
        child.close()
        raise
    inputs = RunInputs(
        summaries=frames["summaries"],
        orders_after=outcome["orders_after"],
        cost_margin=outcome["cost_margin"],
        holdout_days=outcome["holdout_days"],
        holdout_note=outcome["holdout_note"],
        calibration_end=date.fromisoformat(outcome["calibration_end"]) if outcome["calibration_end"] else None,
        calibration=frames["calibration"],
        daily=frames["daily"],
        timings={**outcome["timings"], "reader_process": round(time.perf_counter() - started, 3)},
    )
    if not insights:
        child.close()
        return inputs
    pending: Future = Future()

    def receive() -> None:
        try:
            _, outcome = child.next_message()
            inputs.timings.update(outcome["timings"])
            pending.set_result(child.frame("insights"))
        except BaseException as exc:
            pending.set_exception(exc)
        finally:
            child.close()

    worker = threading.Thread(target=receive, name="patron-analytics-reader", daemon=True)
    worker.start()

    def stop() -> None:
        child.close()  # kills the process if the insights are still being read
        worker.join()

    inputs.pending_insights, inputs.stop = pending, stop
    return inputs


def _child_main() -> int:
    """Read the inputs described on stdin, write them as Arrow files, report on stdout."""
    request = json.loads(sys.stdin.read())

    def say(kind: str, payload: dict[str, Any]) -> None:
        print(f"{kind} {json.dumps(payload)}", flush=True)

    folder = Path(request["folder"])
    try:
        with read_here(
            Source.from_json(request["source"]),
            as_of=date.fromisoformat(request["as_of"]),
            holdout_days=request["holdout_days"],
            cost_margin=request["cost_margin"],
            insights=request["insights"],
            progress=lambda step: print(f"step {step}", flush=True),
            # In the parent's folder, which the parent removes even if it has to kill this process.
            scratch=str(folder),
        ) as inputs:
            written = []
            for name in _FRAMES:
                frame = getattr(inputs, name)
                if frame is not None:
                    frame.write_ipc(folder / f"{name}.arrow")
                    written.append(name)
                    setattr(inputs, name, None)  # the insights query may need the memory
            say(
                "inputs",
                {
                    "frames": written,
                    "orders_after": inputs.orders_after,
                    "cost_margin": inputs.cost_margin,
                    "holdout_days": inputs.holdout_days,
                    "holdout_note": inputs.holdout_note,
                    "calibration_end": inputs.calibration_end.isoformat() if inputs.calibration_end else None,
                    "timings": inputs.timings,
                },
            )
            if request["insights"]:
                inputs.insights().write_ipc(folder / "insights.arrow")
                say("insights", {"timings": inputs.timings})
    except PatronError as exc:
        detail = exc.detail if isinstance(exc.detail, dict | list | str | int | float | None) else str(exc.detail)
        say("error", {"message": exc.message, "status": exc.status, "detail": detail})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main())
