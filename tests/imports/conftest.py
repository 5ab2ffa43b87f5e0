"""Fixtures for the import tests: run a real import of a small file against a fresh database."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from patron.db import session_scope
from patron.imports import service
from patron.imports.mapping import Mapping
from patron.models import ImportRun
from patron.models.enums import ImportKind


@dataclass
class LoaderHarness:
    """Writes a file to tmp_path, imports it through the service (start, commit, execute)."""

    engine: Engine
    tmp_path: Path

    def write(self, content: str | bytes, name: str = "data.csv") -> Path:
        path = self.tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def run(
        self,
        kind: str,
        content: str | bytes,
        *,
        mapping: Mapping | dict | None = None,
        preset: str | None = None,
        name: str = "data.csv",
        batch_size: int = service.BATCH_SIZE,
        dry_run: bool = False,
    ) -> ImportRun:
        path = self.write(content, name)
        if isinstance(mapping, dict):
            mapping = Mapping.model_validate(mapping)
        with session_scope(self.engine) as session:
            run = service.start(
                session, kind=ImportKind(kind), path=path, mapping=mapping, preset_name=preset, dry_run=dry_run
            )
            run_id = run.id
        return service.execute(self.engine, run_id, batch_size=batch_size)

    def errors(self, run_id: int) -> list[dict[str, str]]:
        """The run's error report (service.write_error_report) as dicts."""
        out = io.StringIO()
        with session_scope(self.engine) as session:
            service.write_error_report(session, run_id, out)
        return list(csv.DictReader(io.StringIO(out.getvalue())))

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)


@pytest.fixture
def loader_harness(fresh_engine, tmp_path) -> LoaderHarness:
    """Imports into an empty migrated database of the test's own (execute() commits)."""
    return LoaderHarness(fresh_engine, tmp_path)
