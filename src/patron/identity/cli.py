"""`patron customers duplicates | merge | unmerge`: find and merge customers recorded twice."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patron.console import console, fail
from patron.identity import service

customers_app = typer.Typer(help="Customer records: duplicates and merges.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `customers` command group to the root `patron` app."""
    app.add_typer(customers_app, name="customers")


@customers_app.command("duplicates")
def duplicates_command(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many pairs.")] = service.DEFAULT_LIMIT,
    min_score: Annotated[
        float, typer.Option(min=0, max=1, help="Leave out pairs scoring lower (0-1).")
    ] = service.DEFAULT_MIN_SCORE,
    auto_merge: Annotated[
        bool,
        typer.Option(
            "--auto-merge", help="Merge the safe exact matches: same canonical email, or same phone and similar names."
        ),
    ] = False,
) -> None:
    """List candidate duplicate customers, best first; optionally merge the exact ones."""
    from patron.db import session_scope
    from patron.errors import PatronError

    try:
        # Only --auto-merge writes; a listing reads beside other writers (on SQLite).
        with session_scope(write=auto_merge) as session:
            pairs = service.find_duplicates(session, limit=limit, min_score=min_score)
            _print_pairs(pairs)
            if auto_merge:
                merges = service.auto_merge(session)
                for record in merges:
                    console.print(
                        f"Merged customer {record.merged_id} into {record.survivor_id} "
                        f"(merge {record.id}: {', '.join(record.reasons)}): {service.describe(record)}."
                    )
                console.print(f"Auto-merge: {len(merges)} merge(s); undo one with `patron customers unmerge MERGE_ID`.")
    except PatronError as exc:
        raise fail(exc.message) from exc


@customers_app.command("merge")
def merge_command(
    survivor_id: Annotated[int, typer.Argument(min=1, help="The customer who stays.")],
    merged_id: Annotated[int, typer.Argument(min=1, help="The duplicate merged into the survivor.")],
) -> None:
    """Merge one customer into another; `unmerge` undoes it."""
    from patron.db import session_scope
    from patron.errors import PatronError

    try:
        with session_scope() as session:
            record = service.merge(session, survivor_id=survivor_id, merged_id=merged_id)
            text = service.describe(record)
            merge_id = record.id
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"Merged customer {merged_id} into {survivor_id} (merge {merge_id}): {text}.")


@customers_app.command("unmerge")
def unmerge_command(merge_id: Annotated[int, typer.Argument(min=1, help="The merge to undo.")]) -> None:
    """Undo a merge: the duplicate is a customer of its own again, with what it brought."""
    from patron.db import session_scope
    from patron.errors import PatronError

    try:
        with session_scope() as session:
            record = service.unmerge(session, merge_id=merge_id)
            merged_id, survivor_id = record.merged_id, record.survivor_id
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"Undid merge {merge_id}: customer {merged_id} is separate from customer {survivor_id} again.")


def _print_pairs(pairs) -> None:
    if not pairs:
        console.print("No duplicate candidates.")
        return
    table = Table(title=f"{len(pairs)} candidate pair(s)")
    for name in ("ids", "first", "second", "score", "exact", "reasons"):
        table.add_column(name, overflow="fold")  # emails and phones are shown whole, never cut
    for p in pairs:
        keep = p.suggested_survivor_id
        table.add_row(
            f"{p.a.id} / {p.b.id}",
            _who(p.a, keep),
            _who(p.b, keep),
            f"{p.score:.2f}",
            "yes" if p.exact else "no",
            escape("; ".join(p.reasons)),
        )
    console.print(table)


def _who(c, keep: int) -> str:
    contact = " · ".join(x for x in (c.email, c.phone) if x)
    marker = " (keep)" if c.id == keep else ""
    return escape(f"{c.name}{marker}\n{contact}\n{c.order_count} order(s)")
