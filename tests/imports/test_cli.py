"""`patron import` and `patron imports` against a real database on SQLite and PostgreSQL,
including an import killed with SIGKILL halfway and resumed with `--resume`."""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patron import migrate
from patron.cli import app
from patron.db import READ_ONLY, get_engine, make_engine
from patron.settings import get_settings

runner = CliRunner()

ORDERS = """order_id,customer_id,placed_at,sku,product_name,quantity,unit_price
A1,c1,2024-01-02 10:00:00,MUG,Mug,2,5.00
A1,c1,2024-01-02 10:00:00,TEA,Tea,1,3.50
B2,c2,2024-01-03 09:30:00,TEA,Tea,4,3.50
B3,c2,2024-01-04 09:30:00,TEA,Tea,-1,3.50
B4,c3,someday,MUG,Mug,1,5.00
"""


@pytest.fixture
def db_url(database_factory, monkeypatch) -> str:
    """A fresh migrated database of the backend under test, as PATRON_DATABASE_URL."""
    url = database_factory.new_url()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables unwrapped
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def scalar(url: str, sql: str, **params):
    return query(url, sql, **params)[0][0]


def flat(output: str) -> str:
    """The output with line breaks and runs of spaces made single spaces (Rich wraps)."""
    return " ".join(output.split())


def summary_value(output: str, label: str) -> int:
    match = re.search(rf"│ {label}\s+│\s+([\d,]+)\s+│", output)
    assert match, f"no {label!r} line in:\n{output}"
    return int(match.group(1).replace(",", ""))


def test_import_prints_a_summary_and_writes_the_error_file(db_url, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS)
    errors = tmp_path / "out" / "rejected.csv"
    errors.parent.mkdir()

    r = invoke("import", "orders", source, "--unknown", "stub", "--errors", errors, "--batch-size", "100")

    assert r.exit_code == 0, r.output
    assert "Import 1: orders from orders.csv" in flat(r.output)
    assert [summary_value(r.output, k) for k in ("read", "inserted", "updated", "unchanged", "rejected")] == [
        5,
        3,
        0,
        0,
        2,
    ]
    assert summary_value(r.output, r"new customers \(stubs\)") == 2
    assert summary_value(r.output, r"new products \(stubs\)") == 2
    assert f"2 rows rejected: written to {errors}." in r.output.replace("\n", "")
    with errors.open(newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [
            ["row", "column", "value", "reason"],
            ["5", "quantity", "", "quantity must be positive (returns are recorded separately)"],
            ["6", "placed_at", "someday", "not a date and time (expected ISO 8601, e.g. 2026-11-23 10:15:00)"],
        ]
    assert query(db_url, "SELECT external_id FROM orders ORDER BY external_id") == [("A1",), ("B2",)]
    assert query(db_url, "SELECT actor, status FROM import_runs") == [(f"cli:{getpass.getuser()}", "completed")]


def test_a_second_run_of_the_same_file_is_all_unchanged(db_url, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS)
    assert invoke("import", "orders", source, "--unknown", "stub").exit_code == 0
    r = invoke("import", "orders", source, "--unknown", "stub")
    assert r.exit_code == 0, r.output
    assert [summary_value(r.output, k) for k in ("inserted", "updated", "unchanged", "rejected")] == [0, 0, 3, 2]
    assert scalar(db_url, "SELECT COUNT(*) FROM orders") == 2


def test_unknown_customers_are_rejected_without_unknown_stub(db_url, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS)
    r = invoke("import", "orders", source)
    assert r.exit_code == 1
    assert "no row of the file is valid; see the error report" in r.output
    assert scalar(db_url, "SELECT COUNT(*) FROM orders") == 0
    report = invoke("imports", "--errors", "1")
    assert report.exit_code == 0
    rows = list(csv.reader(io.StringIO(report.output)))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert rows[1] == [
        "2",
        "order_id",
        "A1",
        "unknown customer c1 (not in Patron; import customers first or allow stubs)",
    ]
    assert [r[0] for r in rows[1:]] == ["2", "3", "4", "5", "6"]


def test_no_valid_row_exits_1_with_the_message_and_the_error_file(db_url, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("order_id,customer_id,placed_at,total\nX1,c1,yesterday,5.00\nX2,c1,2024-01-01,lots\n")
    errors = tmp_path / "errors.csv"
    r = invoke("import", "orders", source, "--unknown", "stub", "--errors", errors)
    assert r.exit_code == 1
    assert "Error: no row of the file is valid; see the error report" in r.output
    assert [row[0] for row in csv.reader(errors.open())] == ["row", "2", "3"]
    assert query(db_url, "SELECT status, message FROM import_runs") == [
        ("failed", "no row of the file is valid; see the error report")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "magento"], "unknown preset 'magento'; choose from cdnow, online-retail, shopify"),
        (["--preset", "magento", "--unknown", "stub"], "unknown preset 'magento'"),
        (["--unknown", "maybe"], "--unknown must be 'stub' or 'reject'"),
        (["--encoding", "klingon"], "unknown encoding 'klingon'; use utf-8 or latin-1"),
    ],
)
def test_bad_options_exit_1_with_a_message(db_url, tmp_path, args, message):
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS)
    r = invoke("import", "orders", source, *args)
    assert r.exit_code == 1
    assert message in flat(r.output)
    assert scalar(db_url, "SELECT COUNT(*) FROM orders") == 0


def test_a_missing_column_or_file_exits_1(db_url, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("order_id,customer_id,sku\nA1,c1,MUG\n")
    r = invoke("import", "orders", source)
    assert r.exit_code == 1
    assert "the file has no column for placed_at (columns found: order_id, customer_id, sku)" in r.output
    r = invoke("import", "orders", tmp_path / "nope.csv")
    assert r.exit_code == 1 and "does not exist" in r.output
    r = invoke("import")
    assert r.exit_code == 1 and "give KIND and FILE (or --resume)" in r.output
    assert scalar(db_url, "SELECT COUNT(*) FROM import_runs") == 0


def test_dry_run_counts_and_reports_but_saves_nothing(db_url, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS)
    errors = tmp_path / "errors.csv"
    r = invoke("import", "orders", source, "--unknown", "stub", "--dry-run", "--errors", errors)
    assert r.exit_code == 0, r.output
    assert "Dry run: nothing was saved." in r.output
    assert [summary_value(r.output, k) for k in ("read", "inserted", "rejected")] == [5, 3, 2]
    assert [row[0] for row in csv.reader(errors.open())] == ["row", "5", "6"]
    for table in ("orders", "order_lines", "customers", "products"):
        assert scalar(db_url, f"SELECT COUNT(*) FROM {table}") == 0, table
    listing = invoke("imports")
    assert "completed (dry run)" in listing.output


def test_a_mapping_file_with_semicolons_latin1_and_no_header(db_url, tmp_path):
    source = tmp_path / "kasse.csv"
    source.write_bytes("K-1;Müller;05.03.2024 14:22;12,50\nK-2;Böhm;06.03.2024 09:00;1.234,00\n".encode("latin-1"))
    mapping = tmp_path / "kasse.yaml"
    mapping.write_text(
        "kind: orders\n"
        "column_names: [bon, kunde, zeit, betrag]\n"
        "columns:\n"
        "  bon: order_id\n"
        "  kunde: customer_id\n"
        "  zeit: {field: placed_at, format: '%d.%m.%Y %H:%M'}\n"
        "  betrag: {field: total, decimal: ','}\n"
        "timezone: Europe/Berlin\n"
        "defaults: {currency: EUR, channel: in_store}\n",
        encoding="utf-8",
    )
    r = invoke(
        "import", "orders", source, "--mapping", mapping, "--no-header", "--delimiter", ";", "--source", "till",
        "--unknown", "stub",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = query(db_url, "SELECT external_id, total, currency, channel FROM orders ORDER BY external_id")
    assert [(e, round(float(t), 2), c, ch) for e, t, c, ch in rows] == [
        ("K-1", 12.5, "EUR", "in_store"),
        ("K-2", 1234.0, "EUR", "in_store"),
    ]
    assert query(db_url, "SELECT external_id FROM customer_external_ids WHERE source = 'till' ORDER BY 1") == [
        ("Böhm",),
        ("Müller",),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [not, a, mapping]\n")
    r = invoke("import", "orders", source, "--mapping", bad)
    assert r.exit_code == 1 and "bad.yaml is not valid" in r.output

    # A "billion laughs" file: nine lines that a plain YAML loader expands to 10^9 strings.
    bomb = tmp_path / "bomb.yaml"
    levels = ['a0: &a0 ["lol"]'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb.write_text("\n".join(levels) + "\ncolumns: *a8\n")
    r = invoke("import", "orders", source, "--mapping", bomb)
    assert r.exit_code == 1 and "aliases (*a0) are not allowed" in flat(r.output), r.output


def test_imports_lists_runs_newest_first(db_url, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text(ORDERS)
    second = tmp_path / "second.csv"
    second.write_text(ORDERS.replace("A1", "A9"))
    invoke("import", "orders", first, "--unknown", "stub")
    invoke("import", "orders", second, "--unknown", "stub", "--dry-run")

    r = invoke("imports")

    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if "first.csv" in line or "second.csv" in line]
    assert len(lines) == 2 and "second.csv" in lines[0] and "first.csv" in lines[1]
    assert hashlib.sha256(first.read_bytes()).hexdigest()[:12] in lines[1]
    cells = [c.strip() for c in lines[1].split("│") if c.strip()]
    assert cells[0] == "1" and cells[1] == "orders" and "completed" in cells
    assert cells[-5:] == ["5", "3", "0", "0", "2"]
    assert invoke("imports", "--errors", "99").exit_code == 1


def test_resume_with_nothing_to_resume(db_url):
    r = invoke("import", "--resume")
    assert r.exit_code == 1 and "there is no unfinished import to resume" in r.output


# -- killed with SIGKILL and resumed ---------------------------------------------------------------


def write_big_orders(path: Path, n_orders: int) -> pl.DataFrame:
    """An orders file of 1-3 lines per order; returns the rows as numbers for the expected figures."""
    rng = np.random.default_rng(2026)
    oid = np.repeat(np.arange(n_orders), rng.integers(1, 4, n_orders))
    raw = pl.DataFrame(
        {
            "o": oid,
            "c": rng.integers(0, 5000, n_orders)[oid],
            "day": rng.integers(0, 365, n_orders)[oid],
            "s": rng.integers(0, 300, len(oid)),
            "quantity": rng.integers(1, 6, len(oid)),
            "cents": rng.integers(1, 20000, len(oid)),
        }
    )
    raw.select(
        pl.format("R{}", "o").alias("order_id"),
        pl.format("C{}", "c").alias("customer_id"),
        (pl.datetime(2024, 1, 1) + pl.duration(days="day", seconds=pl.col("o") % 86400))
        .dt.strftime("%Y-%m-%d %H:%M:%S")
        .alias("placed_at"),
        pl.format("SKU-{}", "s").alias("sku"),
        "quantity",
        pl.format("{}.{}", pl.col("cents") // 100, (pl.col("cents") % 100).cast(pl.String).str.zfill(2)).alias(
            "unit_price"
        ),
    ).write_csv(path)
    return raw


def patron_process(*args: str | Path, url: str, output: Path) -> subprocess.Popen:
    """`patron ...` in a process of its own, printing to `output` (a file, so a full pipe
    never stalls it). patron.cli has no __main__, so the process calls its app."""
    env = {**os.environ, "PATRON_DATABASE_URL": url, "COLUMNS": "200"}
    code = "import sys; from patron.cli import app; sys.exit(app(prog_name='patron'))"
    with output.open("w") as out:
        return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, stdout=out, stderr=out)


def test_an_import_killed_halfway_resumes_from_the_last_committed_batch(db_url, tmp_path):
    source = tmp_path / "big_orders.csv"
    raw = write_big_orders(source, 60_000)
    rows = raw.height
    batch = 5000
    assert rows > 5 * batch  # several committed batches before the end
    engine = make_engine(db_url)

    first_log = tmp_path / "first.log"
    proc = patron_process(
        "import", "orders", source, "--unknown", "stub", "--batch-size", batch, url=db_url, output=first_log
    )
    try:
        done = 0
        give_up = time.monotonic() + 900  # a hang guard, not a speed check
        while proc.poll() is None and time.monotonic() < give_up:
            # A reader (deferred BEGIN on SQLite): it looks beside the import's write
            # transactions instead of queuing for the write lock between its batches.
            with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
                done = conn.execute(text("SELECT COALESCE(MAX(records_done), 0) FROM import_runs")).scalar_one()
            if done > 2 * batch:  # at least three batches committed
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the import ended before it could be killed:\n{first_log.read_text()}"
        assert done > 2 * batch, f"no batch committed:\n{first_log.read_text()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with engine.connect() as conn:
        run_id, status, done, read = conn.execute(
            text("SELECT id, status, records_done, rows_read FROM import_runs")
        ).one()
        lines_before = conn.execute(text("SELECT COUNT(*) FROM order_lines")).scalar_one()
    # Killed halfway: some batches committed (never part of one), the rest not read.
    assert status == "running"
    assert 0 < done < rows and read == done
    assert lines_before == done  # every row of every committed batch is a line, and nothing more

    resumed_log = tmp_path / "resumed.log"
    resumed = patron_process("import", "--resume", "--batch-size", batch, url=db_url, output=resumed_log)
    resumed.wait(timeout=900)
    output = resumed_log.read_text()
    assert resumed.returncode == 0, output
    assert f"Resuming import {run_id} (big_orders.csv) after {done:,} rows." in output

    expected_orders = raw["o"].n_unique()
    expected_cents = int((raw["quantity"] * raw["cents"]).sum())
    with engine.connect() as conn:
        run = conn.execute(
            text("SELECT status, rows_read, records_done, inserted, updated, unchanged, rejected FROM import_runs")
        ).one()
        assert tuple(run) == ("completed", rows, rows, rows, 0, 0, 0)
        assert conn.execute(text("SELECT COUNT(*) FROM orders")).scalar_one() == expected_orders
        assert conn.execute(text("SELECT COUNT(DISTINCT external_id) FROM orders")).scalar_one() == expected_orders
        total = conn.execute(text("SELECT CAST(ROUND(SUM(total) * 100) AS BIGINT) FROM orders")).scalar_one()
        assert total == expected_cents
        assert conn.execute(text("SELECT COUNT(*) FROM order_lines")).scalar_one() == rows
        assert conn.execute(text("SELECT SUM(quantity) FROM order_lines")).scalar_one() == int(raw["quantity"].sum())
        # Each order has exactly its lines: per-order line counts match the file.
        per_order = dict(
            conn.execute(
                text("SELECT o.external_id, COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id GROUP BY 1")
            ).all()
        )
        assert conn.execute(text("SELECT COUNT(*) FROM customers")).scalar_one() == raw["c"].n_unique()
        assert conn.execute(text("SELECT COUNT(*) FROM products")).scalar_one() == raw["s"].n_unique()
    engine.dispose()
    expected_lines = raw.group_by("o").len()
    assert per_order == {f"R{o}": n for o, n in expected_lines.iter_rows()}

    again = invoke("import", "--resume")
    assert again.exit_code == 1 and "there is no unfinished import to resume" in again.output
