"""`patron segments ...`: list, preview, create, report, export and import segments; snapshots and clusters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patron.console import console, fail

segments_app = typer.Typer(
    help="Segments: rules over customers, static lists, clusters, snapshots.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the `segments` command group to the root `patron` app."""
    app.add_typer(segments_app, name="segments")


def _rule(rule: str) -> object:
    """A rule given inline as JSON, or @FILE, or - for standard input."""
    from patron.errors import InvalidInput

    if rule == "-":
        text = sys.stdin.read()
    elif rule.startswith("@"):
        try:
            text = Path(rule[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the rule file {rule[1:]}: {exc.strerror}") from None
    else:
        text = rule
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the rule is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


RuleArg = Annotated[str, typer.Argument(help="The rule as JSON, @FILE, or - to read it from standard input.")]


@segments_app.command("list")
def list_command(
    archived: Annotated[bool, typer.Option("--archived", help="Include archived segments.")] = False,
) -> None:
    """Every segment with its kind and current member count."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        with session_scope(write=False) as session:
            table = Table("id", "name", "kind", "category", "members")
            for seg in service.list_segments(session, include_archived=archived):
                kind = f"{seg.kind}{' (built-in)' if seg.builtin_key else ''}{' (archived)' if seg.is_archived else ''}"
                table.add_row(
                    str(seg.id),
                    escape(seg.name),
                    kind,
                    seg.category or "",
                    f"{service.count_members(session, seg.id):,}",
                )
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(table)


@segments_app.command("preview")
def preview_command(
    rule: RuleArg,
    sample: Annotated[int, typer.Option(min=0, max=100, help="Show this many members.")] = 10,
) -> None:
    """Count a rule's members now and show a few, without saving anything."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        parsed = _rule(rule)
        with session_scope(write=False) as session:
            result = service.preview(session, rule=parsed, sample_size=sample)
            rows = [(c.id, f"{c.first_name} {c.last_name}".strip(), c.email or "") for c in result.sample]
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"{result.count:,} of {result.total:,} customers match.")
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {escape(warning)}")
    if rows:
        table = Table("id", "name", "email")
        for cid, name, email in rows:
            table.add_row(str(cid), escape(name), escape(email))
        console.print(table)


@segments_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="The segment's name (unique).")],
    rule: RuleArg,
    static: Annotated[bool, typer.Option("--static", help="Keep today's members as a static list.")] = False,
    description: Annotated[str, typer.Option(help="What the segment is for.")] = "",
) -> None:
    """Save a rule as a dynamic segment (or, with --static, its members as a list)."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.models.enums import SegmentKind
    from patron.segments import service

    try:
        parsed = _rule(rule)
        with session_scope() as session:
            seg = service.create_segment(
                session,
                name=name,
                kind=SegmentKind.static if static else SegmentKind.dynamic,
                rule=parsed,
                description=description,
                actor="cli",
            )
            seg_id, members = seg.id, service.count_members(session, seg.id)
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"Segment {seg_id} {name!r} saved: {members:,} members now.")


@segments_app.command("report")
def report_command(
    segment_id: Annotated[int, typer.Argument(min=1, help="The segment.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Size, revenue, margin, average order value, CLV and churn risk of a segment."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        with session_scope(write=False) as session:
            report = service.report(session, segment_id)
    except PatronError as exc:
        raise fail(exc.message) from exc
    if json_out:
        console.print_json(json.dumps(report, default=str))
        return
    table = Table("figure", "value", title=escape(report["name"]))
    share = report["share_of_customers"]
    table.add_row("members", f"{report['size']:,}" + (f" ({share:.1%} of customers)" if share is not None else ""))
    table.add_row("orders", f"{report['orders']:,}")
    table.add_row("revenue", f"{report['revenue']:,}")
    table.add_row("average order value", _maybe(report["average_order_value"]))
    table.add_row("margin", _maybe(report["margin"]))
    table.add_row("average CLV", _maybe(report["average_clv"], "{:,.2f}"))
    table.add_row("high churn risk", _maybe(report["churn_high_share"], "{:.1%}"))
    table.add_row("NPS", _maybe(report["nps"], "{:.0f}", none="no survey answers yet"))
    console.print(table)


def _maybe(value, fmt: str = "{:,}", none: str = "-") -> str:
    return none if value is None else fmt.format(value)


@segments_app.command("export")
def export_command(
    segment_id: Annotated[int, typer.Argument(min=1, help="The segment.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")] = None,
) -> None:
    """Write the segment's members as CSV."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        with session_scope(write=False) as session:
            chunks = service.export_csv(session, segment_id)
            if output is None:
                for chunk in chunks:
                    sys.stdout.write(chunk)
            else:
                with output.open("w", encoding="utf-8", newline="") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
    except PatronError as exc:
        raise fail(exc.message) from exc


@segments_app.command("import")
def import_command(
    segment_id: Annotated[int, typer.Argument(min=1, help="The static list.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a customer_id or email column.")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the members instead of adding.")] = False,
) -> None:
    """Add a CSV's customers to a static list; any row that matches no customer refuses the file."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"{file} is not UTF-8 (byte {exc.start})") from None
    try:
        with session_scope() as session:
            result = service.import_static_csv(session, segment_id, text=text, replace=replace)
    except PatronError as exc:
        for error in (exc.detail or {}).get("errors", [])[:20] if isinstance(exc.detail, dict) else []:
            console.print(f"row {error['row']}: {error['column']} {error['value']!r}: {error['reason']}")
        raise fail(exc.message) from exc
    console.print(f"{result['added']:,} added; the list has {result['members']:,} members.")


@segments_app.command("snapshot")
def snapshot_command(
    if_older_than: Annotated[
        int | None,
        typer.Option(
            "--if-older-than",
            min=0,
            metavar="DAYS",
            help="Only when the last snapshot is at least this many days old (for a daily timer).",
        ),
    ] = None,
) -> None:
    """Record every segment's members now, for the migration matrix."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        with session_scope() as session:
            snap = service.snapshot_if_due(session, every_days=if_older_than, actor="cli")
            if snap is None:
                console.print(f"The last snapshot is less than {if_older_than} day(s) old: nothing to do.")
                return
            sizes = dict(snap.sizes)
            snap_id = snap.id
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"Snapshot {snap_id}: {len(sizes)} segments, {sum(sizes.values()):,} memberships recorded.")


@segments_app.command("migration")
def migration_command(
    before: Annotated[
        int | None, typer.Option(min=1, help="Earlier snapshot (default: the one before the last).")
    ] = None,
    after: Annotated[int | None, typer.Option(min=1, help="Later snapshot (default: the last).")] = None,
) -> None:
    """How many customers moved between the RFM segments from one snapshot to the next."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        with session_scope(write=False) as session:
            matrix = service.migration(session, before_id=before, after_id=after)
    except PatronError as exc:
        raise fail(exc.message) from exc
    names = {s["id"]: s["name"] for s in matrix["segments"]}
    order = [*names, None]
    counts = {(c["from"], c["to"]): c["customers"] for c in matrix["cells"]}
    table = Table(
        "from \\ to",
        *(escape(names.get(s, "none")) for s in order),
        title=f"Snapshot {matrix['before']['id']} -> {matrix['after']['id']}",
    )
    for src in order:
        table.add_row(escape(names.get(src, "none")), *(f"{counts.get((src, dst), 0):,}" for dst in order))
    console.print(table)


@segments_app.command("cluster")
def cluster_command(
    k_min: Annotated[int, typer.Option(min=2, max=20, help="Fewest clusters to try.")] = 2,
    k_max: Annotated[int, typer.Option(min=2, max=20, help="Most clusters to try.")] = 8,
    method: Annotated[str, typer.Option(help="kmeans or gaussian_mixture.")] = "kmeans",
) -> None:
    """Cluster the scored buyers on their behaviour; each cluster becomes a segment."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.segments import service

    try:
        with session_scope() as session:
            made = [(s.id, s.name, s.cluster["size"]) for s in service.cluster(
                session, k_min=k_min, k_max=k_max, method=method, actor="cli")]  # fmt: skip
    except PatronError as exc:
        raise fail(exc.message) from exc
    for seg_id, name, size in made:
        console.print(f"Segment {seg_id}: {escape(name)} ({size:,} customers)")
