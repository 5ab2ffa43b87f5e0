"""What every loader returns, and the helpers loaders share.

A loader takes one converted batch and writes it with set-based SQL inside the caller's
transaction. It accounts for every row: each one is inserted, updated, unchanged or
rejected with a reason (counts are in source rows, so they add up to the rows read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from patron import events
from patron.imports.mapping import Mapping
from patron.imports.sources import RawBatch, Rejected


@dataclass
class Outcome:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    stubs: Counter[str] = field(default_factory=Counter)  # e.g. {"customers": 3, "products": 1}


@dataclass
class LoadContext:
    conn: Connection
    mapping: Mapping
    batch: RawBatch  # the raw batch, for loaders that reject related rows (a whole order)
    run_started_at: datetime


@dataclass(frozen=True)
class Loader:
    """How one kind is loaded: `prepare` needs no database (the import runs it in the
    reader thread, ahead of the writes); `write` runs inside the batch's transaction."""

    write: Callable[[LoadContext, Any], Outcome]
    prepare: Callable[[Mapping, RawBatch, pl.DataFrame], Any] = lambda _mapping, _batch, frame: frame


def publish(ctx: LoadContext, found: list[events.Event]) -> None:
    """Announce what a batch wrote (one event per kind, with every id) in the batch's
    transaction: subscribers (the loyalty programme) work with the batch, and a dry run,
    which rolls the batch back, leaves no event behind."""
    if not found:
        return
    # A session of its own on the batch's connection: it joins the batch's transaction and
    # only flushes; the import commits (or rolls back) the batch.
    session = Session(bind=ctx.conn)
    try:
        for event in found:
            events.publish(session, event)
        session.flush()
    finally:
        session.close()


def reject_rows(frame: pl.DataFrame, mask: pl.Series | pl.Expr, reason: str | pl.Expr, column: str | None = None):
    """Rejected entries for the rows of `frame` matching `mask`, and the remaining frame."""
    flagged = frame.with_columns((reason if isinstance(reason, pl.Expr) else pl.lit(reason)).alias("_reason")).filter(
        mask
    )
    rejected = [Rejected(row=r, reason=why, column=column) for r, why in flagged.select("_row", "_reason").iter_rows()]
    return rejected, frame.filter(~mask if isinstance(mask, pl.Series) else mask.not_())


def keep_last(frame: pl.DataFrame, key: str, label: str) -> tuple[list[Rejected], pl.DataFrame]:
    """When a key appears more than once in a batch the last row wins; the others are
    reported (never dropped silently)."""
    if frame.height == 0:
        return [], frame
    last_row = frame.group_by(key).agg(pl.col("_row").max().alias("_last"))
    joined = frame.join(last_row, on=key, how="left")
    dup = joined["_row"] != joined["_last"]
    rejected = [
        Rejected(row=r, column=key, value=k, reason=f"{label} {k} appears again on row {last}; that later row is used")
        for r, k, last in joined.filter(dup).select("_row", key, "_last").iter_rows()
    ]
    return rejected, frame.filter(~dup)
