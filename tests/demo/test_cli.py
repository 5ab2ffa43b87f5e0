"""`patron demo` and `patron generate` end to end, on SQLite files in a temporary folder."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patron.cli import app
from patron.db import get_engine, make_engine, session_scope
from patron.demo.cli import DEMO_EMAIL, DEMO_FILE, DEMO_PASSWORD
from patron.settings import get_settings
from patron.users import service as users

runner = CliRunner()


@pytest.fixture
def clean_settings(monkeypatch):
    """Settings and the engine are cached per process: reset them around each test."""
    monkeypatch.delenv("PATRON_DATABASE_URL", raising=False)
    monkeypatch.delenv("PATRON_DATABASE_URL_FILE", raising=False)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield monkeypatch
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def count(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def test_demo_builds_a_fresh_database_with_a_demo_admin(clean_settings, tmp_path):
    clean_settings.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--no-serve", "--customers", "200"])
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{tmp_path / DEMO_FILE}"
    assert count(url, "customers") == 200 and count(url, "orders") > 200
    assert DEMO_EMAIL in result.output and DEMO_PASSWORD in result.output
    assert "http://127.0.0.1:8000/" in result.output
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            user = users.authenticate(session, email=DEMO_EMAIL, password=DEMO_PASSWORD)
            assert user.role == "admin"
    finally:
        engine.dispose()

    # Running it again starts over instead of adding to the old file.
    result = runner.invoke(app, ["demo", "--no-serve", "--customers", "120", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert count(url, "customers") == 120 and count(url, "users") == 1


def test_demo_uses_patron_database_url_only_when_empty(clean_settings, tmp_path):
    clean_settings.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'mine.db'}"
    clean_settings.setenv("PATRON_DATABASE_URL", url)
    get_settings.cache_clear()
    result = runner.invoke(app, ["demo", "--no-serve", "--customers", "50"])
    assert result.exit_code == 0, result.output
    assert count(url, "customers") == 50
    assert not (tmp_path / DEMO_FILE).exists()

    result = runner.invoke(app, ["demo", "--no-serve", "--customers", "50"])
    assert result.exit_code == 1
    assert "already has customers" in result.output
    assert count(url, "customers") == 50


def test_generate_fills_the_configured_database_once(clean_settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'gen.db'}"
    clean_settings.setenv("PATRON_DATABASE_URL", url)
    get_settings.cache_clear()
    result = runner.invoke(app, ["generate", "--customers", "150", "--seed", "5", "--end", "2026-01-31"])
    assert result.exit_code == 0, result.output
    assert "order_lines" in result.output and "150" in result.output
    assert count(url, "customers") == 150
    last = make_engine(url)
    try:
        with last.connect() as conn:
            assert conn.execute(text("SELECT MAX(placed_at) FROM orders")).scalar_one() < "2026-01-31"
    finally:
        last.dispose()

    orders = count(url, "orders")
    result = runner.invoke(app, ["generate", "--customers", "150"])
    assert result.exit_code == 1
    assert "already has customers" in result.output
    assert count(url, "customers") == 150 and count(url, "orders") == orders


def test_generate_requires_a_size(clean_settings, tmp_path):
    clean_settings.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    result = runner.invoke(app, ["generate"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["generate", "--customers", "0"])
    assert result.exit_code == 2


def test_demo_serves_with_an_embedded_worker_in_one_command(tmp_path):
    """The one-command demo: the web server answers and its in-process worker runs the jobs
    due at the first start (loyalty-daily, segment-snapshots), so nothing else needs starting."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRON_")}
    env["PATRON_LOG_LEVEL"] = "warning"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "patron"), "demo", "--customers", "60", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"sqlite:///{tmp_path / DEMO_FILE}"
    try:
        deadline = time.monotonic() + 180
        finished: set[str] = set()
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    page = answer.status
            except OSError:
                continue
            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    finished = set(
                        conn.execute(text("SELECT name FROM scheduled_jobs WHERE last_outcome = 'ok'")).scalars()
                    )
            finally:
                engine.dispose()
            if {"loyalty-daily", "segment-snapshots"} <= finished:
                break
        assert proc.poll() is None, proc.stdout.read()
        assert page == 200
        assert {"loyalty-daily", "segment-snapshots"} <= finished
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "Embedded worker" in output, output
