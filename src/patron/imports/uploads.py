"""Files uploaded through the web UI: streamed straight to the import folder, never held in memory.

A multipart body is parsed as it arrives (python-multipart, the parser Starlette uses);
the file part is written in chunks to `<import_dir>/<token>-<name>` once the CSRF token
that precedes it in the form has been checked. A small `<token>.json` beside it remembers
the original name, the kind and preset chosen and who uploaded it, for the mapping step.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl

from anyio import to_thread
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from patron.errors import InvalidInput, NotFound
from patron.settings import Settings
from patron.validation import refuse_nul

UPLOAD_PATH = "/imports/new"  # the page the upload form posts to
# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD = 64_000
FILE_FIELD = "file"
MAX_FIELDS = 50
MAX_FIELD_BYTES = 10_000
MAX_PLAIN_FORM_BYTES = 64_000
# Uploads never turned into an import are removed after this long.
ABANDONED_AFTER_SECONDS = 24 * 3600
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def upload_body_limits(settings: Settings) -> dict[str, int]:
    """For the app's body-size middleware: the upload page takes a file of up to max_upload_bytes."""
    return {UPLOAD_PATH: settings.max_upload_bytes + FORM_OVERHEAD}


@dataclass
class Received:
    """A parsed upload form: its text fields and the file written to disk (if one was sent)."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    name: str = ""  # the file name as the browser sent it
    size: int = 0
    too_large: bool = False  # the file went over the limit and was discarded
    token: str = ""

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


@dataclass
class Upload:
    """An uploaded file waiting for its mapping (or already imported, when run_id is set)."""

    token: str
    file: str  # name on disk, inside the import folder
    name: str  # original name, for display
    size: int
    kind: str
    preset: str | None
    user_id: int
    created_at: str
    run_id: int | None = None

    def path(self, directory: Path) -> Path:
        return directory / self.file


def display_name(raw: str) -> str:
    """The last part of what the browser sent (old browsers send a whole path)."""
    return re.split(r"[\\/]", raw)[-1].strip()[:255]


def disk_name(token: str, name: str) -> str:
    """A unique, harmless file name that keeps the original's extensions (.csv.gz, .parquet, .txt)."""
    safe = _UNSAFE.sub("_", name).strip("._")[-100:] or "upload"
    return f"{token}-{safe}"


async def receive(
    request: Request, *, directory: Path, max_bytes: int, check_csrf: Callable[[str | None], None]
) -> Received:
    """Stream the request's form into `directory`; `check_csrf(token)` is called before a file byte is kept.

    A file over `max_bytes` is deleted as soon as it passes the limit and the rest of the
    body is read and dropped, so the browser gets the answer instead of a reset connection.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        # No file (a form sent without one, or a client that is not a browser): a small plain form.
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_PLAIN_FORM_BYTES:
                raise InvalidInput("send the file as multipart/form-data", detail={"field": FILE_FIELD})
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        check_csrf(fields.get("csrf_token"))
        refuse_nul(fields.items())
        return Received(fields=fields)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("the form has no multipart boundary", detail={"field": FILE_FIELD})
    received = Received()
    await to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
    stream = _Stream(received, directory, max_bytes, check_csrf)
    try:
        parser = MultipartParser(boundary, stream.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
            await stream.flush()
        parser.finalize()
        await stream.flush()
        # A form without a file part is checked here; one with a file was checked before writing it.
        check_csrf(received.fields.get("csrf_token"))
        refuse_nul(received.fields.items())
    except BaseException:
        stream.close()
        received.discard()
        raise
    stream.close()
    return received


class _Stream:
    """python-multipart callbacks (synchronous) queue work that flush() does off the event loop."""

    def __init__(self, received: Received, directory: Path, max_bytes: int, check_csrf):
        self.received = received
        self.directory = directory
        self.max_bytes = max_bytes
        self.check_csrf = check_csrf
        self.headers: dict[bytes, bytes] = {}
        self.header_name = b""
        self.header_value = b""
        self.name = ""
        self.data = bytearray()
        self.in_file = False  # the current part is the (first) file part
        self.skip_part = False  # a file part we do not keep (a second file, another field name)
        self.pending_open: str | None = None
        self.token_before_file: str | None = None
        self.pending: list[bytes] = []
        self.pending_close = False
        self.handle: IO[bytes] | None = None
        self.files_seen = 0
        self.field_count = 0

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value_cb,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.headers, self.data, self.in_file, self.skip_part = {}, bytearray(), False, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name = self.header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            self.field_count += 1
            if self.field_count > MAX_FIELDS:
                raise InvalidInput("the form has too many fields")
            return
        self.files_seen += 1
        filename = display_name(options[b"filename"].decode("utf-8", "replace"))
        if self.name != FILE_FIELD or self.files_seen > 1 or not filename:
            self.skip_part = True  # also the empty part a browser sends when no file was chosen
            return
        self.in_file = True
        self.received.name = filename
        self.pending_open = filename
        # The token must come before the file: what arrives after it does not count.
        self.token_before_file = self.received.fields.get("csrf_token")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            if not self.received.too_large:
                self.received.size += end - start
                if self.received.size > self.max_bytes:
                    self.received.too_large = True
                else:
                    self.pending.append(data[start:end])
        elif not self.skip_part:
            self.data += data[start:end]
            if len(self.data) > MAX_FIELD_BYTES:
                raise InvalidInput(f"the form field {self.name!r} is too long")

    def part_end(self) -> None:
        if self.in_file:
            self.pending_close = True
        elif not self.skip_part:
            self.received.fields[self.name] = self.data.decode("utf-8", "replace")

    async def flush(self) -> None:
        if self.pending_open is not None:
            # Nothing of the file is written before the form's CSRF token (sent ahead of it) is checked.
            self.check_csrf(self.token_before_file)
            token = secrets.token_hex(16)
            path = self.directory / disk_name(token, self.pending_open)
            self.handle = await to_thread.run_sync(path.open, "xb")
            self.received.path, self.received.token = path, token
            self.pending_open = None
        if self.received.too_large:
            self.pending.clear()
            if self.handle is not None:
                self.close()
                self.received.discard()
        elif self.pending and self.handle is not None:
            chunk = b"".join(self.pending)
            self.pending.clear()
            await to_thread.run_sync(self.handle.write, chunk)
        if self.pending_close:
            self.close()
            self.pending_close = False

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


# --- the uploads' metadata ------------------------------------------------------------------


def _meta_path(directory: Path, token: str) -> Path:
    return directory / f"{token}.json"


def save(directory: Path, received: Received, *, kind: str, preset: str | None, user_id: int) -> Upload:
    """Remember a received file for the mapping step (and forget abandoned ones)."""
    assert received.path is not None
    sweep(directory)
    upload = Upload(
        token=received.token,
        file=received.path.name,
        name=received.name,
        size=received.size,
        kind=kind,
        preset=preset,
        user_id=user_id,
        created_at=datetime.now(UTC).isoformat(),
    )
    _write(directory, upload)
    return upload


def _write(directory: Path, upload: Upload) -> None:
    tmp = _meta_path(directory, upload.token).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(upload)), encoding="utf-8")
    tmp.replace(_meta_path(directory, upload.token))


def load(directory: Path, token: str, *, user_id: int) -> Upload:
    """The upload `token` of this user; someone else's, or one that is gone, is not found."""
    missing = NotFound("This upload is not available any more. Upload the file again.")
    if not _TOKEN.match(token):
        raise missing
    try:
        upload = Upload(**json.loads(_meta_path(directory, token).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        raise missing from None
    if upload.user_id != user_id or not upload.path(directory).is_file():
        raise missing
    return upload


def mark_started(directory: Path, upload: Upload, run_id: int) -> None:
    """Record the run made from the upload: the file now belongs to it (a resume reads it again)."""
    upload.run_id = run_id
    _write(directory, upload)


def sweep(directory: Path, *, older_than: float = ABANDONED_AFTER_SECONDS) -> None:
    """Delete uploads that never became an import."""
    cutoff = time.time() - older_than
    for meta in directory.glob("*.json"):
        try:
            if meta.stat().st_mtime > cutoff or not _TOKEN.match(meta.stem):
                continue
            upload = Upload(**json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if upload.run_id is None:
            upload.path(directory).unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
