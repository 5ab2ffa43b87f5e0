"""The run's reader: summaries first, purchase insights still being read, and nothing left behind.

read_inputs returns once the summaries are in; the insights query goes on (in a thread
for PostgreSQL, in the child process for SQLite) and RunInputs.insights() waits for it.
Closing the inputs before that ends the query and frees its process, thread and files.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date

import polars as pl
import pytest

from patron import migrate
from patron.analytics import queries, reader, snapshot
from patron.analytics.engine import source_of
from patron.analytics.reader import read_inputs
from patron.db import make_engine
from patron.errors import InvalidInput
from tests.analytics.helpers import at, build

AS_OF = date(2026, 6, 30)
# Three buyers: two with orders in the insights' year, one whose orders are all older.
HISTORIES = [
    [(at(2026, 1, 5), "20.00"), (at(2026, 3, 9), "35.50"), (at(2026, 6, 1), "12.25")],
    [(at(2025, 11, 20), "80.00")],
    [(at(2024, 2, 2), "15.00"), (at(2024, 9, 9), "15.00")],
]


def _leftovers() -> tuple[list[str], list[str]]:
    threads = [t.name for t in threading.enumerate() if t.name.startswith("patron-analytics-")]
    folders = glob.glob(os.path.join(tempfile.gettempdir(), "patron-analyze-*"))
    return threads, folders


@pytest.fixture
def world(fresh_engine):
    ids = build(fresh_engine, HISTORIES)
    return fresh_engine, ids


def test_insights_arrive_after_the_summaries_and_cover_the_window_buyers(world):
    engine, ids = world
    before = _leftovers()
    with read_inputs(engine, as_of=AS_OF, holdout_days=None, cost_margin=False) as inputs:
        assert inputs.summaries["customer_id"].to_list() == sorted(ids)
        assert inputs.summaries["n_orders"].to_list() == [3, 1, 2]
        insights = inputs.insights()
        assert inputs.insights() is insights  # waited for once, then kept
    assert insights["customer_id"].to_list() == [ids[0], ids[1]]
    assert insights["n_orders"].to_list() == [3, 1]
    assert insights["spend"].to_list() == [0.0, 0.0]  # build() adds orders without lines
    assert insights["preferred_channel"].to_list() == ["online", "online"]
    assert insights.schema == pl.Schema(queries.INSIGHTS_SCHEMA)
    assert "insights_query" in inputs.timings
    assert _leftovers() == before


def test_closing_before_the_insights_are_read_leaves_no_process_thread_or_folder(world):
    engine, _ = world
    before = _leftovers()
    inputs = read_inputs(engine, as_of=AS_OF, holdout_days=None, cost_margin=False)
    inputs.close()
    inputs.close()  # a second close is harmless
    assert inputs.pending_insights.done()
    assert _leftovers() == before


def test_without_insights_nothing_is_left_running(world):
    engine, _ = world
    before = _leftovers()
    inputs = read_inputs(engine, as_of=AS_OF, holdout_days=None, cost_margin=False, insights=False)
    assert _leftovers() == before
    with pytest.raises(RuntimeError, match="insights=False"):
        inputs.insights()


def test_a_failing_insights_query_is_raised_where_the_insights_are_waited_for(postgres_engine, monkeypatch):
    # In this process only (PostgreSQL): the SQLite reader's child imports its own queries.
    build(postgres_engine, HISTORIES)

    def broken(conn, **_):
        raise InvalidInput("the insights query broke")

    monkeypatch.setattr(queries, "purchase_insights", broken)
    before = _leftovers()
    with read_inputs(postgres_engine, as_of=AS_OF, holdout_days=None, cost_margin=False) as inputs:
        assert inputs.summaries.height == 3
        with pytest.raises(InvalidInput, match="the insights query broke"):
            inputs.insights()
    assert _leftovers() == before


def test_closing_while_the_order_lines_are_copied_skips_the_insights_query(postgres_engine, monkeypatch):
    # In this process only (PostgreSQL). The order lines are copied by the insights thread;
    # a run that ends meanwhile must not wait for the insights query after the copy.
    build(postgres_engine, HISTORIES)
    copying, release, asked = threading.Event(), threading.Event(), []
    real_materialize = snapshot.materialize

    def slow_materialize(conn, tables=snapshot.TABLES):
        if tables == ("order_lines",):
            copying.set()
            release.wait(10)
        real_materialize(conn, tables)

    monkeypatch.setattr(snapshot, "materialize", slow_materialize)
    monkeypatch.setattr(queries, "purchase_insights", lambda conn, **_: asked.append(1))
    before = _leftovers()
    inputs = read_inputs(postgres_engine, as_of=AS_OF, holdout_days=None, cost_margin=False)
    assert copying.wait(10)
    closing = threading.Thread(target=inputs.close)
    closing.start()
    time.sleep(0.5)  # for close() to mark the run as ending; it then waits for the copy
    release.set()
    closing.join(10)
    assert not closing.is_alive()
    with pytest.raises(InterruptedError, match="ended before the purchase insights were read"):
        inputs.insights()
    assert asked == []
    assert _leftovers() == before


def test_a_reader_process_that_dies_is_reported_with_its_exit_status():
    # A request without its source: the child fails before it reads anything.
    child = reader._Child({"as_of": AS_OF.isoformat(), "holdout_days": None, "cost_margin": False, "insights": True})
    try:
        with pytest.raises(reader.ReaderFailed, match=r"exit status 1\): (.|\n)*KeyError: 'source'"):
            child.next_message()
    finally:
        child.close()
    assert not os.path.exists(child.folder.name)


def test_the_reader_process_imports_neither_sqlalchemy_nor_the_models(tmp_path):
    # The run waits for the child to start, and SQLAlchemy and the ORM models doubled its
    # imports: it gets the database as a Source instead (see patron.analytics.reader).
    engine = make_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    migrate.upgrade(engine)
    engine.dispose()
    request = {
        "source": source_of(engine).as_json(),
        "as_of": AS_OF.isoformat(),
        "holdout_days": None,
        "cost_margin": True,
        "insights": True,
        "folder": str(tmp_path),
    }
    probe = (
        "import sys\n"
        "from patron.analytics import reader\n"
        "reader._child_main()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' or m.startswith('patron.models'))\n"
        "print('heavy', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], input=json.dumps(request), capture_output=True, text=True, check=True
    )
    kinds = [line.split(" ", 1)[0] for line in result.stdout.splitlines()]
    assert kinds[-3:] == ["inputs", "insights", "heavy"]  # the child did its whole job
    assert result.stdout.splitlines()[-1] == "heavy []"
