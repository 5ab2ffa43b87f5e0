"""What the import-runs API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from patron.imports import runner
from patron.models import ImportRun as ImportRunRow
from patron.models.enums import ImportKind

DisplayStatus = Literal["running", "interrupted", "completed", "failed"]


class ImportRun(BaseModel):
    """One file import: who ran it, on which file, and how far it got."""

    id: int
    kind: ImportKind
    status: DisplayStatus = Field(
        description="'interrupted': still marked running, but no batch has been committed for 2 minutes "
        "and no thread of this server is working on it; it can be resumed."
    )
    message: str | None = Field(description="The summary when completed; the reason when failed.")
    file_name: str
    file_sha256: str
    file_size: int = Field(description="Bytes.")
    dry_run: bool = Field(description="Checked and counted, nothing saved.")
    user_id: int | None
    actor: str = Field(description="Who started it, e.g. 'web:ann@shop.example' or 'cli:root'.")
    started_at: datetime
    heartbeat_at: datetime = Field(description="When the last batch was committed.")
    finished_at: datetime | None
    records_done: int = Field(description="Records of the file consumed by committed batches (the resume point).")
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int = Field(description="Rows refused; each is in the error report with its reason.")
    stubs: dict[str, int] = Field(description="Records created for unknown references, e.g. {'customers': 3}.")
    progress: float | None = Field(
        description="Share of the file read (0 to 1) while this server executes it; 1 when completed."
    )
    rows_per_second: float | None

    @classmethod
    def of(cls, run: ImportRunRow) -> ImportRun:
        p = runner.progress_of(run)
        return cls(
            id=run.id,
            kind=run.kind,
            status=p.status,
            message=run.message,
            file_name=run.file_name,
            file_sha256=run.file_sha256,
            file_size=run.file_size,
            dry_run=run.dry_run,
            user_id=run.user_id,
            actor=run.actor,
            started_at=run.started_at,
            heartbeat_at=run.heartbeat_at,
            finished_at=run.finished_at,
            records_done=run.records_done,
            rows_read=p.rows_read,
            inserted=p.inserted,
            updated=p.updated,
            unchanged=p.unchanged,
            rejected=p.rejected,
            stubs=dict((run.options or {}).get("stubs") or {}),
            progress=p.fraction,
            rows_per_second=round(p.rows_per_second, 1) if p.rows_per_second is not None else None,
        )


class ImportRunPage(BaseModel):
    items: list[ImportRun]
    next_cursor: str | None
