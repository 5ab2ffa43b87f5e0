"""`patron import` (files into the database, resumable) and `patron imports` (past runs)."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from patron.console import console, err_console, fail
from patron.models.enums import ImportKind


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("imports")(imports_command)


def import_command(
    kind: Annotated[ImportKind | None, typer.Argument(help="What the file holds.")] = None,
    file: Annotated[
        Path | None, typer.Argument(help="CSV, whitespace-separated, JSON Lines or Parquet; .gz too.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="YAML/JSON file: source column -> field, formats, options.")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="A built-in layout: cdnow, online-retail, shopify.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count everything, save nothing.")] = False,
    errors: Annotated[Path | None, typer.Option("--errors", help="Write rejected rows here (CSV).")] = None,
    source: Annotated[str | None, typer.Option(help="Name of the system the file's ids come from.")] = None,
    unknown: Annotated[
        str | None, typer.Option(help="Orders naming unknown customers/products: 'stub' creates them, 'reject'.")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="utf-8, latin-1 or auto (the default).")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (sniffed by default).")] = None,
    no_header: Annotated[bool, typer.Option("--no-header", help="The first line is data.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Carry on with an interrupted import.")] = False,
    run_id: Annotated[int | None, typer.Option("--run", help="Which import to resume (default: the latest).")] = None,
    batch_size: Annotated[int, typer.Option(min=100, max=1_000_000, help="Rows per committed batch.")] = 50_000,
) -> None:
    """Import customers, products, orders or interactions from a file.

    Rows are upserted by their external id, so running the same file twice changes
    nothing the second time. Bad rows are reported (row, column, value, reason) and the
    good ones land. Each batch is committed on its own: after a crash, `--resume`
    carries on where the last committed batch ended.
    """
    from patron.db import get_engine, session_scope
    from patron.errors import PatronError
    from patron.imports import service
    from patron.imports.mapping import load_mapping

    engine = get_engine()
    try:
        if resume:
            with session_scope(engine) as session:
                run = service.resumable_run(session, run_id)
                rid, done = run.id, run.records_done
            console.print(f"Resuming import {rid} ({run.file_name}) after {done:,} rows.")
        else:
            if kind is None or file is None:
                raise fail("give KIND and FILE (or --resume)")
            chosen = load_mapping(mapping) if mapping else None
            if chosen is not None or any(v is not None for v in (source, unknown, encoding, delimiter)) or no_header:
                chosen = _with_overrides(
                    kind,
                    chosen,
                    preset,
                    source=source,
                    unknown=unknown,
                    encoding=encoding,
                    delimiter=delimiter,
                    no_header=no_header,
                )
                preset_name = None
            else:
                preset_name = preset
            with session_scope(engine) as session:
                run = service.start(
                    session,
                    kind=kind,
                    path=file,
                    mapping=chosen,
                    preset_name=preset_name,
                    actor=f"cli:{getpass.getuser()}",
                    dry_run=dry_run,
                )
                rid = run.id
        run = _execute_with_progress(engine, rid, batch_size)
    except PatronError as exc:
        errors = [e for e in getattr(exc, "errors", None) or [] if e.get("message") != exc.message]
        detail = "".join(f"\n  {e.get('field', '')}: {e.get('message', '')}" for e in errors)
        raise fail(exc.message + detail) from exc

    if errors is not None and run.rejected:
        with session_scope(engine, write=False) as session, errors.open("w", newline="", encoding="utf-8") as out:
            service.write_error_report(session, rid, out)
    _print_summary(run, errors)
    if run.status != "completed":
        raise fail(run.message or "the import failed")


def _with_overrides(kind, chosen, preset, *, source, unknown, encoding, delimiter, no_header):
    from patron.imports.mapping import Mapping
    from patron.imports.mapping import preset as load_preset

    if chosen is not None and preset:
        raise fail("give --mapping or --preset, not both")
    base = chosen or (load_preset(preset, kind) if preset else None)
    data = base.model_dump() if base else {"kind": kind}
    if source is not None:
        data["source"] = source
    if unknown is not None:
        if unknown not in ("stub", "reject"):
            raise fail("--unknown must be 'stub' or 'reject'")
        data["unknown_customers"] = data["unknown_products"] = unknown
    if encoding is not None:
        data["encoding"] = encoding
    if delimiter is not None:
        data["delimiter"] = "\t" if delimiter in ("\\t", "tab") else delimiter
    if no_header:
        data["header"] = False
    # Without a mapping, columns named like the fields are mapped when the run starts.
    return Mapping.model_validate(data)


def _execute_with_progress(engine, rid: int, batch_size: int):
    from patron.db import session_scope
    from patron.imports import service

    with session_scope(engine) as session:
        run = service.get_run(session, rid)
        size, start_rows, name = run.file_size, run.rows_read, run.file_name
    started = time.perf_counter()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn(
            "{task.fields[rows]:>12,} rows  {task.fields[rate]:>9,.0f} rows/s  {task.fields[rejected]:,} rejected"
        ),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(name, total=size, rows=start_rows, rate=0, rejected=0)

        def report(run, position: int) -> None:
            elapsed = max(time.perf_counter() - started, 1e-6)
            progress.update(
                task,
                completed=position,
                rows=run.rows_read,
                rate=(run.rows_read - start_rows) / elapsed,
                rejected=run.rejected,
            )

        run = service.execute(engine, rid, progress=report, batch_size=batch_size)
        progress.update(task, completed=size)
    run.elapsed = time.perf_counter() - started  # type: ignore[attr-defined]
    run.rows_this_time = run.rows_read - start_rows  # type: ignore[attr-defined]
    return run


def _print_summary(run, errors: Path | None) -> None:
    table = Table(title=f"Import {run.id}: {run.kind} from {run.file_name}", show_header=False)
    for label, value in (
        ("read", run.rows_read),
        ("inserted", run.inserted),
        ("updated", run.updated),
        ("unchanged", run.unchanged),
        ("rejected", run.rejected),
    ):
        table.add_row(label, f"{value:,}")
    for name, n in sorted(((run.options or {}).get("stubs") or {}).items()):
        table.add_row(f"new {name} (stubs)", f"{n:,}")
    elapsed = getattr(run, "elapsed", None)
    if elapsed:
        table.add_row("rows/s", f"{run.rows_this_time / elapsed:,.0f}")
    console.print(table)
    if run.dry_run:
        console.print("[yellow]Dry run: nothing was saved.[/]")
    if run.rejected:
        where = f"written to {errors}" if errors else f"see `patron imports --errors {run.id}` or the web UI"
        console.print(f"{run.rejected:,} row{'' if run.rejected == 1 else 's'} rejected: {where}.")


def imports_command(
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many runs to show.")] = 20,
    errors: Annotated[int | None, typer.Option("--errors", help="Print this run's error report (CSV).")] = None,
) -> None:
    """Show recent imports (who, when, file hash, counts), or one run's error report."""
    import sys

    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.imports import service

    with session_scope(write=False) as session:
        if errors is not None:
            try:
                service.write_error_report(session, errors, sys.stdout)
            except PatronError as exc:
                raise fail(exc.message) from exc
            return
        table = Table("id", "kind", "file", "sha256", "by", "started", "status", "read", "ins", "upd", "same", "rej")
        for run in service.list_runs(session, limit=limit).items:
            table.add_row(
                str(run.id),
                run.kind,
                run.file_name,
                run.file_sha256[:12],
                run.actor,
                run.started_at.strftime("%Y-%m-%d %H:%M"),
                run.status + (" (dry run)" if run.dry_run else ""),
                *(f"{getattr(run, n):,}" for n in ("rows_read", "inserted", "updated", "unchanged", "rejected")),
            )
    console.print(table)
