"""What one analysis run reads from the operational database, through DuckDB, before it writes.

All reads happen first: customer summaries, the orders dated after as_of, the products'
cost margin when asked for, the calibration summaries and daily transactions of the
holdout check, and the purchase insights. Then analyze() fits, scores and writes.

SQLite is read in a child process. DuckDB's SQLite scanner links its own copy of SQLite,
and POSIX file locks belong to a process, not to a connection: when the scanner closes
the database file, the locks that Python's sqlite3 (SQLAlchemy's connections) holds on
that file in the same process are gone too. A later write then failed with "locking
protocol" or "database is locked", and another process could have written at the same
time. In a child process each side's locks are its own, and WAL lets it read while the
parent's transaction is open. PostgreSQL is read in this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from patron.errors import PatronError

Progress = Callable[[str], None]
# DuckDB's working memory for one run (the copied tables and the queries): 1M customers
# and 3M orders stay within it; more spills to a temporary folder.
DUCKDB_MEMORY_LIMIT = "1GB"
_FRAMES = ("summaries", "calibration", "daily", "insights")


class ReaderFailed(PatronError):
    """The child process reading the SQLite database ended without its results."""

    status = 500


@dataclass
class RunInputs:
    """Everything a run needs from the operational data."""

    summaries: pl.DataFrame
    insights: pl.DataFrame  # customers with orders in the insights' window only
    orders_after: int  # orders (not cancelled) dated after as_of, left out
    cost_margin: float | None  # 1 - cost/revenue of the last year's lines with unit costs (when asked for)
    holdout_days: int | None  # the holdout check's length, or None (see holdout_note)
    holdout_note: str | None
    calibration_end: date | None
    calibration: pl.DataFrame | None  # customer_summaries up to calibration_end, buyers only
    daily: pl.DataFrame | None  # daily_transactions from the first purchase day to as_of
    timings: dict[str, float] = field(default_factory=dict)


def read_inputs(
    engine: Engine,
    *,
    as_of: date,
    holdout_days: int | None,
    cost_margin: bool,
    progress: Progress | None = None,
) -> RunInputs:
    """Read a run's inputs from the database behind `engine` (in a child process for SQLite)."""
    options = {"as_of": as_of, "holdout_days": holdout_days, "cost_margin": cost_margin}
    progress = progress or (lambda step: None)
    if engine.dialect.name == "sqlite":
        return _read_in_child(engine, **options, progress=progress)
    return read_here(engine, **options, progress=progress)


def read_here(
    engine: Engine, *, as_of: date, holdout_days: int | None, cost_margin: bool, progress: Progress
) -> RunInputs:
    """read_inputs in this process."""
    from patron.analytics import repository, snapshot, validation
    from patron.analytics.engine import duckdb_connection
    from patron.analytics.queries import customer_summaries, daily_transactions, purchase_insights

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - clock, 3)
        clock = now

    with tempfile.TemporaryDirectory(prefix="patron-analyze-") as spill:
        conn = duckdb_connection(engine)
        try:
            # DuckDB would cache up to 80% of the machine's memory; past the limit it spills
            # to a private folder (not the working directory, its default).
            conn.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
            conn.execute(f"SET temp_directory = '{spill}'")
            progress("summaries")
            snapshot.materialize(conn, extra_sql=repository.DUCKDB_QUERIES)
            lap("snapshot")
            summaries = customer_summaries(conn, as_of=as_of, unit="days")
            orders_after = repository.orders_after(conn, as_of=as_of)
            margin = repository.cost_margin(conn, as_of=as_of) if cost_margin else None
            lap("summaries")
            first_day = summaries["first_purchase"].min()
            days, note = validation.choose_holdout(first_day, as_of, holdout_days)
            calibration_end = calibration = daily = None
            if days is not None:
                progress("validation")
                calibration_end = as_of - timedelta(days=days)
                calibration = customer_summaries(
                    conn, as_of=as_of, calibration_end=calibration_end, unit="days"
                ).filter(pl.col("first_purchase").is_not_null())
                daily = daily_transactions(conn, start=first_day, end=as_of, unit="days")
                lap("validation_queries")
            progress("insights")
            # Only customers who bought in the insights' window have something to say.
            insights = purchase_insights(conn, as_of=as_of).filter(pl.col("n_orders") > 0)
            lap("insights_query")
        finally:
            conn.close()
    return RunInputs(
        summaries=summaries,
        insights=insights,
        orders_after=orders_after,
        cost_margin=margin,
        holdout_days=days,
        holdout_note=note,
        calibration_end=calibration_end,
        calibration=calibration,
        daily=daily,
        timings=timings,
    )


# --------------------------------------------------------------------------- the child process


def _read_in_child(
    engine: Engine, *, as_of: date, holdout_days: int | None, cost_margin: bool, progress: Progress
) -> RunInputs:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="patron-analyze-read-") as folder:
        request = {
            "url": engine.url.render_as_string(hide_password=False),
            "as_of": as_of.isoformat(),
            "holdout_days": holdout_days,
            "cost_margin": cost_margin,
            "folder": folder,
        }
        # stderr to a file: a pipe nobody reads while stdout is being read could fill and stall the child.
        with tempfile.TemporaryFile(mode="w+") as errors:
            child = subprocess.Popen(
                [sys.executable, "-m", "patron.analytics.reader"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            child.stdin.write(json.dumps(request))
            child.stdin.close()
            outcome: dict[str, Any] | None = None
            for line in child.stdout:
                kind, _, payload = line.rstrip("\n").partition(" ")
                if kind == "step":
                    progress(payload)
                elif kind in ("done", "error"):
                    outcome = {"kind": kind, **json.loads(payload)}
            child.wait()
            errors.seek(0)
            stderr = errors.read()
        if outcome is None or outcome["kind"] != "done":
            if outcome is not None:
                raise PatronError(outcome["message"], detail=outcome.get("detail"), status=outcome["status"])
            tail = "\n".join(stderr.strip().splitlines()[-5:])
            raise ReaderFailed(f"reading the database failed (exit status {child.returncode}): {tail}")
        frames = {
            # Read into memory (not memory-mapped): the folder is deleted when this block ends.
            name: pl.read_ipc((Path(folder) / f"{name}.arrow").read_bytes()) if name in outcome["frames"] else None
            for name in _FRAMES
        }
    timings = {**outcome["timings"], "reader_process": round(time.perf_counter() - started, 3)}
    return RunInputs(
        summaries=frames["summaries"],
        insights=frames["insights"],
        orders_after=outcome["orders_after"],
        cost_margin=outcome["cost_margin"],
        holdout_days=outcome["holdout_days"],
        holdout_note=outcome["holdout_note"],
        calibration_end=date.fromisoformat(outcome["calibration_end"]) if outcome["calibration_end"] else None,
        calibration=frames["calibration"],
        daily=frames["daily"],
        timings=timings,
    )


def _child_main() -> int:
    """Read the inputs described on stdin, write them as Arrow files, report on stdout."""
    from patron.db import make_engine

    request = json.loads(sys.stdin.read())

    def say(kind: str, payload: str) -> None:
        print(f"{kind} {payload}", flush=True)

    engine = make_engine(request["url"])  # no connection is opened: DuckDB reads the file itself
    try:
        inputs = read_here(
            engine,
            as_of=date.fromisoformat(request["as_of"]),
            holdout_days=request["holdout_days"],
            cost_margin=request["cost_margin"],
            progress=lambda step: say("step", step),
        )
    except PatronError as exc:
        detail = exc.detail if isinstance(exc.detail, dict | list | str | int | float | None) else str(exc.detail)
        say("error", json.dumps({"message": exc.message, "status": exc.status, "detail": detail}))
        return 1
    folder = Path(request["folder"])
    written = []
    for name in _FRAMES:
        frame = getattr(inputs, name)
        if frame is not None:
            frame.write_ipc(folder / f"{name}.arrow")
            written.append(name)
    say(
        "done",
        json.dumps(
            {
                "frames": written,
                "orders_after": inputs.orders_after,
                "cost_margin": inputs.cost_margin,
                "holdout_days": inputs.holdout_days,
                "holdout_note": inputs.holdout_note,
                "calibration_end": inputs.calibration_end.isoformat() if inputs.calibration_end else None,
                "timings": inputs.timings,
            }
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main())
