"""Segments: preview a rule, keep segments, list and export members, static lists, clusters, reports, snapshots.

A dynamic segment's rule is compiled to SQL each time it is used (patron.segments.rules),
so its members are always current; a static list or a cluster keeps its members in
segment_members. Every function takes the session first, flushes and never commits.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from patron import events
from patron.csvsafe import SafeWriter
from patron.errors import Conflict, InvalidInput, NotFound
from patron.models import Customer, Segment
from patron.models.enums import SegmentKind
from patron.pagination import Page, paginate
from patron.segments import repository, rules
from patron.validation import read_csv_text

SAMPLE_SIZE = 10
MAX_STATIC_IMPORT = 1_000_000
EXPORT_COLUMNS = ("customer_id", "first_name", "last_name", "email", "phone", "city", "country", "postal_code")


@dataclass
class Preview:
    count: int
    total: int  # live customers
    sample: list[Customer]
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- rules and members


def rule_context(session: Session, *, today: date | None = None, _stack: tuple[int, ...] = ()) -> rules.RuleContext:
    """What a rule needs from the database: today, the latest analysis runs, other segments."""
    latest, previous = repository.latest_run_ids(session)
    today = today or datetime.now(UTC).date()

    def resolve(segment_id: int):
        if segment_id in _stack:
            chain = " -> ".join(str(s) for s in (*_stack, segment_id))
            # The compiler passes InvalidRule through; the path is the referring segment's.
            raise rules.InvalidRule(f"segment {segment_id}", f"refers back to itself ({chain})")
        segment = repository.get(session, segment_id)
        if segment is None:
            return None
        return Customer.id.in_(_member_ids(session, segment, today=today, stack=(*_stack, segment_id)))

    return rules.RuleContext(today=today, latest_run_id=latest, previous_run_id=previous, resolve_segment=resolve)


def _member_ids(
    session: Session, segment: Segment, *, today: date | None = None, stack: tuple[int, ...] = ()
) -> Select:
    if segment.kind == SegmentKind.dynamic:
        context = rule_context(session, today=today, _stack=stack or (segment.id,))
        return rules.members(segment.rule, context)
    return repository.list_member_ids(segment.id)


def member_ids(session: Session, segment_id: int) -> Select:
    """SELECT of the segment's live members' ids (404 for an unknown segment)."""
    return _member_ids(session, get_segment(session, segment_id))


def preview(session: Session, *, rule: Any, sample_size: int = SAMPLE_SIZE, today: date | None = None) -> Preview:
    """Count and sample a rule's members without saving anything; warns when it matches everyone or no one."""
    condition = rules.condition(rule, rule_context(session, today=today))
    if rules.on_customers_only(rule):
        # A filter on customers alone: a (parallel) count, then a sample that stops early.
        count = repository.count_where(session, condition)
        sample = repository.first_where(session, condition, limit=sample_size) if count else []
    else:
        count, sample = repository.count_and_first(session, condition, limit=sample_size)
    total = repository.live_customers(session)
    warnings = []
    if total and count == total:
        warnings.append(
            f"This rule matches every customer ({total:,}): check that its conditions narrow it down as meant."
        )
    elif count == 0:
        warnings.append("This rule matches no customer today.")
    return Preview(count=count, total=total, sample=sample, warnings=warnings)


# --------------------------------------------------------------------------- segments


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = repository.get(session, segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} not found", detail={"field": "segment_id"})
    return segment


def list_segments(session: Session, *, include_archived: bool = False) -> list[Segment]:
    return repository.all_segments(session, include_archived=include_archived)


def count_members(session: Session, segment_id: int) -> int:
    return repository.count(session, member_ids(session, segment_id))


def _check_name(session: Session, name: str, *, own_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name must not be empty", detail={"field": "name"})
    if len(name) > 200:
        raise InvalidInput("name is at most 200 characters", detail={"field": "name"})
    other = repository.get_by_name(session, name)
    if other is not None and other.id != own_id:
        raise Conflict(f"a segment named {other.name!r} already exists (id {other.id})", detail={"field": "name"})
    return name


def _check_rule(session: Session, rule: Any, *, own_id: int | None = None) -> None:
    # Compiling resolves every {"segment": id} reference: unknown ones and cycles are refused here.
    rules.members(rule, rule_context(session, _stack=(own_id,) if own_id else ()))


def create_segment(
    session: Session,
    *,
    name: str,
    kind: SegmentKind = SegmentKind.dynamic,
    rule: Any = None,
    description: str = "",
    category: str | None = None,
    customer_ids: list[int] | None = None,
    actor: str = "",
) -> Segment:
    """A new segment: dynamic (needs a rule) or static (members from customer_ids or a frozen rule)."""
    name = _check_name(session, name)
    if kind == SegmentKind.cluster:
        raise InvalidInput("cluster segments are made by clustering, not by hand", detail={"field": "kind"})
    if kind == SegmentKind.dynamic:
        if rule is None:
            raise InvalidInput("a dynamic segment needs a rule", detail={"field": "rule"})
        if customer_ids:
            raise InvalidInput("customer_ids are for static lists only", detail={"field": "customer_ids"})
        _check_rule(session, rule)
    elif rule is not None:
        _check_rule(session, rule)
    segment = Segment(
        name=name,
        kind=kind,
        rule=rule if kind == SegmentKind.dynamic else None,
        description=description or "",
        category=category,
        created_by=actor[:200],
    )
    session.add(segment)
    session.flush()
    if kind == SegmentKind.static:
        if rule is not None:
            # A static list made from a rule: today's members, frozen.
            repository.replace_members(session, segment.id, rules.members(rule, rule_context(session)))
        if customer_ids:
            set_static_members(session, segment.id, customer_ids=customer_ids, replace=False)
    return segment


def update_segment(session: Session, segment_id: int, *, changes: dict[str, Any]) -> Segment:
    """Apply the given fields (name, description, rule, category, is_archived)."""
    segment = get_segment(session, segment_id)
    if "name" in changes:
        segment.name = _check_name(session, changes["name"], own_id=segment.id)
    if "rule" in changes:
        if segment.kind != SegmentKind.dynamic:
            raise InvalidInput(f"a {segment.kind} segment has no rule to change", detail={"field": "rule"})
        if segment.builtin_key:
            raise Conflict(
                f"{segment.name!r} is built in; its rule cannot change (create a copy to adapt it)",
                detail={"field": "rule"},
            )
        if changes["rule"] is None:
            raise InvalidInput("a dynamic segment needs a rule", detail={"field": "rule"})
        _check_rule(session, changes["rule"], own_id=segment.id)
        segment.rule = changes["rule"]
    for key in ("description", "category", "is_archived"):
        if key in changes:
            setattr(segment, key, changes[key] if key != "description" else (changes[key] or ""))
    session.flush()
    return segment


def delete_segment(session: Session, segment_id: int) -> None:
    """Delete a segment; refused for built-ins and while another segment's rule refers to it."""
    segment = get_segment(session, segment_id)
    if segment.builtin_key:
        raise Conflict(f"{segment.name!r} is built in and cannot be deleted; archive it instead")
    users = repository.segments_referencing(session, segment.id)
    if users:
        names = ", ".join(f"{s.name!r} (id {s.id})" for s in users)
        raise Conflict(
            f"{segment.name!r} is used by the rule of {names}; change those first",
            detail={"used_by": [s.id for s in users]},
        )
    session.delete(segment)
    session.flush()


def members_page(session: Session, segment_id: int, *, limit: int = 50, cursor: str | None = None) -> Page[Customer]:
    """The segment's members by customer id."""
    return paginate(
        session,
        repository.customers_in(member_ids(session, segment_id)),
        sort_col=Customer.id,
        id_col=Customer.id,
        descending=False,
        limit=limit,
        cursor=cursor,
    )


def export_csv(session: Session, segment_id: int) -> Iterator[str]:
    """The members as CSV text chunks (header first), streamed."""
    members = member_ids(session, segment_id)
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for n, customer in enumerate(repository.export_rows(session, members), start=1):
        writer.writerow(
            [customer.id, customer.first_name, customer.last_name, customer.email or "", customer.phone or "",
             customer.city or "", customer.country or "", customer.postal_code or ""]
        )  # fmt: skip
        if n % 5_000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --------------------------------------------------------------------------- static lists


def set_static_members(
    session: Session, segment_id: int, *, customer_ids: list[int], replace: bool = False
) -> dict[str, int]:
    """Add (or with replace, set) a static list's members; unknown ids refuse the whole change."""
    segment = get_segment(session, segment_id)
    if segment.kind != SegmentKind.static:
        raise InvalidInput(f"only static lists take members; {segment.name!r} is {segment.kind}")
    live = repository.live_ids(session, list(dict.fromkeys(customer_ids)))
    unknown = [cid for cid in customer_ids if cid not in live]
    if unknown:
        shown = ", ".join(str(c) for c in unknown[:10])
        raise InvalidInput(
            f"{len(unknown)} customer id(s) do not exist: {shown}{' ...' if len(unknown) > 10 else ''}",
            detail={"field": "customer_ids", "unknown": unknown[:100]},
        )
    if replace:
        repository.clear_members(session, segment.id)
    added = repository.add_members(session, segment.id, [live[c] for c in customer_ids])
    session.flush()
    return {"added": added, "members": repository.count(session, repository.list_member_ids(segment.id))}


def import_static_csv(session: Session, segment_id: int, *, text: str, replace: bool = False) -> dict[str, int]:
    """Members from a CSV with a customer_id or an email column; any bad row refuses the file, naming each."""
    if "\x00" in text:
        raise InvalidInput("the CSV contains NUL characters; is it a text file?", detail={"field": "file"})
    columns, rows = read_csv_text(text)
    if "customer_id" not in columns and "email" not in columns:
        raise InvalidInput(
            "the CSV needs a header with a customer_id or an email column", detail={"field": "file", "columns": columns}
        )
    by_id: list[tuple[int, int]] = []
    by_email: list[tuple[int, str]] = []
    errors: list[dict[str, Any]] = []
    for row_no, row in rows:
        raw_id = (row.get("customer_id") or "").strip()
        email = (row.get("email") or "").strip().lower()
        if raw_id:
            if not raw_id.isdigit() or not 1 <= int(raw_id) <= 2**31 - 1:
                errors.append({"row": row_no, "column": "customer_id", "value": raw_id, "reason": "not a customer id"})
            else:
                by_id.append((row_no, int(raw_id)))
        elif email:
            by_email.append((row_no, email))
        else:
            errors.append({"row": row_no, "column": "customer_id", "value": "", "reason": "no customer_id or email"})
        if row_no > MAX_STATIC_IMPORT + 1:
            raise InvalidInput(f"a list import takes at most {MAX_STATIC_IMPORT:,} rows", detail={"field": "file"})
    found_ids = repository.live_ids(session, [cid for _, cid in by_id])
    found_emails = repository.ids_by_email(session, [e for _, e in by_email])
    ids = []
    for row_no, cid in by_id:
        if cid in found_ids:
            ids.append(found_ids[cid])
        else:
            errors.append({"row": row_no, "column": "customer_id", "value": str(cid), "reason": "no such customer"})
    for row_no, email in by_email:
        if email in found_emails:
            ids.append(found_emails[email])
        else:
            errors.append({"row": row_no, "column": "email", "value": email, "reason": "no customer with this email"})
    if errors:
        errors.sort(key=lambda e: e["row"])
        first = errors[0]
        raise InvalidInput(
            f"{len(errors)} row(s) cannot be matched to a customer, nothing was added "
            f"(first: row {first['row']}, {first['column']} {first['value']!r}: {first['reason']})",
            detail={"errors": errors[:1000]},
        )
    if not ids:
        raise InvalidInput("the CSV has no rows", detail={"field": "file"})
    return set_static_members(session, segment_id, customer_ids=ids, replace=replace)


def freeze(session: Session, segment_id: int, *, name: str, actor: str = "") -> Segment:
    """A static list holding the segment's members as they are now."""
    source = get_segment(session, segment_id)
    frozen = Segment(
        name=_check_name(session, name),
        kind=SegmentKind.static,
        description=f"Members of {source.name!r} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        category=source.category,
        created_by=actor[:200],
    )
    session.add(frozen)
    session.flush()
    repository.replace_members(session, frozen.id, _member_ids(session, source))
    return frozen


# --------------------------------------------------------------------------- reports


def report(session: Session, segment_id: int, *, months: int = 12) -> dict[str, Any]:
    """Size, revenue, margin, average order value, CLV, churn risk and monthly revenue of one segment."""
    segment = get_segment(session, segment_id)
    members = _member_ids(session, segment)
    latest, _ = repository.latest_run_ids(session)
    figures = repository.report_figures(session, members, latest_run_id=latest)
    today = datetime.now(UTC).date()
    since = (today.replace(day=1) - timedelta(days=31 * (months - 1))).replace(day=1)
    figures["monthly"] = [
        {"month": m, "revenue": revenue, "orders": n}
        for m, revenue, n in repository.monthly_revenue(session, members, since=since)
    ]
    figures["share_of_customers"] = figures["size"] / total if (total := repository.live_customers(session)) else None
    # No survey answers are collected yet (feedback is a later module): NPS stays unknown, not 0.
    figures["nps"] = None
    figures["segment_id"] = segment.id
    figures["name"] = segment.name
    return figures


def compare(session: Session, first_id: int, second_id: int) -> dict[str, Any]:
    """Two segments' reports side by side, and how many customers are in both."""
    if first_id == second_id:
        raise InvalidInput("pick two different segments to compare", detail={"field": "second"})
    a, b = report(session, first_id), report(session, second_id)
    both = repository.overlap(session, member_ids(session, first_id), member_ids(session, second_id))
    return {"first": a, "second": b, "overlap": both}


# --------------------------------------------------------------------------- snapshots


def take_snapshot(session: Session, *, actor: str = "") -> Any:
    """Record every (not archived) segment's members now; returns the snapshot."""
    snap = repository.create_snapshot(session, taken_by=actor[:200])
    sizes, names = {}, {}
    for segment in repository.all_segments(session):
        n = repository.snapshot_members(session, snap.id, segment.id, _member_ids(session, segment))
        sizes[str(segment.id)] = n
        names[str(segment.id)] = segment.name
    snap.sizes, snap.names = sizes, names
    session.flush()
    events.publish(session, events.SegmentSnapshotTaken(snapshot_id=snap.id, actor=actor))
    return snap


def snapshot_if_due(session: Session, *, every_days: int | None, actor: str = "") -> Any:
    """take_snapshot, unless every_days is given and the last snapshot is younger than that (then None)."""
    if every_days is not None:
        last = repository.snapshots(session, limit=1)
        if last and datetime.now(UTC) - last[0].taken_at < timedelta(days=every_days):
            return None
    return take_snapshot(session, actor=actor)


def list_snapshots(session: Session, *, limit: int = 50) -> list[Any]:
    return repository.snapshots(session, limit=limit)


def migration(
    session: Session, *, before_id: int | None = None, after_id: int | None = None, segment_ids: list[int] | None = None
) -> dict[str, Any]:
    """How many customers moved between segments from one snapshot to the next (default: the last two).

    segment_ids defaults to the built-in RFM segments, which do not overlap.
    """
    snaps = repository.snapshots(session, limit=2)
    if after_id is None or before_id is None:
        if len(snaps) < 2:
            raise InvalidInput(
                "a migration matrix needs two snapshots; take one with `patron segments snapshot` "
                f"(there {'is' if len(snaps) == 1 else 'are'} {len(snaps)})",
                detail={"field": "snapshot"},
            )
        after_id = after_id or snaps[0].id
        before_id = before_id or snaps[1].id
    before, after = repository.get_snapshot(session, before_id), repository.get_snapshot(session, after_id)
    for label, snap, sid in (("before", before, before_id), ("after", after, after_id)):
        if snap is None:
            raise NotFound(f"snapshot {sid} not found", detail={"field": label})
    if segment_ids is None:
        segment_ids = [s.id for s in repository.all_segments(session, include_archived=True)
                       if (s.builtin_key or "").startswith("rfm_")]  # fmt: skip
    if not segment_ids:
        raise InvalidInput("choose at least one segment", detail={"field": "segments"})
    names = {**{k: v for k, v in before.names.items()}, **after.names}
    cells = repository.migration_counts(session, before=before.id, after=after.id, segment_ids=segment_ids)
    return {
        "before": {"id": before.id, "taken_at": before.taken_at},
        "after": {"id": after.id, "taken_at": after.taken_at},
        "segments": [{"id": sid, "name": names.get(str(sid), f"segment {sid}")} for sid in segment_ids],
        "cells": [{"from": x, "to": y, "customers": n} for x, y, n in cells],
    }


# --------------------------------------------------------------------------- clustering


def cluster(
    session: Session, *, k_min: int = 2, k_max: int = 8, method: str = "kmeans", actor: str = ""
) -> list[Segment]:
    """Cluster the latest run's buyers on their behaviour; each cluster becomes a segment.

    The previous clustering's segments are archived (kept for history and snapshots).
    """
    from patron.segments.clustering import cluster_customers

    latest, _ = repository.latest_run_ids(session)
    if latest is None:
        raise InvalidInput("clustering needs customer scores: run `patron analyze` first")
    if not 2 <= k_min <= k_max <= 20:
        raise InvalidInput("the number of clusters must satisfy 2 <= k_min <= k_max <= 20", detail={"field": "k"})
    rows = session.execute(repository.cluster_features(session, run_id=latest)).mappings().all()
    frame = pl.DataFrame([dict(r) for r in rows], infer_schema_length=None) if rows else pl.DataFrame()
    if frame.height:
        frame = frame.with_columns(pl.exclude("customer_id").cast(pl.Float64))
    result = cluster_customers(frame, k_range=range(k_min, k_max + 1), method=method)
    previous = list(session.scalars(select(Segment).where(Segment.kind == SegmentKind.cluster)))
    clustering = 1 + max(((s.cluster or {}).get("clustering", 0) for s in previous), default=0)
    for old in previous:
        old.is_archived = True
    made = []
    ids = frame["customer_id"].to_numpy()
    for profile in result.profiles:
        name = f"Clustering {clustering}, cluster {profile.cluster + 1} of {result.k}: {profile.label}"
        segment = Segment(
            name=name[:200],
            kind=SegmentKind.cluster,
            description=f"Behavioural cluster ({result.method}, k={result.k} chosen by silhouette): {profile.label}.",
            category="behavioural",
            cluster={
                "clustering": clustering,
                "run_id": latest,
                "cluster": profile.cluster,
                "k": result.k,
                "method": result.method,
                "label": profile.label,
                "size": profile.size,
                # JSON has no NaN: a feature nobody in the cluster has is null.
                "means": {k: (None if math.isnan(v) else v) for k, v in profile.means.items()},
                "silhouette": {str(k): v for k, v in result.silhouette.items()},
            },
            created_by=actor[:200],
        )
        session.add(segment)
        session.flush()
        members = [int(c) for c in ids[result.labels == profile.cluster]]
        repository.add_members(session, segment.id, members)
        made.append(segment)
    session.flush()
    return made
