"""The import-runs API: list runs, read one with its counts and progress, download its error report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from patron.models import ImportRowError, ImportRun
from patron.models.enums import ImportKind, ImportStatus, Role
from patron.users.permissions import Permission, allows
from tests.imports.live_app import live_fixture  # noqa: F401  (a fixture)
from tests.imports.test_pages import start_orders

URL = "/api/v1/imports"


def create_run(session, **fields) -> ImportRun:
    now = datetime.now(UTC)
    values = dict(
        kind=ImportKind.orders, file_name="orders.csv", file_path="/srv/patron/imports/abc-orders.csv",
        file_sha256="ab" * 32, file_size=1234, options={"mapping": {}, "stubs": {"customers": 2}},
        actor="cli:root", started_at=now, heartbeat_at=now,
    )  # fmt: skip
    values.update(fields)
    run = ImportRun(**values)
    session.add(run)
    session.flush()
    return run


def test_list_runs_newest_first_with_a_cursor(admin, session):
    base = datetime.now(UTC) - timedelta(hours=1)
    made = [
        create_run(session, started_at=base + timedelta(minutes=i), status=ImportStatus.completed) for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = admin.get(URL, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [run["id"] for run in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    mine = [i for i in seen if i in {m.id for m in made}]
    assert mine == [m.id for m in reversed(made)]
    assert len(seen) == len(set(seen))


def test_read_a_run(admin, session):
    run = create_run(
        session, status=ImportStatus.completed, rows_read=10, inserted=6, updated=2, unchanged=1, rejected=1,
        records_done=10, message="10 rows read", finished_at=datetime.now(UTC),
    )  # fmt: skip
    body = admin.get(f"{URL}/{run.id}").json()
    assert body["status"] == "completed" and body["kind"] == "orders"
    assert (body["rows_read"], body["inserted"], body["updated"], body["unchanged"], body["rejected"]) == (
        10,
        6,
        2,
        1,
        1,
    )
    assert body["file_name"] == "orders.csv" and body["file_sha256"] == "ab" * 32 and body["file_size"] == 1234
    assert body["actor"] == "cli:root" and body["message"] == "10 rows read"
    assert body["stubs"] == {"customers": 2} and body["progress"] == 1.0
    assert "file_path" not in body and "options" not in body  # server paths stay on the server


def test_a_stale_running_run_reads_as_interrupted(admin, session):
    old = datetime.now(UTC) - timedelta(minutes=5)
    stale = create_run(session, started_at=old, heartbeat_at=old)
    fresh = create_run(session)
    assert admin.get(f"{URL}/{stale.id}").json()["status"] == "interrupted"
    assert admin.get(f"{URL}/{fresh.id}").json()["status"] == "running"


def test_error_report_csv(admin, session):
    run = create_run(session, status=ImportStatus.completed, rejected=2)
    session.add_all(
        [
            ImportRowError(run_id=run.id, row=9, column="quantity", value="lots", reason="not a whole number"),
            ImportRowError(run_id=run.id, row=3, column=None, value=None, reason='has 3 fields, "quoted"'),
            ImportRowError(run_id=run.id, row=12, column="name", value="=cmd|'/C calc'!A0", reason="too long"),
            ImportRowError(run_id=run.id, row=14, column="quantity", value="-2", reason="must be positive"),
        ]
    )
    session.flush()
    r = admin.get(f"{URL}/{run.id}/errors")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert f"import-{run.id}-errors.csv" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows == [
        ["row", "column", "value", "reason"],
        ["3", "", "", 'has 3 fields, "quoted"'],
        ["9", "quantity", "lots", "not a whole number"],
        ["12", "name", "'=cmd|'/C calc'!A0", "too long"],  # text, not a formula to run
        ["14", "quantity", "-2", "must be positive"],  # a number stays a number
    ]


def test_unknown_run_is_404(admin):
    for path in (f"{URL}/999999", f"{URL}/999999/errors"):
        r = admin.get(path)
        assert r.status_code == 404 and r.json()["error"] == "import 999999 not found"


@pytest.mark.parametrize("role", [r.value for r in Role if not allows(r, Permission.import_data)])
def test_roles_without_import_data_cannot_see_runs(api, session, role):
    run = create_run(session)
    client = api(role)
    for path in (URL, f"{URL}/{run.id}", f"{URL}/{run.id}/errors"):
        r = client.get(path)
        assert r.status_code == 403 and "import_data" in r.json()["error"]


def test_a_web_import_is_visible_through_the_api(live):
    _, run_id = start_orders(live, live.web())
    client = live.api("marketer")
    body = client.get(f"{URL}/{run_id}").json()
    assert body["status"] == "completed"
    assert (body["rows_read"], body["inserted"], body["rejected"]) == (5, 3, 2)
    assert body["actor"].startswith("web:importer")
    assert [run["id"] for run in client.get(URL).json()["items"]] == [run_id]
    rows = list(csv.DictReader(io.StringIO(client.get(f"{URL}/{run_id}/errors").text)))
    assert {r["value"] for r in rows} >= {"last tuesday", "lots"}
