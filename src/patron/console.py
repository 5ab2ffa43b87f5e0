"""Terminal output every `patron` command shares: the consoles, and how an error is told."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error the way every command does and return the Exit to raise."""
    err_console.print(f"[bold red]Error:[/] {message}")
    return typer.Exit(code)
