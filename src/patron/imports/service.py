"""File imports: start a run, execute it batch by batch, resume it, report its errors.

Each batch is written, with its rejected rows and the run's counters, in one transaction:
after a crash (even `kill -9`) the run's `records_done` says exactly how far the data got,
and `resume` carries on from there.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from queue import Full, Queue
from typing import TextIO, TypeVar

import polars as pl
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from patron.csvsafe import SafeWriter
from patron.db import session_scope
from patron.errors import Conflict, InvalidInput, NotFound
from patron.imports import load_customers, load_interactions, load_orders, load_products, repository
from patron.imports.convert import convert
from patron.imports.loaders import LoadContext, Loader
from patron.imports.mapping import InvalidMapping, Mapping, automatic, mapping_json, preset
from patron.imports.sources import RawBatch, Reader, ReadOptions, Rejected, SourceError
from patron.models import ImportRowError, ImportRun
from patron.models.enums import ImportKind, ImportStatus
from patron.pagination import Page, paginate
from patron.settings import get_settings

BATCH_SIZE = 50_000
T = TypeVar("T")
PREVIEW_ROWS = 20
ERROR_COLUMNS = ["row", "column", "value", "reason"]

Progress = Callable[[ImportRun, int], None]  # the run's counters, and bytes of the file read

# How each kind is loaded (see loaders.py for the contract).
LOADERS: dict[ImportKind, Loader] = {
    ImportKind.customers: Loader(load_customers.load),
    ImportKind.products: Loader(load_products.load),
    ImportKind.orders: Loader(load_orders.write, load_orders.prepare),
    ImportKind.interactions: Loader(load_interactions.load),
}


@dataclass
class Preview:
    columns: list[str]
    rows: list[list[str | None]]
    rejected: list[Rejected]
    mapping: Mapping
    missing: list[str]  # required fields the mapping does not provide
    format: str
    encoding: str
    delimiter: str | None


def resolve_mapping(
    kind: ImportKind, *, mapping: Mapping | None = None, preset_name: str | None = None, columns: list[str] = ()
) -> Mapping:
    """The mapping to use: an explicit one, a preset, or columns named like the fields."""
    if mapping is not None and preset_name:
        raise InvalidInput("give a mapping or a preset, not both", detail={"field": "preset"})
    if preset_name:
        mapping = preset(preset_name, kind)
    if mapping is None:
        mapping = Mapping(kind=kind)
    if not mapping.columns:
        # Columns named like the fields ("customer_id", "Placed At"...) map themselves.
        mapping = mapping.model_copy(update={"columns": automatic(kind, list(columns)).columns})
    if mapping.kind is not None and mapping.kind != kind:
        raise InvalidInput(f"the mapping is for {mapping.kind}, not {kind}", detail={"field": "kind"})
    mapping.check_for(kind)
    return mapping


def read_options(mapping: Mapping) -> ReadOptions:
    return ReadOptions(
        format=mapping.format,
        encoding=mapping.encoding,
        delimiter=mapping.delimiter,
        header=mapping.header,
        column_names=mapping.column_names,
    )


def open_reader(path: Path, mapping: Mapping, *, all_columns: bool = False) -> Reader:
    wanted = None if all_columns else list(mapping.column_maps)
    try:
        return Reader(path, read_options(mapping), wanted=wanted)
    except SourceError as exc:
        raise InvalidInput(str(exc), detail={"field": "file"}) from None


def preview(
    path: Path,
    kind: ImportKind,
    *,
    mapping: Mapping | None = None,
    preset_name: str | None = None,
    rows: int = PREVIEW_ROWS,
) -> Preview:
    """The file's columns and first `rows` records, and the mapping that would be used."""
    base = mapping or (preset(preset_name, kind) if preset_name else Mapping(kind=kind))
    reader = open_reader(path, base, all_columns=True)
    try:
        columns, first, rejected = reader.preview(rows)
    except SourceError as exc:
        raise InvalidInput(str(exc), detail={"field": "file"}) from None
    chosen = resolve_mapping(kind, mapping=mapping, preset_name=preset_name, columns=columns)
    return Preview(
        columns=columns,
        rows=first,
        rejected=rejected,
        mapping=chosen,
        missing=chosen.missing_required(kind, columns),
        format=reader.format,
        encoding=reader.encoding,
        delimiter=reader.delimiter,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def start(
    session: Session,
    *,
    kind: ImportKind,
    path: Path,
    mapping: Mapping | None = None,
    preset_name: str | None = None,
    file_name: str | None = None,
    user_id: int | None = None,
    actor: str = "",
    dry_run: bool = False,
) -> ImportRun:
    """Check the file and mapping, and record a new run (executed by `execute`)."""
    path = path.resolve()
    checked = preview(path, kind, mapping=mapping, preset_name=preset_name, rows=1)
    chosen, columns, missing = checked.mapping, checked.columns, checked.missing
    if missing:
        raise InvalidMapping(
            f"the file has no column for {'; '.join(missing)} (columns found: {', '.join(columns) or 'none'})",
            errors=[{"field": "mapping", "message": f"map a column to {m}"} for m in missing],
        )
    run = ImportRun(
        kind=kind,
        file_name=(file_name or path.name)[:255],
        file_path=str(path),
        file_sha256=file_sha256(path),
        file_size=path.stat().st_size,
        options={"mapping": mapping_json(chosen), "preset": preset_name, "stubs": {}},
        dry_run=dry_run,
        user_id=user_id,
        actor=actor[:200],
    )
    session.add(run)
    session.flush()
    return run


def execute(
    engine: Engine, run_id: int, *, progress: Progress | None = None, batch_size: int = BATCH_SIZE
) -> ImportRun:
    """Import the rest of the run's file, one committed batch at a time."""
    with session_scope(engine) as session:
        run = get_run(session, run_id)
        if run.status == ImportStatus.completed:
            raise Conflict(f"import {run_id} is already complete")
        kind, path, dry_run = run.kind, Path(run.file_path), run.dry_run
        mapping = Mapping.model_validate(run.options["mapping"])
        skip, started_at, expected_hash = run.records_done, run.started_at, run.file_sha256
        run.options = {**run.options, "pid": os.getpid(), "host": socket.gethostname()}
        run.status = ImportStatus.running
        run.heartbeat_at = datetime.now(UTC)  # a resumed run is alive before its first batch commits
    try:
        if not path.is_file():
            raise SourceError(f"the file {path} is no longer there")
        if skip and file_sha256(path) != expected_hash:
            raise SourceError("the file has changed since the import started; start a new import instead")
        reader = Reader(path, read_options(mapping), wanted=list(mapping.column_maps))
        loader = LOADERS[kind]
        country = get_settings().default_country
        batches = _ahead(
            _prepared(
                _whole_orders(reader.batches(batch_size, skip=skip), kind, mapping), kind, mapping, loader, country
            )
        )
        if dry_run:
            # One transaction rolled back at the end: later batches see earlier ones' effects.
            with engine.connect() as conn, conn.begin() as tx:
                _bulk_settings(conn)
                session = Session(bind=conn)
                for prepared in batches:
                    _one_batch(session, run_id, prepared, mapping, loader, started_at)
                    if progress:
                        progress(get_run(session, run_id), reader.position())
                counters = _counters(get_run(session, run_id))
                # The error report outlives the rollback: showing it is what a dry run is for.
                columns = (ImportRowError.row, ImportRowError.column, ImportRowError.value, ImportRowError.reason)
                errors = [
                    {"run_id": run_id, **row._asdict()}
                    for row in session.execute(select(*columns).where(ImportRowError.run_id == run_id))
                ]
                session.close()
                tx.rollback()
            with session_scope(engine) as session:
                run = get_run(session, run_id)
                for name, value in counters.items():
                    setattr(run, name, value)
                if errors:
                    session.execute(insert(ImportRowError), errors)
        else:
            for prepared in batches:
                with session_scope(engine) as session:
                    if engine.dialect.name == "postgresql":
                        # The run's counters commit with the batch, so a batch lost to an OS
                        # crash is simply read again by --resume; no need to wait for fsync.
                        session.execute(text("SET LOCAL synchronous_commit = off"))
                        _bulk_settings(session.connection())
                    _one_batch(session, run_id, prepared, mapping, loader, started_at)
                    if progress:
                        progress(get_run(session, run_id), reader.position())
    except SourceError as exc:
        return _finish(engine, run_id, ImportStatus.failed, str(exc))
    except Exception as exc:
        _finish(engine, run_id, ImportStatus.failed, f"stopped by an internal error: {exc!r}")
        raise
    return _finish(engine, run_id, None, None)


def _bulk_settings(conn) -> None:
    """PostgreSQL settings for this import transaction.

    No JIT: a batch's statements run in milliseconds, but estimates from the growing orders
    tables pass the JIT threshold, and compiling them took ~0.6 s a statement (most of each
    batch's time). A small statistics sample: the staging tables are analysed for their row
    counts, and a full sample cost about a second per 200,000 rows."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")


def _ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce `items` in a background thread, up to `depth` ahead of the consumer.

    Reading and converting the next batch then overlaps writing this one: Polars and the
    database drivers release the GIL, so the two use both cores. Errors are raised here,
    in the consumer, in order; a consumer that stops early stops the producer.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((done, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # the file is closed in this thread, where it was opened

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass
class _Prepared:
    raw: RawBatch
    rejected: list[Rejected]  # by the converter
    shaped: object  # what the loader's prepare step made of the converted rows


def _prepared(batches: Iterator[RawBatch], kind, mapping, loader: Loader, country: str) -> Iterator[_Prepared]:
    """Convert each batch and run the loader's database-free step on it."""
    for raw in batches:
        converted = convert(raw, mapping, kind, default_country=country)
        yield _Prepared(raw, converted.rejected, loader.prepare(mapping, raw, converted.frame))


def _one_batch(session, run_id, prepared: _Prepared, mapping, loader: Loader, started_at) -> None:
    run = get_run(session, run_id)
    raw = prepared.raw
    conn = session.connection()
    outcome = loader.write(LoadContext(conn, mapping, raw, started_at), prepared.shaped)
    rejected = prepared.rejected + outcome.rejected
    if rejected:
        session.execute(
            insert(ImportRowError),
            [
                {"run_id": run_id, "row": r.row, "column": r.column, "value": r.value, "reason": r.reason[:500]}
                for r in rejected
            ],
        )
    run.records_done += raw.records
    run.rows_read += raw.records
    run.inserted += outcome.inserted
    run.updated += outcome.updated
    run.unchanged += outcome.unchanged
    run.rejected += len({r.row for r in rejected})
    if outcome.stubs:
        stubs = dict(run.options.get("stubs") or {})
        for name, n in outcome.stubs.items():
            if not n:
                continue
            stubs[name] = stubs.get(name, 0) + n
        run.options = {**run.options, "stubs": stubs}
    run.heartbeat_at = datetime.now(UTC)
    session.flush()


def _whole_orders(batches: Iterator[RawBatch], kind: ImportKind, mapping: Mapping) -> Iterator[RawBatch]:
    """Keep the rows of one order in one batch: the trailing rows that share the last
    order id are held back and lead the next batch. (Rows of one order must be next to
    each other in the file; the orders loader rejects an order that comes back later.)"""
    column = next((c for c, m in mapping.column_maps.items() if m.field == "order_id"), None)
    if kind != ImportKind.orders or column is None:
        yield from batches
        return
    held: RawBatch | None = None
    for batch in batches:
        if held is not None:
            batch = _concat(held, batch)
            held = None
        keys = batch.columns.get(column)
        if keys is not None and len(keys):
            # The last order may go on in the next batch (even when it fills this one).
            i = len(keys) - 1
            while i > 0 and keys[i - 1] == keys[-1]:
                i -= 1
            batch, held = _split(batch, i)
        if batch.records:
            yield batch
    if held is not None:
        yield held


def _split(batch: RawBatch, i: int) -> tuple[RawBatch, RawBatch]:
    """Cut before accepted row `i`; rejected records after that line go with the tail, so
    the head is exactly a prefix of the file's records (the resume offset stays exact)."""
    line = batch.rows[i]
    head_rej = [r for r in batch.rejected if r.row < line]
    tail_rej = [r for r in batch.rejected if r.row >= line]
    tail_records = (len(batch.rows) - i) + len(tail_rej)
    head = RawBatch(
        columns={c: v[:i] for c, v in batch.columns.items()},
        rows=batch.rows[:i],
        rejected=head_rej,
        records=batch.records - tail_records,
    )
    tail = RawBatch(
        columns={c: v[i:] for c, v in batch.columns.items()},
        rows=batch.rows[i:],
        rejected=tail_rej,
        records=tail_records,
    )
    return head, tail


def _concat(a: RawBatch, b: RawBatch) -> RawBatch:
    return RawBatch(
        columns={
            c: pl.concat([a.columns.get(c, pl.Series(c, [None] * len(a.rows), dtype=pl.String)), v])
            for c, v in b.columns.items()
        },
        rows=a.rows + b.rows,
        rejected=a.rejected + b.rejected,
        records=a.records + b.records,
    )


def _counters(run: ImportRun) -> dict[str, int]:
    names = ("records_done", "rows_read", "inserted", "updated", "unchanged", "rejected")
    return {n: getattr(run, n) for n in names}


def _finish(engine: Engine, run_id: int, status: ImportStatus | None, message: str | None) -> ImportRun:
    with session_scope(engine) as session:
        run = get_run(session, run_id)
        if status is None:
            if run.rows_read == 0:
                status, message = ImportStatus.failed, "the file has no data rows"
            elif run.rejected == run.rows_read:
                status, message = ImportStatus.failed, "no row of the file is valid; see the error report"
            else:
                status, message = ImportStatus.completed, summary(run)
        run.status = status
        run.message = message
        run.finished_at = datetime.now(UTC)
        session.flush()
        session.expunge(run)
        return run


def summary(run: ImportRun) -> str:
    text = (
        f"{run.rows_read:,} rows read: {run.inserted:,} inserted, {run.updated:,} updated, "
        f"{run.unchanged:,} unchanged, {run.rejected:,} rejected"
    )
    stubs = (run.options or {}).get("stubs") or {}
    if stubs:
        text += "; created " + " and ".join(f"{n:,} new {name}" for name, n in sorted(stubs.items()))
    if run.dry_run:
        text += " (dry run: nothing was saved)"
    return text


def resumable_run(session: Session, run_id: int | None = None) -> ImportRun:
    """The run to resume: the given one, or the latest unfinished one. Refuses a run
    whose process is still alive on this machine."""
    run = get_run(session, run_id) if run_id else repository.latest_unfinished(session)
    if run is None:
        raise NotFound("there is no unfinished import to resume")
    if run.status == ImportStatus.completed:
        raise Conflict(f"import {run.id} is already complete")
    pid, host = (run.options or {}).get("pid"), (run.options or {}).get("host")
    if run.status == ImportStatus.running and pid and host == socket.gethostname() and _alive(pid):
        raise Conflict(f"import {run.id} is still running (process {pid})")
    return run


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def get_run(session: Session, run_id: int) -> ImportRun:
    run = repository.get(session, run_id)
    if run is None:
        raise NotFound(f"import {run_id} not found", detail={"field": "run_id"})
    return run


def list_runs(session: Session, *, limit: int = 50, cursor: str | None = None) -> Page[ImportRun]:
    return paginate(
        session,
        repository.list_query(),
        sort_col=ImportRun.started_at,
        id_col=ImportRun.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def write_error_report(session: Session, run_id: int, out: TextIO) -> None:
    """The rejected rows as CSV (row, column, value, reason)."""
    for chunk in error_report_lines(session, run_id):
        out.write(chunk)


def first_errors(session: Session, run_id: int, limit: int = 50) -> list[ImportRowError]:
    """The first rejected rows, in file order, for showing on the run's page."""
    get_run(session, run_id)
    return list(repository.errors(session, run_id, limit=limit))


def error_report_lines(session: Session, run_id: int) -> Iterator[str]:
    """The error report as CSV text in chunks, for writing a file or streaming a download."""
    get_run(session, run_id)
    buf = io.StringIO()
    writer = SafeWriter(buf)
    writer.writerow(ERROR_COLUMNS)
    for e in repository.errors(session, run_id):
        writer.writerow([e.row, e.column or "", e.value if e.value is not None else "", e.reason])
        if buf.tell() > 1 << 16:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
