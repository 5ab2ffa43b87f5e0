"""The `patron` command: operator and analyst entry point. Each domain adds its commands."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from patron.console import console, err_console, fail
from patron.db import get_engine, session_scope
from patron.errors import PatronError

app = typer.Typer(help="Patron: a retention CRM for businesses that sell to consumers.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Staff users who sign in to the web UI.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for shops, tills and scripts.", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs, run by `patron worker`.", no_args_is_help=True)
outbox_app = typer.Typer(help="After-commit work waiting for `patron worker`.")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(outbox_app, name="outbox")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

ROLES = ["admin", "marketer", "agent", "analyst", "viewer"]


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or migrate it to the latest schema."""
    from patron import migrate

    engine = get_engine()
    migrate.upgrade(engine)
    console.print(
        f"Database at [bold]{engine.url.render_as_string()}[/] is at revision {migrate.current_revision(engine)}."
    )


@app.command()
def init(
    admin_email: Annotated[str | None, typer.Option(envvar="PATRON_ADMIN_EMAIL", help="First admin's email.")] = None,
    admin_password: Annotated[
        str | None, typer.Option(envvar="PATRON_ADMIN_PASSWORD", help="First admin's password.")
    ] = None,
) -> None:
    """Create or upgrade the database and make sure an admin exists."""
    from patron.users import service as users

    db_upgrade()
    with session_scope() as session:
        if users.has_users(session):
            console.print("Users already exist; no admin created.")
            return
        if admin_email is None:
            admin_email = typer.prompt("First admin's email")
        if admin_password is None:
            admin_password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            users.create_user(session, email=admin_email, password=admin_password, role="admin", name="Administrator")
        except PatronError as exc:
            raise fail(exc.message) from exc
    console.print(f"Admin [bold]{admin_email}[/] created.")


def _require_schema():
    """The engine, once its database is at the latest schema; else a clear error."""
    from patron import migrate

    engine = get_engine()
    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}, not {head}"
        raise fail(f"the database {state}; run `patron init` (or `patron db upgrade`) first")
    return engine


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the web UI and REST API (with an embedded worker when PATRON_EMBEDDED_WORKER says so)."""
    import uvicorn

    from patron.api.app import create_app
    from patron.worker import embedded

    engine = _require_schema()
    console.print(f"Patron on [bold]http://{host}:{port}/[/] (API docs at /docs)")
    with embedded(engine) as worker:
        if worker is not None:
            console.print(f"Embedded worker {worker.name} started (PATRON_EMBEDDED_WORKER).")
        uvicorn.run(create_app(), host=host, port=port, log_level=os.environ.get("PATRON_LOG_LEVEL", "info"))


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Threads doing outbox tasks.")] = 1,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Tasks claimed at a time by each thread.")] = 20,
    lease_seconds: Annotated[
        int, typer.Option(min=1, help="How long a claim lasts; a killed worker's tasks are taken over after it.")
    ] = 60,
    jobs: Annotated[bool, typer.Option(help="Also run the scheduled jobs (see `patron jobs list`).")] = True,
) -> None:
    """Do the outbox's tasks (webhook deliveries...) and the scheduled jobs until stopped.

    SIGTERM or Ctrl-C stops it gracefully: the tasks being done are finished, the others
    claimed are given back. Run as many workers as you like against one database.
    """
    import logging
    import signal
    from datetime import timedelta

    from patron.worker import Worker

    engine = _require_schema()
    logging.basicConfig(level=os.environ.get("PATRON_LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(message)s")
    runner = Worker(engine, concurrency=concurrency, batch=batch, lease=timedelta(seconds=lease_seconds), run_jobs=jobs)

    def stop(signum, _frame) -> None:
        err_console.print(f"Worker {runner.name}: {signal.Signals(signum).name}, stopping after the tasks in hand.")
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(f"Worker {runner.name}: {concurrency} thread(s), jobs {'on' if jobs else 'off'}.")
    runner.run()
    console.print(f"Worker {runner.name} stopped.")


@jobs_app.command("list")
def jobs_list() -> None:
    """The scheduled jobs: schedule, last run (duration, outcome) and next run."""
    from rich.table import Table

    from patron import jobs

    when = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "-"  # noqa: E731
    table = Table("job", "schedule (UTC)", "last run", "took", "outcome", "next run", "what it did")
    for job, row in jobs.job_rows(_require_schema()):
        took = f"{row.last_duration_ms / 1000:.1f} s" if row.last_duration_ms is not None else "-"
        outcome = "running" if row.running_by else (row.last_outcome or "never run")
        table.add_row(job.name, job.schedule, when(row.last_started_at), took, outcome, when(row.next_run_at),
                      row.last_message or job.description)  # fmt: skip
    console.print(table)


@jobs_app.command("run")
def jobs_run(name: Annotated[str, typer.Argument(help="The job's name (see `patron jobs list`).")]) -> None:
    """Run one scheduled job now; its outcome is stored like a scheduled run's."""
    from patron import jobs

    engine = _require_schema()
    try:
        outcome, message = jobs.run_now(engine, name)
    except PatronError as exc:
        raise fail(exc.message) from exc
    if outcome != "ok":
        raise fail(f"job {name} failed: {message}")
    console.print(f"Job [bold]{name}[/]: {message}")


@outbox_app.callback(invoke_without_command=True)
def outbox_status(ctx: typer.Context) -> None:
    """How many outbox tasks wait, retry, are done or dead; the dead letters."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from patron import outbox

    with session_scope(_require_schema(), write=False) as session:
        counts = outbox.counts(session)
        dead = outbox.dead_letters(session, limit=20)
        console.print(", ".join(f"{n} {status}" for status, n in counts.items()))
        if dead:
            table = Table("id", "topic", "event", "attempts", "died", "last error")
            for row in dead:
                table.add_row(str(row.id), row.topic, row.event_id or "-", str(row.attempts),
                              f"{row.finished_at:%Y-%m-%d %H:%M}", (row.last_error or "")[:120])  # fmt: skip
            console.print(table)
            console.print("Send one again with `patron outbox retry ID`.")


@outbox_app.command("retry")
def outbox_retry(task_id: Annotated[int, typer.Argument(help="A dead-lettered task's id.")]) -> None:
    """Put a dead-lettered task back in the queue with a fresh set of attempts."""
    from patron import outbox

    try:
        with session_scope(_require_schema()) as session:
            outbox.retry_dead(session, task_id=task_id)
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"Task {task_id} is queued again.")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "viewer",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: Annotated[
        str | None, typer.Option(envvar="PATRON_USER_PASSWORD", help="Password (prompted when omitted).")
    ] = None,
) -> None:
    """Create a staff user."""
    from patron.users import service as users

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as session:
            user = users.create_user(session, email=email, password=password, role=role, name=name)
            console.print(f"User [bold]{user.email}[/] ({user.role}) created.")
    except PatronError as exc:
        raise fail(exc.message) from exc


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option(help="The user the token acts for.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}; at most the user's own.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'POS till 3'.")] = "",
) -> None:
    """Issue an API token and print it (it is shown only once)."""
    from patron.users import service as users

    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    try:
        with session_scope() as session:
            _, secret = users.create_token(session, email=email, role=role, name=name)
    except PatronError as exc:
        raise fail(exc.message) from exc
    print(secret)


@tokens_app.command("list")
def tokens_list(email: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None) -> None:
    """Show API tokens: prefix, user, role, name, created, last used, revoked."""
    from rich.table import Table

    from patron.users import service as users

    table = Table("prefix", "user", "role", "name", "created", "last used", "revoked")
    with session_scope(write=False) as session:
        for token, user_email in users.list_tokens(session, email=email):
            when = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "-"  # noqa: E731
            table.add_row(
                token.prefix,
                user_email,
                token.role,
                token.name,
                when(token.created_at),
                when(token.last_used_at),
                when(token.revoked_at),
            )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    prefix: Annotated[str, typer.Argument(help="The token's prefix, as `tokens list` shows it.")],
) -> None:
    """Revoke an API token; requests with it get 401 from then on."""
    from patron.users import service as users

    try:
        with session_scope() as session:
            users.revoke_token(session, prefix=prefix)
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"Token {prefix} revoked.")


def _register_domains() -> None:
    from patron.analytics.cli import register as register_analytics
    from patron.demo.cli import register as register_demo
    from patron.identity.cli import register as register_identity
    from patron.imports.cli import register as register_imports
    from patron.ingest.cli import register as register_ingest
    from patron.loyalty.cli import register as register_loyalty
    from patron.segments.cli import register as register_segments

    register_demo(app)
    register_imports(app)
    register_ingest(app)
    register_identity(app)
    register_analytics(app)
    register_segments(app)
    register_loyalty(app)


_register_domains()
