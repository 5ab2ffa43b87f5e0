"""`patron analyze` (score every customer, store the run) and `patron analyze runs` (past runs)."""

from __future__ import annotations

import getpass
import json
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from patron.console import console, fail

analyze_app = typer.Typer(
    help="Score every customer (RFM, purchase and spend models, CLV) and store the run.",
    invoke_without_command=True,
    no_args_is_help=False,
)

STEP_LABELS = {
    "summaries": "Reading orders into per-customer summaries",
    "rfm": "RFM scores and segments",
    "validation": "Holdout check of the purchase models",
    "fit": "Fitting the purchase and spend models",
    "score": "Predictions and CLV",
    "write": "Storing the scores",
    "insights": "Purchase-history insights",
}
MODEL_LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"}


def register(app: typer.Typer) -> None:
    """Add `patron analyze` (and its `runs` subcommand) to the root command."""
    app.add_typer(analyze_app, name="analyze")


def _parse(value: str | None, kind, option: str, what: str):
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise fail(f"{option} must be {what}, not {value!r}") from None


@analyze_app.callback()
def analyze_command(
    ctx: typer.Context,
    as_of: Annotated[
        str | None, typer.Option("--as-of", metavar="DATE", help="Score as of this day (YYYY-MM-DD); default today.")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            metavar="auto|bgnbd|pareto",
            help="Purchase model; auto keeps the one with the lower holdout RMSE.",
        ),
    ] = "auto",
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json",
            metavar="FILE",
            help="Write parameters, standard errors, log-likelihoods, model choice, validation and timing here.",
        ),
    ] = None,
    horizon_days: Annotated[str, typer.Option(metavar="N", help="CLV horizon in days.")] = "365",
    discount_rate: Annotated[
        str, typer.Option(metavar="R", help="Annual discount rate for CLV (0.10 = 10%).")
    ] = "0.10",
    margin: Annotated[
        str,
        typer.Option(metavar="M", help="Share of revenue kept as profit (0-1), or 'costs': from products' unit costs."),
    ] = "1",
    holdout_days: Annotated[
        str | None,
        typer.Option(metavar="N", help="Days held out to check the models (0 skips); default a third of the history."),
    ] = None,
) -> None:
    """Score every customer as of a day and store the run (earlier runs are kept).

    Per customer: frequency, recency, age, average spend, RFM scores and segment,
    expected purchases in the next 30/90/365 days, P(alive), churn band, expected
    spend and CLV. The purchase models are checked on a holdout period first.
    """
    if ctx.invoked_subcommand is not None:
        return
    from patron.analytics import service
    from patron.db import get_engine, session_scope
    from patron.errors import PatronError

    options = {
        "as_of": _parse(as_of, date.fromisoformat, "--as-of", "a date as YYYY-MM-DD"),
        "model": model,
        "horizon_days": _parse(horizon_days, int, "--horizon-days", "a whole number of days"),
        "discount_rate": _parse(discount_rate, float, "--discount-rate", "a number such as 0.10"),
        "margin": None
        if margin.strip().lower() == "costs"
        else _parse(margin, float, "--margin", "a number or 'costs'"),
        "holdout_days": _parse(holdout_days, int, "--holdout-days", "a whole number of days"),
    }
    if json_file is not None and not json_file.parent.is_dir():
        raise fail(f"--json: the folder {json_file.parent} does not exist")
    started = time.perf_counter()
    try:
        with console.status("Starting the analysis...") as status:

            def progress(step: str) -> None:
                status.update(f"{STEP_LABELS.get(step, step)}...")

            with session_scope(get_engine()) as session:
                run = service.analyze(session, **options, actor=f"cli:{getpass.getuser()}", progress=progress)
    except PatronError as exc:
        raise fail(exc.message) from exc
    elapsed = time.perf_counter() - started
    _print_summary(run, elapsed)
    if json_file is not None:
        try:
            json_file.write_text(json.dumps(run_report(run), indent=2, default=str) + "\n", encoding="utf-8")
        except OSError as exc:
            raise fail(f"could not write {json_file}: {exc.strerror or exc}") from exc
        console.print(f"Report written to [bold]{json_file}[/].")


def run_report(run) -> dict[str, Any]:
    """What --json writes: the run's model choice, fits, validation and timing."""
    validation = dict(run.validation or {})
    return {
        "run_id": run.id,
        "as_of": run.as_of.isoformat(),
        "status": str(run.status),
        "message": run.message,
        "requested_model": run.requested_model,
        "model": run.model,
        "customers": run.customers,
        "buyers": run.buyers,
        "settings": run.settings,
        "fits": run.fits,
        "validation": validation,
        "timings": run.timings,
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _print_summary(run, elapsed: float) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    colour = {"completed": "green", "partial": "yellow"}.get(str(run.status), "red")
    table.add_row("Run", f"{run.id} as of {run.as_of}: [{colour}]{run.status}[/]")
    table.add_row("Customers", f"{run.customers:,} ({run.buyers:,} with purchases)")
    fits = run.fits or {}
    if run.model:
        chosen = MODEL_LABELS.get(run.model, run.model)
        how = "chosen by holdout RMSE" if run.requested_model == "auto" and "chosen" in (run.validation or {}) else ""
        table.add_row("Model", f"{chosen} (requested: {run.requested_model}{'; ' + how if how else ''})")
    for name in ("bgnbd", "pareto", "gamma_gamma"):
        fit = fits.get(name)
        if not fit:
            continue
        if "error" in fit:
            table.add_row(MODEL_LABELS[name], f"[yellow]did not converge:[/] {fit['error']}")
            continue
        params = ", ".join(
            f"{k}={_fmt(v)} ± {_fmt(fit['standard_errors'].get(k), 2)}" for k, v in fit["params"].items()
        )
        table.add_row(MODEL_LABELS[name], f"{params}; log-likelihood {fit['log_likelihood']:,.1f}")
    validation = run.validation or {}
    if "skipped" in validation:
        table.add_row("Holdout", validation["skipped"])
    elif validation.get("models"):
        errors = []
        for name, result in validation["models"].items():
            if "metrics" in result:
                m = result["metrics"]
                errors.append(
                    f"{MODEL_LABELS.get(name, name)} RMSE {m['rmse']:.4f}, "
                    f"predicted {m['total_predicted']:,.0f} vs actual {m['total_actual']:,.0f}"
                )
            else:
                errors.append(f"{MODEL_LABELS.get(name, name)}: {result.get('error')}")
        table.add_row(
            "Holdout",
            f"{validation['holdout_days']} days after {validation['calibration_end']}: " + "; ".join(errors),
        )
    clv = fits.get("clv")
    if clv:
        table.add_row(
            "Equity",
            f"{clv['equity']:,.2f} (sum of CLV over {clv['horizon_days']} days, "
            f"{clv['discount_rate']:.0%} a year, margin {clv['margin']:.0%})",
        )
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in (run.timings or {}).items() if k != "total")
    table.add_row("Time", f"{elapsed:.1f} s ({steps})")
    console.print(table)
    if run.message:
        style = "yellow" if str(run.status) != "completed" else "dim"
        for line in run.message.splitlines():
            console.print(f"[{style}]{line}[/]")


@analyze_app.command("runs")
def runs_command(limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20) -> None:
    """List analysis runs, newest first."""
    from patron.analytics import service
    from patron.db import session_scope

    table = Table("id", "as of", "status", "model", "customers", "buyers", "equity", "seconds", "started", "by")
    with session_scope(write=False) as session:
        for run in service.list_runs(session, limit=limit).items:
            clv = (run.fits or {}).get("clv") or {}
            table.add_row(
                str(run.id),
                run.as_of.isoformat(),
                str(run.status),
                MODEL_LABELS.get(run.model, run.model or "-"),
                f"{run.customers:,}",
                f"{run.buyers:,}",
                f"{clv['equity']:,.0f}" if "equity" in clv else "-",
                f"{(run.timings or {}).get('total', 0):.1f}",
                run.started_at.strftime("%Y-%m-%d %H:%M"),
                run.actor,
            )
    console.print(table)
