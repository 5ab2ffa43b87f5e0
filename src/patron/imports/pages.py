"""Import pages: upload a file, check the preview and map its columns, watch the run, get the errors."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron.api.deps import PathId, SessionDep
from patron.db import get_session
from patron.errors import Conflict, InvalidInput, PatronError, ValidationFailed
from patron.imports import runner, service, uploads
from patron.imports.endpoints import error_report_response
from patron.imports.mapping import FIELDS, PRESETS, REQUIRED, ColumnMap, Mapping
from patron.models.enums import ImportKind
from patron.web.auth import PageImporter
from patron.web.csrf import check_token, streams_form
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import SECURITY_HEADERS, render

router = APIRouter(prefix="/imports", include_in_schema=False)

PAGE_SIZE = 25
ERRORS_SHOWN = 50
IGNORE = ""  # the select value of "— ignore —"

KIND_LABELS = {
    ImportKind.orders: "Orders (one row per order line)",
    ImportKind.customers: "Customers",
    ImportKind.products: "Products",
    ImportKind.interactions: "Interactions (visits, calls, emails, notes…)",
}
PRESET_LABELS = {"cdnow": "CDNOW purchase log", "online-retail": "Online Retail (UCI)", "shopify": "Shopify export"}
TIME_ZONES = sorted(zoneinfo.available_timezones())


def _directory(request: Request) -> Path:
    return Path(request.app.state.settings.import_dir)


def _bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}".replace(".0 ", " ")
        n /= 1000
    return str(n)


# --- list -----------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def import_list(request: Request, session: SessionDep, _: PageImporter, cursor: str = "") -> HTMLResponse:
    """Every import run, newest first."""
    page = service.list_runs(session, limit=PAGE_SIZE, cursor=cursor or None)
    return render(
        request,
        "imports/list.html",
        {
            "title": "Imports",
            "active": "imports",
            "runs": [(run, runner.display_status(run)) for run in page.items],
            "next_url": f"/imports?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None,
            "first_url": "/imports" if cursor else None,
        },
    )


# --- upload ---------------------------------------------------------------------------------


def _presets() -> list[dict[str, Any]]:
    return [
        {"name": name, "label": PRESET_LABELS.get(name, name), "kinds": [str(k) for k in kinds]}
        for name, kinds in sorted(PRESETS.items())
    ]


def _upload_page(request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200) -> HTMLResponse:
    limit = request.app.state.settings.max_upload_bytes
    return render(
        request,
        "imports/new.html",
        {
            "title": "New import",
            "active": "imports",
            "values": values,
            "errors": errors,
            "kinds": [(str(k), KIND_LABELS[k]) for k in KIND_LABELS],
            "presets": _presets(),
            "max_bytes": limit,
            "max_text": _bytes(limit),
        },
        status_code=status,
    )


@router.get("/new", response_class=HTMLResponse)
def new_import_form(request: Request, _: PageImporter, kind: str = "orders", preset: str = "") -> HTMLResponse:
    """Choose what the file holds, a preset if it comes from a known system, and the file."""
    return _upload_page(request, {"kind": kind, "preset": preset}, {})


@router.post("/new", response_class=HTMLResponse)  # uploads.UPLOAD_PATH: the body-size limit is the upload's
@streams_form
async def upload_file(request: Request, session: SessionDep, principal: PageImporter) -> Response:
    """Stream the file to the import folder, then go on to the preview and mapping."""
    # The upload may take minutes: give the database connection back while it arrives.
    session.close()
    settings = request.app.state.settings
    directory = _directory(request)
    limit_text = f"The file is larger than the {_bytes(settings.max_upload_bytes)} an import may be."
    try:
        received = await uploads.receive(
            request,
            directory=directory,
            max_bytes=settings.max_upload_bytes,
            check_csrf=lambda token: check_token(request, token),
        )
    except StarletteHTTPException as exc:  # the body went past the server's limit for this page
        if exc.status_code != 413:
            raise
        return _upload_page(request, {}, {"file": limit_text}, status=413)
    values = {"kind": received.fields.get("kind", ""), "preset": received.fields.get("preset", "")}
    errors: dict[str, str] = {}
    kind = next((k for k in ImportKind if k.value == values["kind"]), None)
    if kind is None:
        errors["kind"] = "Choose what the file holds."
    preset = values["preset"] or None
    if preset is not None and (preset not in PRESETS or (kind is not None and kind not in PRESETS[preset])):
        kinds = ", ".join(sorted(PRESETS.get(preset, {}))) or "nothing"
        errors["preset"] = f"This preset reads {kinds}; choose another or none."
    if received.too_large:
        errors["file"] = limit_text
    elif received.path is None:
        errors["file"] = "Choose a file to import."
    elif received.size == 0:
        errors["file"] = "The file is empty."
    if errors:
        await to_thread.run_sync(received.discard)
        return _upload_page(request, values, errors, status=413 if received.too_large else 422)
    upload = await to_thread.run_sync(
        lambda: uploads.save(directory, received, kind=kind.value, preset=preset, user_id=principal.user_id)
    )
    return RedirectResponse(f"/imports/uploads/{upload.token}", status_code=303)


# --- preview and mapping --------------------------------------------------------------------


def _format_text(cmap: ColumnMap | None) -> str:
    return " | ".join(cmap.formats) if cmap else ""


def _formats(value: str) -> str | list[str] | None:
    parts = [p.strip() for p in value.split("|") if p.strip()]
    return None if not parts else parts[0] if len(parts) == 1 else parts


def _initial_values(preview: service.Preview) -> dict[str, str]:
    mapping = preview.mapping
    values = {
        "source": mapping.source,
        "timezone": mapping.timezone,
        "unknown_customers": mapping.unknown_customers,
        "unknown_products": mapping.unknown_products,
        "dry_run": "",
    }
    for i, column in enumerate(preview.columns):
        cmap = mapping.column_maps.get(column)
        field = cmap.field if cmap and cmap.field != "ignore" else IGNORE
        values[f"col-{i}"] = field
        values[f"fmt-{i}"] = _format_text(cmap) if field else ""
    return values


def _submitted_values(form: FormData, preview: service.Preview) -> dict[str, str]:
    values = {name: text(form, name) for name in ("source", "timezone", "unknown_customers", "unknown_products")}
    values["dry_run"] = "on" if form.get("dry_run") else ""
    for i in range(len(preview.columns)):
        values[f"col-{i}"] = text(form, f"col-{i}")
        values[f"fmt-{i}"] = text(form, f"fmt-{i}")
    return values


class _FormErrors(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def _build_mapping(kind: ImportKind, preview: service.Preview, values: dict[str, str]) -> Mapping:
    """The mapping the form describes, on top of the preset's (or the automatic) one.

    What the form does not show is kept from the preset: how the file is read (format,
    header, column names), defaults, returns prefix, order id template, and each column's
    number and id options while its field is unchanged.
    """
    base = preview.mapping
    names = {f.name for f in FIELDS[kind]}
    errors: dict[str, str] = {}
    columns: dict[str, Any] = {}
    for i, column in enumerate(preview.columns):
        field, fmt = values[f"col-{i}"], values[f"fmt-{i}"]
        if field == IGNORE:
            continue
        if field not in names:
            errors[f"col-{i}"] = f"{field!r} is not a field of {kind} imports."
            continue
        old = base.column_maps.get(column)
        if old is not None and old.field == field:
            cmap = old.model_dump(exclude_defaults=True)
            cmap["format"] = _formats(fmt)
        else:
            cmap = {"field": field, "format": _formats(fmt)}
        columns[column] = cmap
    if errors:
        raise _FormErrors(errors)
    data = base.model_dump(exclude_defaults=True, exclude={"columns"})
    data.update(
        kind=kind,
        columns=columns,
        source=values["source"] or "import",
        timezone=values["timezone"] or "UTC",
        unknown_customers=values["unknown_customers"] or base.unknown_customers,
        unknown_products=values["unknown_products"] or base.unknown_products,
    )
    return Mapping.model_validate(data)


def _form_key(field: str, preview: service.Preview) -> str:
    """Which input of the mapping form an error about `field` belongs beside ('' = above the form)."""
    head, _, rest = field.partition(".")
    if head in ("source", "timezone", "unknown_customers", "unknown_products") or head.startswith(("col-", "fmt-")):
        return head
    if head == "columns" and rest in preview.columns:
        return f"col-{preview.columns.index(rest)}"
    return ""


def _mapping_page(
    request: Request,
    upload: uploads.Upload,
    preview: service.Preview,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    kind = ImportKind(upload.kind)
    values = values if values is not None else _initial_values(preview)
    base = preview.mapping
    provided = sorted(set(base.defaults) | ({"order_id"} if base.order_id_template else set()))
    chosen = {values.get(f"col-{i}") for i in range(len(preview.columns))} | set(provided)
    missing = [" or ".join(group) for group in REQUIRED[kind] if not chosen.intersection(group)]
    samples = [
        [row[i] for row in preview.rows if i < len(row) and row[i] not in (None, "")][:3]
        for i in range(len(preview.columns))
    ]
    return render(
        request,
        "imports/mapping.html",
        {
            "title": "Map the columns",
            "active": "imports",
            "upload": upload,
            "size_text": _bytes(upload.size),
            "kind": kind,
            "kind_label": KIND_LABELS[kind],
            "preset_label": PRESET_LABELS.get(upload.preset, upload.preset) if upload.preset else None,
            "preview": preview,
            "samples": samples,
            "fields": FIELDS[kind],
            "required": [list(group) for group in REQUIRED[kind]],
            "provided": provided,
            "missing": missing,
            "values": values,
            "errors": errors or {},
            "time_zones": TIME_ZONES,
            "asks_customers": kind in (ImportKind.orders, ImportKind.interactions),
            "asks_products": kind == ImportKind.orders,
        },
        status_code=status,
    )


def _upload(request: Request, principal, token: str) -> uploads.Upload:
    return uploads.load(_directory(request), token, user_id=principal.user_id)


def _preview(request: Request, upload: uploads.Upload) -> service.Preview:
    try:
        return service.preview(
            upload.path(_directory(request)), ImportKind(upload.kind), preset_name=upload.preset or None
        )
    except PatronError as exc:
        # The file itself cannot be read (not CSV, not Parquet...): say so on the upload form.
        message = f"{upload.name} cannot be read: {exc.message}"
        raise PageResponse(
            _upload_page(request, {"kind": upload.kind, "preset": upload.preset or ""}, {"file": message}, 422)
        ) from None


@router.get("/uploads/{token}", response_class=HTMLResponse)
def mapping_form(request: Request, principal: PageImporter, token: str) -> Response:
    """The file's first rows, what was detected, and one select per column."""
    upload = _upload(request, principal, token)
    if upload.run_id is not None:
        return RedirectResponse(f"/imports/{upload.run_id}", status_code=303)
    return _mapping_page(request, upload, _preview(request, upload))


@router.post("/uploads/{token}", response_class=HTMLResponse)
def start_import(
    request: Request,
    session: SessionDep,
    principal: PageImporter,
    form: FormDep,
    background: BackgroundTasks,
    token: str,
) -> Response:
    """Record the run with the mapping chosen, then execute it in the background once committed."""
    directory = _directory(request)
    upload = _upload(request, principal, token)
    if upload.run_id is not None:  # sent twice: the first submit started it
        return RedirectResponse(f"/imports/{upload.run_id}", status_code=303)
    kind = ImportKind(upload.kind)
    preview = _preview(request, upload)
    values = _submitted_values(form, preview)
    try:
        mapping = _build_mapping(kind, preview, values)
        missing = mapping.missing_required(kind, preview.columns)
        if missing:
            raise _FormErrors({"": " ".join(f"Map a column to {m}." for m in missing)})
        run = service.start(
            session,
            kind=kind,
            path=upload.path(directory),
            mapping=mapping,
            file_name=upload.name,
            user_id=principal.user_id,
            actor=f"web:{principal.email}",
            dry_run=bool(values["dry_run"]),
        )
    except (_FormErrors, ValidationError, ValidationFailed, InvalidInput) as exc:
        errors: dict[str, str] = {}
        found = exc.errors if isinstance(exc, _FormErrors) else field_errors(exc)
        for field, message in found.items():
            key = _form_key(field, preview)
            errors[key] = f"{errors[key]} {message}" if key in errors else message
        page = _mapping_page(request, upload, preview, values=values, errors=errors, status=422)
        raise PageResponse(page) from None
    # Background tasks run after the session dependency has committed the run.
    background.add_task(_begin, request.app.state.engine, directory, upload, run.id)
    return RedirectResponse(f"/imports/{run.id}", status_code=303)


def _begin(engine, directory: Path, upload: uploads.Upload, run_id: int) -> None:
    uploads.mark_started(directory, upload, run_id)
    runner.launch(engine, run_id)


# --- one run --------------------------------------------------------------------------------


def _status_json(run) -> dict[str, Any]:
    p = runner.progress_of(run)
    return {
        "id": run.id,
        "status": p.status,
        "message": run.message,
        "rows_read": p.rows_read,
        "inserted": p.inserted,
        "updated": p.updated,
        "unchanged": p.unchanged,
        "rejected": p.rejected,
        "progress": p.fraction,
        "rows_per_second": round(p.rows_per_second, 1) if p.rows_per_second is not None else None,
        "bytes_read": p.bytes_read,
        "file_size": run.file_size,
    }


@router.get("/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, session: SessionDep, _: PageImporter, run_id: PathId) -> HTMLResponse:
    """The run: file, who and when, status, counts, live progress while it runs, the first errors."""
    run = service.get_run(session, run_id)
    status = _status_json(run)
    return render(
        request,
        "imports/run.html",
        {
            "title": f"Import {run.id}",
            "active": "imports",
            "run": run,
            "status": status,
            "size_text": _bytes(run.file_size),
            "stubs": sorted(((run.options or {}).get("stubs") or {}).items()),
            "errors": service.first_errors(session, run_id, limit=ERRORS_SHOWN),
            "errors_shown": ERRORS_SHOWN,
            "batch_size": service.BATCH_SIZE,
        },
    )


@router.get("/{run_id}/status")
def run_status(session: SessionDep, _: PageImporter, run_id: PathId) -> JSONResponse:
    """The run's counters and progress, polled by the run page while it runs."""
    return JSONResponse(_status_json(service.get_run(session, run_id)), headers=SECURITY_HEADERS)


@router.get("/{run_id}/errors.csv")
def error_report(
    session: Annotated[Session, Depends(get_session)], _: PageImporter, run_id: PathId
) -> StreamingResponse:
    """The rejected rows with their reasons, as a CSV download."""
    service.get_run(session, run_id)
    return error_report_response(session, run_id)


@router.post("/{run_id}/resume")
def resume(
    request: Request, session: SessionDep, _: PageImporter, form: FormDep, background: BackgroundTasks, run_id: PathId
) -> Response:
    """Carry on an interrupted run from its last committed batch."""
    run = service.get_run(session, run_id)
    if runner.display_status(run) == "running":
        raise Conflict(f"import {run_id} is still running; it can be resumed once it has stopped")
    run = service.resumable_run(session, run_id)
    background.add_task(runner.launch, request.app.state.engine, run.id)
    return RedirectResponse(f"/imports/{run.id}", status_code=303)
