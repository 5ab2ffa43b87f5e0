"""`patron generate` and `patron demo`: fill a database with realistic demo data."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from patron.console import console, err_console, fail

DEFAULT_DEMO_CUSTOMERS = 10_000
DEMO_FILE = "patron-demo.db"
DEMO_EMAIL = "demo@patron.example"
DEMO_PASSWORD = "patron-demo"


def register(app: typer.Typer) -> None:
    """Add the demo-data commands to the root `patron` app."""
    app.command("generate")(generate_command)
    app.command("demo")(demo_command)


def _run_generator(engine, *, customers: int, seed: int, end: date | None):
    """Generate with a progress bar, print the per-table summary and return it."""
    from patron.demo.generator import generate
    from patron.errors import PatronError

    columns = (TextColumn("{task.description:<32}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            summary = generate(engine, customers=customers, seed=seed, end=end, progress=progress)
    except PatronError as exc:
        raise fail(exc.message) from exc
    table = Table(title=f"Generated demo data (seed {seed}, {summary.start} to {summary.end})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.rows.items():
        table.add_row(name, f"{count:,}")
    total = sum(summary.rows.values())
    table.add_section()
    table.add_row("total", f"{total:,}")
    console.print(table)
    console.print(f"{total:,} rows in {summary.seconds:.1f} s ({total / max(summary.seconds, 1e-9):,.0f} rows/s).")
    return summary


def _has_customers(engine) -> bool:
    from sqlalchemy import func, select

    from patron.models import Customer

    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(Customer)).scalar_one())


CustomersOpt = Annotated[int, typer.Option("--customers", min=1, help="How many customers to generate.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed: the same seed and --end give the same data.")]
EndOpt = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="Day the history ends (exclusive); default today (UTC)."),
]


def generate_command(customers: CustomersOpt, seed: SeedOpt = 42, end: EndOpt = None) -> None:
    """Migrate PATRON_DATABASE_URL and fill it with demo data; refuses a database with customers."""
    from patron import migrate
    from patron.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    if _has_customers(engine):
        raise fail(
            f"the database at {engine.url.render_as_string()} already has customers; "
            "`patron generate` only fills an empty database and never adds duplicates"
        )
    _run_generator(engine, customers=customers, seed=seed, end=end.date() if end else None)


def demo_command(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to generate.")] = DEFAULT_DEMO_CUSTOMERS,
    seed: SeedOpt = 42,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the web app when the data is ready.")] = True,
) -> None:
    """Build a fresh demo database (patron-demo.db here), create a demo admin and serve the app."""
    from patron import migrate
    from patron.db import make_engine
    from patron.errors import Conflict
    from patron.settings import get_settings

    explicit = bool(os.environ.get("PATRON_DATABASE_URL") or os.environ.get("PATRON_DATABASE_URL_FILE"))
    if explicit:
        url = get_settings().database_url
    else:
        path = Path.cwd() / DEMO_FILE
        # A fresh file each time: the demo is disposable and must never mix with old data.
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        if explicit and _has_customers(engine):
            raise fail(
                f"PATRON_DATABASE_URL points at {engine.url.render_as_string()}, which already has "
                "customers; `patron demo` only uses an empty database (unset PATRON_DATABASE_URL "
                f"to use a fresh ./{DEMO_FILE})"
            )
        _run_generator(engine, customers=customers, seed=seed, end=None)
        _run_loyalty(engine, seed=seed)
        _ensure_demo_user(engine)
        _run_analysis(engine)
    except Conflict as exc:
        raise fail(exc.message) from exc

    console.print(f"\nDemo database: [bold]{engine.url.render_as_string()}[/]")
    console.print(
        f"Sign in at [bold]http://{host}:{port}/[/] as [bold]{DEMO_EMAIL}[/] / [bold]{DEMO_PASSWORD}[/]"
        f" (API docs at http://{host}:{port}/docs)."
    )
    if not serve:
        engine.dispose()
        return

    import uvicorn

    from patron.api.app import create_app
    from patron.db import get_engine
    from patron.worker import embedded

    # Everything in this process (web pages, background helpers) must see the demo
    # database, including code that reads the settings rather than the app's engine.
    os.environ["PATRON_DATABASE_URL"] = url
    get_settings.cache_clear()
    get_engine.cache_clear()
    # The worker delivers webhooks and runs the scheduled jobs, as under `patron serve`.
    with embedded(engine) as worker:
        if worker is not None:
            console.print(f"Embedded worker {worker.name} started (PATRON_EMBEDDED_WORKER).")
        uvicorn.run(create_app(engine), host=host, port=port, log_level=os.environ.get("PATRON_LOG_LEVEL", "info"))


def _run_loyalty(engine, *, seed: int) -> None:
    """The example loyalty programme with members, points, vouchers and a year of history."""
    from patron.demo.loyalty import build_programme

    with console.status("Loyalty programme: enrolling members, earning points, redeeming rewards..."):
        made = build_programme(engine, seed=seed)
    console.print(
        f"Loyalty programme: {made.members:,} members, {made.points_earned:,} points earned on "
        f"{made.orders_synced:,} orders, {made.vouchers:,} rewards redeemed in {made.seconds:.1f} s."
    )


def _run_analysis(engine) -> None:
    """Score the demo customers, so the analytics page and each 360's value panel have something to show."""
    from patron.analytics import service as analytics
    from patron.analytics.equity import MODEL_LABELS
    from patron.db import session_scope
    from patron.errors import PatronError

    with console.status("Analysing customers (RFM, purchase and spend models, CLV)...") as status:
        try:
            with session_scope(engine) as session:
                run = analytics.analyze(
                    session, actor="patron demo", progress=lambda step: status.update(f"Analysing customers: {step}...")
                )
                outcome = (run.status, run.model, run.buyers, run.customers, (run.timings or {}).get("total"))
        except PatronError as exc:
            # The demo is still worth serving without scores; say how to get them.
            err_console.print(f"[yellow]Analysis not stored:[/] {exc.message} (run `patron analyze` to retry)")
            return
    status_name, model, buyers, total, seconds = outcome
    console.print(
        f"Analysis {status_name}: {buyers:,} buyers of {total:,} customers scored"
        + (f" with {MODEL_LABELS.get(model, model)}" if model else "")
        + (f" in {seconds:.1f} s." if seconds is not None else ".")
    )


def _ensure_demo_user(engine) -> None:
    from patron.db import session_scope
    from patron.errors import Conflict
    from patron.users import service as users

    try:
        with session_scope(engine) as session:
            users.create_user(session, email=DEMO_EMAIL, password=DEMO_PASSWORD, role="admin", name="Demo Admin")
    except Conflict:
        console.print(f"User {DEMO_EMAIL} already exists; its password was left unchanged.")
