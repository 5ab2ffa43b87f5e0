"""Segment pages: the list, the rule builder with its live count, a segment's report and members,
comparing two segments, snapshots and the migration matrix between them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from patron.api.deps import PathId, QueryId, SessionDep
from patron.db import get_session
from patron.errors import InvalidInput, PatronError
from patron.models import Segment
from patron.models.enums import ChurnBand, ConsentPurpose, ContactChannel, RfmSegment, SalesChannel, SegmentKind
from patron.segments import examples, fields, rules, service
from patron.segments.endpoints import MAX_CSV_BYTES
from patron.users.permissions import Permission
from patron.users.schemas import Principal
from patron.web.auth import PageReader, require_page
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import SECURITY_HEADERS, label, render

router = APIRouter(prefix="/segments", include_in_schema=False)

PageSegmentManager = Annotated[Principal, Depends(require_page(Permission.manage_segments))]
NOTICE_KEY = "segments_notice"
MEMBERS_PER_PAGE = 25
FORM_FIELDS = ("name", "description", "category", "rule")
CATEGORIES = ("demographic", "geographic", "behavioural", "benefits")

# One wording of every operator, shared by the builder (as JSON) and the readable rule.
OP_LABELS = {
    "eq": "is",
    "ne": "is not",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is more than",
    "gte": "is at least",
    "between": "is between",
    "in": "is one of",
    "not_in": "is none of",
    "starts_with": "starts with",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "in_last_days": "in the last … days",
    "not_in_last_days": "not in the last … days",
    "is_current_month": "is this month",
}
METRIC_LABELS = {"count": "Number of orders", "sum": "Amount spent", "avg": "Average order value"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip


def _notice(request: Request) -> str | None:
    notice = request.session.pop(NOTICE_KEY, None)
    return notice if isinstance(notice, str) else None


# --------------------------------------------------------------------------- list


@router.get("", response_class=HTMLResponse)
def segment_list(request: Request, session: SessionDep, _: PageReader) -> HTMLResponse:
    """Every segment with its kind, category and current member count."""
    return _list_page(request, session)


def _list_page(request: Request, session: Session, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    segments = service.list_segments(session)
    rows = [(s, service.count_members(session, s.id)) for s in segments]
    return render(
        request,
        "segments/list.html",
        {
            "title": "Segments",
            "active": "segments",
            "rows": rows,
            "notice": _notice(request),
            "error": error,
        },
        status_code=status,
    )


@router.post("/clusters")
def make_clusters(request: Request, session: SessionDep, principal: PageSegmentManager, form: FormDep) -> Response:
    """Cluster the latest run's buyers on behaviour; each cluster becomes a segment."""
    try:
        made = service.cluster(session, actor=f"web:{principal.email}")
    except PatronError as exc:
        raise PageResponse(_list_page(request, session, error=exc.message, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Made {len(made)} behavioural clusters from the latest analysis run."
    return RedirectResponse("/segments", status_code=303)


# --------------------------------------------------------------------------- builder


def _builder_data(session: Session, *, own_id: int | None = None) -> dict[str, Any]:
    """What the rule builder's pickers offer, embedded in the page as JSON."""
    return {
        "fields": fields.catalogue(),
        "groups": list(fields.GROUPS),
        "ops": OP_LABELS,
        "metrics": METRIC_LABELS,
        "aggregate_ops": list(rules.AGGREGATE_OPS),
        "sales_channels": [[c.value, label(c)] for c in SalesChannel],
        "contact_channels": [[c.value, label(c)] for c in ContactChannel],
        "purposes": [[p.value, label(p)] for p in ConsentPurpose],
        "months": list(MONTHS),
        "segments": [[s.id, s.name] for s in service.list_segments(session) if s.id != own_id],
        "examples": examples.EXAMPLES,
    }


def _builder_page(
    request: Request,
    session: Session,
    *,
    segment: Segment | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    has_rule = segment is None or segment.kind == SegmentKind.dynamic
    return render(
        request,
        "segments/builder.html",
        {
            "title": f"Edit {segment.name}" if segment else "New segment",
            "active": "segments",
            "segment": segment,
            "has_rule": has_rule,
            "rule_locked": bool(segment and segment.builtin_key),
            "values": values,
            "errors": errors or {},
            "categories": [(c, label(c)) for c in CATEGORIES],
            "builder": _builder_data(session, own_id=segment.id if segment else None),
            "action": f"/segments/{segment.id}/edit" if segment else "/segments/new",
        },
        status_code=status,
    )


@router.get("/new", response_class=HTMLResponse)
def new_segment(request: Request, session: SessionDep, _: PageSegmentManager) -> HTMLResponse:
    """The rule builder for a new segment."""
    return _builder_page(request, session, segment=None, values={"rule": ""})


def _parse_rule(raw: str) -> Any:
    if not raw.strip():
        raise InvalidInput("add at least one condition to the rule", detail={"field": "rule"})
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the rule is not valid JSON ({exc})", detail={"field": "rule"}) from None


def _form_values(form: FormData) -> dict[str, str]:
    values = {name: text(form, name) for name in FORM_FIELDS}
    values["rule"] = form.get("rule") if isinstance(form.get("rule"), str) else ""
    values["static"] = "on" if form.get("static") else ""
    return values


def _form_errors(exc: PatronError) -> dict[str, str]:
    errors = field_errors(exc)
    if isinstance(exc, rules.InvalidRule):
        return {"rule": exc.message}
    return {(k if k in FORM_FIELDS else ""): v for k, v in errors.items()}


@router.post("/new", response_class=HTMLResponse)
def create_segment(request: Request, session: SessionDep, principal: PageSegmentManager, form: FormDep) -> Response:
    """Save the builder's rule as a dynamic segment, or today's members as a static list."""
    values = _form_values(form)
    try:
        segment = service.create_segment(
            session,
            name=values["name"],
            kind=SegmentKind.static if values["static"] else SegmentKind.dynamic,
            rule=_parse_rule(values["rule"]),
            description=values["description"],
            category=values["category"] or None,
            actor=f"web:{principal.email}",
        )
    except PatronError as exc:
        page = _builder_page(request, session, segment=None, values=values, errors=_form_errors(exc), status=exc.status)
        raise PageResponse(page) from None
    request.session[NOTICE_KEY] = f"Saved {segment.name!r}."
    return RedirectResponse(f"/segments/{segment.id}", status_code=303)


@router.post("/preview.json")
def preview(request: Request, session: SessionDep, _: PageReader, form: FormDep) -> JSONResponse:
    """The builder's live count and sample for the rule being edited (nothing is saved)."""
    try:
        result = service.preview(session, rule=_parse_rule(form.get("rule") or ""))
    except PatronError as exc:
        path = exc.path if isinstance(exc, rules.InvalidRule) else None
        return JSONResponse({"error": exc.message, "path": path}, status_code=exc.status, headers=SECURITY_HEADERS)
    body = {
        "count": result.count,
        "total": result.total,
        "text": f"{result.count:,} of {result.total:,} customers",
        "warnings": result.warnings,
        "sample": [
            {
                "id": c.id,
                "name": f"{c.first_name} {c.last_name}".strip(),
                "email": c.email,
                "city": c.city,
                "country": c.country,
            }
            for c in result.sample
        ],
    }
    return JSONResponse(body, headers=SECURITY_HEADERS)


# --------------------------------------------------------------------------- compare, snapshots


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request, session: SessionDep, _: PageReader, first: QueryId = None, second: QueryId = None
) -> HTMLResponse:
    """Two segments' reports side by side, and their overlap."""
    comparison, error, status = None, None, 200
    if first and second:
        try:
            comparison = service.compare(session, first, second)
        except PatronError as exc:
            error, status = exc.message, exc.status
    return render(
        request,
        "segments/compare.html",
        {
            "title": "Compare segments",
            "active": "segments",
            "segments": service.list_segments(session, include_archived=True),
            "first": first,
            "second": second,
            "comparison": comparison,
            "chart": _compare_chart(comparison) if comparison else None,
            "error": error,
        },
        status_code=status,
    )


@router.get("/snapshots", response_class=HTMLResponse)
def snapshots(
    request: Request, session: SessionDep, _: PageReader, before: QueryId = None, after: QueryId = None
) -> HTMLResponse:
    """Snapshots taken so far and who moved between segments from one to another."""
    return _snapshots_page(request, session, before=before, after=after)


def _snapshots_page(
    request: Request, session: Session, *, before=None, after=None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    taken = service.list_snapshots(session, limit=100)
    matrix, matrix_error = None, None
    if len(taken) >= 2 or (before and after):
        try:
            matrix = migration_table(service.migration(session, before_id=before, after_id=after))
        except PatronError as exc:
            matrix_error, status = exc.message, (exc.status if status == 200 else status)
    return render(
        request,
        "segments/snapshots.html",
        {
            "title": "Snapshots & migration",
            "active": "segments",
            "snapshots": taken,
            "matrix": matrix,
            "matrix_error": matrix_error,
            "before": before or (matrix["before"]["id"] if matrix else None),
            "after": after or (matrix["after"]["id"] if matrix else None),
            "notice": _notice(request),
            "error": error,
        },
        status_code=status,
    )


@router.post("/snapshots")
def take_snapshot(request: Request, session: SessionDep, principal: PageSegmentManager, form: FormDep) -> Response:
    """Record every segment's members now."""
    snap = service.take_snapshot(session, actor=f"web:{principal.email}")
    request.session[NOTICE_KEY] = f"Snapshot #{snap.id} taken: {len(snap.sizes)} segments recorded."
    return RedirectResponse("/segments/snapshots", status_code=303)


def migration_table(matrix: dict[str, Any]) -> dict[str, Any]:
    """The migration cells as rows (before) by columns (after), with 'none' last and a shade per cell."""
    keys: list[int | None] = [s["id"] for s in matrix["segments"]] + [None]
    names = {s["id"]: s["name"] for s in matrix["segments"]} | {None: "none"}
    counts = {(c["from"], c["to"]): c["customers"] for c in matrix["cells"]}
    top = max(counts.values(), default=0)
    rows = []
    for a in keys:
        cells = []
        for b in keys:
            # Nobody is counted as in none of the segments both times: that cell stays blank.
            n = None if a is None and b is None else counts.get((a, b), 0)
            cells.append(
                {
                    "to": b,
                    "customers": n,
                    "shade": round(0.08 + 0.72 * n / top, 2) if n and top else 0,
                    "stayed": a == b and a is not None,
                }
            )
        rows.append({"from": a, "name": names[a], "cells": cells, "total": sum(c["customers"] or 0 for c in cells)})
    return {
        "before": matrix["before"],
        "after": matrix["after"],
        "columns": [{"id": k, "name": names[k]} for k in keys],
        "rows": rows,
        "moved": sum(n for (a, b), n in counts.items() if a != b),
    }


# --------------------------------------------------------------------------- one segment


@router.get("/{segment_id}", response_class=HTMLResponse)
def segment_page(
    request: Request, session: SessionDep, _: PageReader, segment_id: PathId, cursor: str = ""
) -> HTMLResponse:
    """The segment: what it is, its report with charts, and its members."""
    return _segment_page(request, session, segment_id, cursor=cursor or None)


def _segment_page(
    request: Request,
    session: Session,
    segment_id: int,
    *,
    cursor: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    segment = service.get_segment(session, segment_id)
    report = service.report(session, segment_id)
    members = service.members_page(session, segment_id, limit=MEMBERS_PER_PAGE, cursor=cursor)
    names = {s.id: s.name for s in service.list_segments(session, include_archived=True)}
    return render(
        request,
        "segments/detail.html",
        {
            "title": segment.name,
            "active": "segments",
            "segment": segment,
            "rule": describe(segment.rule, names) if segment.rule is not None else None,
            "report": report,
            "charts": report_charts(report),
            "members": members.items,
            "next_url": f"/segments/{segment.id}?{urlencode({'cursor': members.next_cursor})}"
            if members.next_cursor
            else None,
            "first_url": f"/segments/{segment.id}" if cursor else None,
            "now_label": datetime.now(UTC).strftime("%Y-%m-%d"),
            "notice": _notice(request),
            "error": error,
        },
        status_code=status,
    )


@router.get("/{segment_id}/edit", response_class=HTMLResponse)
def edit_segment_form(request: Request, session: SessionDep, _: PageSegmentManager, segment_id: PathId) -> HTMLResponse:
    """The builder on a saved segment (static lists and clusters: name and description only)."""
    segment = service.get_segment(session, segment_id)
    values = {
        "name": segment.name,
        "description": segment.description,
        "category": segment.category or "",
        "rule": json.dumps(segment.rule) if segment.rule is not None else "",
    }
    return _builder_page(request, session, segment=segment, values=values)


@router.post("/{segment_id}/edit", response_class=HTMLResponse)
def edit_segment(
    request: Request, session: SessionDep, _: PageSegmentManager, form: FormDep, segment_id: PathId
) -> Response:
    """Save the changed name, description, category and (for dynamic segments) rule."""
    segment = service.get_segment(session, segment_id)
    values = _form_values(form)
    changes: dict[str, Any] = {
        "name": values["name"],
        "description": values["description"],
        "category": values["category"] or None,
    }
    try:
        if segment.kind == SegmentKind.dynamic and not segment.builtin_key:
            rule = _parse_rule(values["rule"])
            if rule != segment.rule:
                changes["rule"] = rule
        service.update_segment(session, segment_id, changes=changes)
    except PatronError as exc:
        page = _builder_page(
            request, session, segment=segment, values=values, errors=_form_errors(exc), status=exc.status
        )
        raise PageResponse(page) from None
    request.session[NOTICE_KEY] = f"Saved {segment.name!r}."
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/{segment_id}/delete")
def delete_segment(
    request: Request, session: SessionDep, _: PageSegmentManager, form: FormDep, segment_id: PathId
) -> Response:
    """Delete the segment (refused for built-ins and segments other rules use: the page says why)."""
    segment = service.get_segment(session, segment_id)
    name = segment.name
    try:
        service.delete_segment(session, segment_id)
    except PatronError as exc:
        raise PageResponse(_segment_page(request, session, segment_id, error=exc.message, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Deleted {name!r}."
    return RedirectResponse("/segments", status_code=303)


@router.post("/{segment_id}/freeze")
def freeze(
    request: Request, session: SessionDep, principal: PageSegmentManager, form: FormDep, segment_id: PathId
) -> Response:
    """A static list holding the segment's members as they are now."""
    name = text(form, "name")
    try:
        frozen = service.freeze(session, segment_id, name=name, actor=f"web:{principal.email}")
    except PatronError as exc:
        raise PageResponse(_segment_page(request, session, segment_id, error=exc.message, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Froze today's members as the static list {frozen.name!r}."
    return RedirectResponse(f"/segments/{frozen.id}", status_code=303)


@router.post("/{segment_id}/import")
async def import_members(
    request: Request, session: SessionDep, _: PageSegmentManager, form: FormDep, segment_id: PathId
) -> Response:
    """Add (or replace) a static list's members from an uploaded CSV with customer_id or email."""
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("choose a CSV file to import", detail={"field": "file"})
        raw = await upload.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            raise InvalidInput(f"the CSV is larger than {MAX_CSV_BYTES // 1024 // 1024} MB", detail={"field": "file"})
        try:
            csv_text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the CSV is not UTF-8 (byte {exc.start})", detail={"field": "file"}) from None
        result = service.import_static_csv(session, segment_id, text=csv_text, replace=bool(form.get("replace")))
    except PatronError as exc:
        raise PageResponse(_segment_page(request, session, segment_id, error=exc.message, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Imported {result['added']:,} new members; the list now has {result['members']:,}."
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.get("/{segment_id}/members.csv")
def export_members(
    session: Annotated[Session, Depends(get_session)], _: PageReader, segment_id: PathId
) -> StreamingResponse:
    """The members as a CSV download, streamed."""
    segment = service.get_segment(session, segment_id)
    return StreamingResponse(
        service.export_csv(session, segment.id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="segment-{segment.id}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------- helpers


def report_charts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's charts as plain series (money as numbers: display only)."""
    bands = [b.value for b in ChurnBand]
    rfm = [s.value for s in RfmSegment if report["rfm_segments"].get(s.value)]
    return {
        "monthly": {
            "kind": "monthly",
            "x": [m["month"] for m in report["monthly"]],
            "revenue": [float(m["revenue"]) for m in report["monthly"]],
            "orders": [m["orders"] for m in report["monthly"]],
        },
        "churn": {
            "kind": "churn",
            "x": [label(b) for b in bands],
            "y": [report["churn_bands"].get(b, 0) for b in bands],
        },
        "rfm": {"kind": "rfm", "labels": rfm, "values": [report["rfm_segments"][s] for s in rfm]},
    }


def _compare_chart(comparison: dict[str, Any]) -> dict[str, Any]:
    months = sorted({m["month"] for r in (comparison["first"], comparison["second"]) for m in r["monthly"]})

    def series(r):
        by_month = {m["month"]: float(m["revenue"]) for m in r["monthly"]}
        return [by_month.get(m, 0.0) for m in months]

    return {
        "kind": "compare",
        "x": months,
        "names": [comparison["first"]["name"], comparison["second"]["name"]],
        "series": [series(comparison["first"]), series(comparison["second"])],
    }


def _value_text(field: fields.Field | None, value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value_text(field, v) for v in value)
    if field is not None and field.type == "month" and isinstance(value, int) and 1 <= value <= 12:
        return MONTHS[value - 1]
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def describe(node: Any, names: dict[int, str]) -> dict[str, Any]:
    """The rule as a tree of plain sentences: {"text": ..., "children": [...]} (groups have children)."""
    if not isinstance(node, dict):
        return {"text": json.dumps(node), "children": []}
    if "all" in node or "any" in node:
        kind = "all" if "all" in node else "any"
        children = node[kind] if isinstance(node[kind], list) else []
        heading = "All of these" if kind == "all" else "Any of these"
        return {"text": f"{heading}:", "children": [describe(c, names) for c in children]}
    if "not" in node:
        inner = describe(node["not"], names)
        return {"text": f"Not: {inner['text']}", "children": inner["children"]}
    if "field" in node:
        field = fields.get(node["field"])
        name = field.label if field else str(node["field"])
        op = node.get("op")
        if op in ("in_last_days", "not_in_last_days"):
            words = "in the last" if op == "in_last_days" else "not in the last"
            return {"text": f"{name} {words} {node.get('value')} days", "children": []}
        if op == "between" and isinstance(node.get("value"), list) and len(node["value"]) == 2:
            low, high = (_value_text(field, v) for v in node["value"])
            return {"text": f"{name} is between {low} and {high}", "children": []}
        words = OP_LABELS.get(op, str(op))
        value = "" if op in rules.NO_VALUE_OPS else f" {_value_text(field, node.get('value'))}"
        return {"text": f"{name} {words}{value}", "children": []}
    if "purchases" in node:
        f = node["purchases"] if isinstance(node["purchases"], dict) else {}
        metric = METRIC_LABELS.get(node.get("metric"), str(node.get("metric"))).lower()
        scope = ["orders"]
        if f.get("channel"):
            scope.append(f"on {label(f['channel']).lower()}")
        if f.get("category"):
            scope.append(f"in category {f['category']}")
        if f.get("brand"):
            scope.append(f"of brand {f['brand']}")
        if f.get("new_products_days"):
            scope.append(f"of products launched within {f['new_products_days']} days")
        scope.append(f"in the last {f['within_days']} days" if f.get("within_days") else "ever")
        value = node.get("value")
        amount = f"{value[0]} and {value[1]}" if isinstance(value, list) and len(value) == 2 else value
        return {
            "text": f"{metric.capitalize()} of {' '.join(scope)} {OP_LABELS.get(node.get('op'), '')} {amount}",
            "children": [],
        }
    if "consent" in node:
        c = node["consent"] if isinstance(node["consent"], dict) else {}
        return {"text": f"Consented to {c.get('purpose')} by {label(c.get('channel'))}", "children": []}
    if "segment" in node:
        sid = node["segment"]
        return {"text": f"Member of {names.get(sid, f'segment {sid}')!r}", "children": [], "segment": sid}
    return {"text": json.dumps(node), "children": []}
