"""The `patron` command: operator and analyst entry point. Each domain adds its commands."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from patron.db import get_engine, session_scope
from patron.errors import PatronError

app = typer.Typer(help="Patron: a retention CRM for businesses that sell to consumers.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Staff users who sign in to the web UI.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for shops, tills and scripts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

console = Console()
err_console = Console(stderr=True)

ROLES = ["admin", "marketer", "agent", "analyst", "viewer"]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error the way every command does and return the Exit to raise."""
    err_console.print(f"[bold red]Error:[/] {message}")
    return typer.Exit(code)


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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the web UI and REST API."""
    import uvicorn

    from patron import migrate
    from patron.api import create_app

    engine = get_engine()
    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}, not {head}"
        raise fail(f"the database {state}; run `patron init` (or `patron db upgrade`) first")
    console.print(f"Patron on [bold]http://{host}:{port}/[/] (API docs at /docs)")
    from patron.segments.tasks import SnapshotScheduler
    from patron.settings import get_settings

    every = get_settings().segment_snapshot_days
    if every:
        SnapshotScheduler(engine, every_days=every).start()
    if get_settings().loyalty_jobs:
        from patron.loyalty.tasks import LoyaltyScheduler

        LoyaltyScheduler(engine).start()
    uvicorn.run(create_app(), host=host, port=port, log_level=os.environ.get("PATRON_LOG_LEVEL", "info"))


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
    with session_scope() as session:
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
