"""`patron ingest`: housekeeping for the batch API and webhooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def register(app: typer.Typer) -> None:
    ingest_app = typer.Typer(help="Batch API and webhooks.", no_args_is_help=True)
    ingest_app.command("purge-keys")(purge_keys_command)
    app.add_typer(ingest_app, name="ingest")


def purge_keys_command(
    days: Annotated[int, typer.Option(min=1, help="Delete keys stored more than this many days ago.")] = 30,
) -> None:
    """Delete old Idempotency-Key records; a retry after that is treated as a new request."""
    from patron import idempotency
    from patron.db import session_scope

    with session_scope() as session:
        deleted = idempotency.purge(session, older_than=timedelta(days=days))
    console.print(f"Deleted {deleted} idempotency key(s) older than {days} day(s).")
