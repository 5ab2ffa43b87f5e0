"""Import in the web UI: upload, preview and mapping, the run in the background, its page and error report."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.api.app import create_app
from patron.db import session_scope
from patron.imports.mapping import Mapping, mapping_json
from patron.imports.service import file_sha256
from patron.models import ImportRowError, ImportRun, Order
from patron.models.enums import ImportKind, ImportStatus, Role
from patron.settings import Settings
from patron.users.permissions import Permission, allows
from tests.imports.live_app import ORDERS_CSV, LiveApp, live_fixture, upload, wait_for  # noqa: F401  (a fixture)

NO_IMPORT = [r.value for r in Role if not allows(r, Permission.import_data)]


def token_of(response) -> str:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/imports/uploads/([0-9a-f]{32})", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


def selects(html: str) -> dict[str, str]:
    """{column select name: selected field} as the mapping page renders them."""
    out = {}
    for name, body in re.findall(r'<select name="(col-\d+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        out[name] = chosen.group(1) if chosen else ""
    return out


def mapping_form(html: str, **changes: str) -> dict[str, str]:
    """The mapping form's values as rendered, with `changes` applied."""
    data = selects(html)
    for name, value in re.findall(r'<input name="(fmt-\d+)" value="([^"]*)"', html):
        data[name] = value
    data.update(source="webshop", timezone="Europe/London", unknown_customers="stub", unknown_products="stub")
    data.update(changes)
    return data


def run_of(live, run_id: int) -> ImportRun:
    with Session(live.engine) as s:
        return s.get(ImportRun, run_id)


def start_orders(live, client, **changes):
    token = token_of(upload(client, ORDERS_CSV))
    page = client.get(f"/imports/uploads/{token}")
    assert page.status_code == 200
    # Email (column 2) and Price (column 7) are not named like fields: map them by hand.
    form = mapping_form(page.text, **{"col-2": "customer_email", "col-7": "unit_price"}, **changes)
    r = client.submit(f"/imports/uploads/{token}", form)
    assert r.status_code == 303, r.text
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    wait_for(run_id)
    return token, run_id


def test_upload_preview_map_run_and_read_the_summary(live):
    client = live.web("marketer")
    r = upload(client, ORDERS_CSV)
    token = token_of(r)
    stored = [p for p in live.import_dir.iterdir() if p.name.startswith(token) and p.suffix == ".csv"]
    assert len(stored) == 1 and stored[0].read_text() == ORDERS_CSV  # streamed to the import folder

    page = client.get(f"/imports/uploads/{token}")
    assert page.status_code == 200
    html = page.text
    assert "orders.csv" in html and "CSV" in html and "utf-8" in html and "comma" in html
    assert 'id="preview-table"' in html and "last tuesday" in html  # the first rows
    automatic = selects(html)
    assert automatic["col-0"] == "order_id" and automatic["col-3"] == "placed_at"
    assert automatic["col-2"] == "" and automatic["col-7"] == ""  # not named like a field
    # Every field of an orders import is offered, and "ignore".
    assert "— ignore —" in html and '<option value="line_total"' in html and '<option value="store_code"' in html

    form = mapping_form(html, **{"col-2": "customer_email", "col-7": "unit_price"})
    r = client.submit(f"/imports/uploads/{token}", form)
    assert r.status_code == 303
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    wait_for(run_id)

    run = run_of(live, run_id)
    assert run.status == ImportStatus.completed, run.message
    assert (run.rows_read, run.inserted, run.rejected) == (5, 3, 2)
    assert run.actor == f"web:{client.user.email}" and run.user_id == client.user.id
    assert run.file_name == "orders.csv" and len(run.file_sha256) == 64
    assert run.options["mapping"]["source"] == "webshop"
    assert run.options["mapping"]["timezone"] == "Europe/London"
    with Session(live.engine) as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 2

    page = client.get(f"/imports/{run_id}")
    assert page.status_code == 200
    html = page.text
    assert "badge-completed" in html and "5 rows read: 3 inserted" in html
    for key, value in {"rows_read": "5", "inserted": "3", "rejected": "2"}.items():
        assert re.search(rf'data-count="{key}"[^>]*>{value}<', html), key
    assert f"web:{client.user.email}" in html and run.file_sha256 in html
    assert "last tuesday" in html  # the first errors, in a table
    assert f'href="/imports/{run_id}/errors.csv"' in html

    listing = client.get("/imports")
    assert listing.status_code == 200
    assert f'href="/imports/{run_id}"' in listing.text and "orders.csv" in listing.text
    assert "badge-completed" in listing.text

    # The upload now belongs to the run: the mapping page and a second submit lead to it.
    assert client.get(f"/imports/uploads/{token}").headers["location"] == f"/imports/{run_id}"
    again = client.submit(f"/imports/uploads/{token}", form)
    assert again.headers["location"] == f"/imports/{run_id}"
    with Session(live.engine) as s:
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 1


def test_the_error_report_downloads_as_csv(live):
    client = live.web()
    _, run_id = start_orders(live, client)
    r = client.get(f"/imports/{run_id}/errors.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="import-{run_id}-errors.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["row", "column", "value", "reason"]
    assert sorted({int(row["row"]) for row in rows}) == [5, 6]  # file lines of W-3 and W-4
    assert any(row["value"] == "last tuesday" for row in rows)
    assert any(row["value"] == "lots" for row in rows)


def test_status_json_for_the_page_to_poll(live):
    client = live.web()
    _, run_id = start_orders(live, client)
    r = client.get(f"/imports/{run_id}/status")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "completed"
    assert (body["rows_read"], body["inserted"], body["rejected"]) == (5, 3, 2)
    assert body["progress"] == 1.0


def test_a_preset_fills_the_mapping_and_keeps_its_reading_settings(live):
    client = live.web()
    cdnow = "00001 00001 19970101 1 11.77\n00001 00001 19970118 2 26.48\n00002 00002 19970102 1 12.00\n"
    token = token_of(upload(client, cdnow, name="CDNOW_sample.txt", preset="cdnow"))
    page = client.get(f"/imports/uploads/{token}")
    assert page.status_code == 200
    chosen = selects(page.text)
    assert list(chosen.values()) == ["customer_id", "", "placed_at", "quantity", "line_total"]
    assert "%Y%m%d" in page.text  # the preset's date format
    form = mapping_form(page.text)
    form["source"] = "cdnow"
    r = client.submit(f"/imports/uploads/{token}", form)
    assert r.status_code == 303, r.text
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    wait_for(run_id)
    run = run_of(live, run_id)
    assert run.status == ImportStatus.completed, run.message
    assert (run.rows_read, run.inserted, run.rejected) == (3, 3, 0)
    mapping = run.options["mapping"]
    assert mapping["format"] == "whitespace" and mapping["header"] is False
    assert mapping["order_id_template"] == "cdnow-{row}" and mapping["defaults"]["sku"] == "CD"
    assert mapping["columns"]["master_id"]["whole_number"] is True
    assert run.options["stubs"] == {"customers": 2, "products": 1}
    assert "2 new customers" in client.get(f"/imports/{run_id}").text


def test_missing_required_fields_are_shown_and_the_upload_kept(live):
    client = live.web()
    token = token_of(upload(client, ORDERS_CSV))
    page = client.get(f"/imports/uploads/{token}")
    form = mapping_form(page.text, **{"col-2": "", "col-1": "", "col-7": "unit_price"})  # no customer at all
    r = client.submit(f"/imports/uploads/{token}", form)
    assert r.status_code == 422
    assert "Map a column to customer_id or customer_email." in r.text
    assert selects(r.text)["col-1"] == "" and selects(r.text)["col-7"] == "unit_price"  # what was sent
    r = client.submit(f"/imports/uploads/{token}", {**form, "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and "IANA time zone" in r.text and 'id="timezone-error"' in r.text
    with Session(live.engine) as s:
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 0
    assert client.get(f"/imports/uploads/{token}").status_code == 200  # still there to fix and retry


def test_the_preview_lists_rows_the_reader_cannot_read(live):
    client = live.web()
    content = ORDERS_CSV + 'W-9,c-9,"unclosed,2026-01-08 10:00:00,MUG,Mug,1,8.50\n'
    content = content.replace("W-2,c-2", "W-2,c-2,extra field", 1)
    token = token_of(upload(client, content))
    page = client.get(f"/imports/uploads/{token}")
    assert page.status_code == 200
    assert 'id="unreadable"' in page.text and "Line 4" in page.text and "fields where 8 were expected" in page.text


def test_upload_form_errors(live):
    client = live.web()
    page = client.get("/imports/new")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    assert 'value="shopify" data-kinds="customers orders"' in page.text

    r = upload(client, ORDERS_CSV, preset="cdnow", kind="customers")
    assert r.status_code == 422 and "This preset reads orders" in r.text
    r = upload(client, ORDERS_CSV, kind="coupons")
    assert r.status_code == 422 and "Choose what the file holds." in r.text
    r = client.post("/imports/new", data={"csrf_token": client.csrf, "kind": "orders"}, files={"file": ("", b"")})
    assert r.status_code == 422 and "Choose a file to import." in r.text
    r = upload(client, b"")
    assert r.status_code == 422 and "The file is empty." in r.text
    assert [p for p in live.import_dir.iterdir() if not p.name.endswith(".json")] == []  # nothing kept


def test_an_unreadable_file_is_refused_on_the_upload_form(live):
    client = live.web()
    token = token_of(upload(client, b"PAR1 this is not parquet at all", name="broken.parquet"))
    r = client.get(f"/imports/uploads/{token}")
    assert r.status_code == 422 and "broken.parquet cannot be read" in r.text


def test_an_upload_over_the_limit_is_refused_clearly(live):
    client = live.web()
    big = "order_id,customer_id,placed_at\n" + "W-1,c-1,2026-01-05 10:00:00\n" * 3000  # ~90 KB, limit 50 KB
    r = upload(client, big)
    assert r.status_code == 413
    assert "The file is larger than the 50 KB an import may be." in r.text
    assert "<form" in r.text  # the form again, to choose another file
    assert not live.import_dir.exists() or list(live.import_dir.iterdir()) == []


def test_uploads_may_be_larger_than_other_request_bodies(fresh_engine, tmp_path):
    settings = Settings(secret_key="x", import_dir=tmp_path, max_body_bytes=100_000, max_upload_bytes=1_000_000)
    app = LiveApp(create_app(fresh_engine, settings), fresh_engine, settings)
    client = app.web()
    content = "order_id,customer_id,placed_at\n" + "W-1,c-1,2026-01-05 10:00:00\n" * 20_000  # ~560 KB
    token_of(upload(client, content))
    assert client.post("/customers/new", data={"csrf_token": client.csrf, "x": "y" * 200_000}).status_code == 413


def test_an_upload_far_over_the_server_limit_is_refused(live):
    client = live.web()
    r = upload(client, b"x" * 2_000_000)
    assert r.status_code == 413
    assert not live.import_dir.exists() or list(live.import_dir.iterdir()) == []


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_upload_needs_the_csrf_token_and_keeps_nothing_without_it(live, token):
    client = live.web()
    data = {"kind": "orders"} if token is None else {"kind": "orders", "csrf_token": token}
    r = client.post("/imports/new", data=data, files={"file": ("orders.csv", ORDERS_CSV.encode(), "text/csv")})
    assert r.status_code == 403
    assert "expired or did not come from this site" in r.text
    assert not live.import_dir.exists() or list(live.import_dir.iterdir()) == []


def test_the_token_must_come_before_the_file(live):
    client = live.web()
    boundary = "xyz"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="o.csv"\r\n\r\n{ORDERS_CSV}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{client.csrf}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    r = client.post("/imports/new", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 403
    assert not live.import_dir.exists() or list(live.import_dir.iterdir()) == []


def test_starting_and_resuming_need_the_csrf_token(live):
    client = live.web()
    token = token_of(upload(client, ORDERS_CSV))
    form = mapping_form(client.get(f"/imports/uploads/{token}").text, **{"col-2": "customer_email"})
    assert client.submit(f"/imports/uploads/{token}", form, token="forged").status_code == 403
    assert client.post(f"/imports/uploads/{token}", data=form).status_code == 403
    with Session(live.engine) as s:
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 0
    assert client.submit("/imports/1/resume", token="forged").status_code == 403


@pytest.mark.parametrize("role", NO_IMPORT)
def test_roles_without_import_data_get_403_everywhere(live, role):
    owner = live.web("admin")
    token = token_of(upload(owner, ORDERS_CSV))
    client = live.web(role)
    for path in ("/imports", "/imports/new", f"/imports/uploads/{token}", "/imports/1", "/imports/1/status",
                 "/imports/1/errors.csv"):  # fmt: skip
        assert client.get(path).status_code == 403, path
    assert upload(client, ORDERS_CSV).status_code == 403
    assert client.submit(f"/imports/uploads/{token}", {"col-0": "order_id"}).status_code == 403
    assert client.submit("/imports/1/resume").status_code == 403
    assert "does not allow" in client.get("/imports").text


def test_an_upload_is_only_for_the_user_who_sent_it(live):
    ann, bob = live.web("marketer"), live.web("marketer")
    token = token_of(upload(ann, ORDERS_CSV))
    assert bob.get(f"/imports/uploads/{token}").status_code == 404
    assert bob.get("/imports/uploads/..%2F..%2Fetc").status_code == 404


ORDERS_MAPPING = Mapping(
    kind=ImportKind.orders,
    columns={"order_id": "order_id", "customer_id": "customer_id", "Email": "customer_email", "placed_at": "placed_at",
             "sku": "sku", "product_name": "product_name", "quantity": "quantity", "Price": "unit_price"},
    unknown_customers="stub",
    unknown_products="stub",
)  # fmt: skip


def _stale_run(live, **fields) -> int:
    """A run recorded as running whose last heartbeat was 10 minutes ago (its process died)."""
    live.import_dir.mkdir(parents=True, exist_ok=True)
    path = live.import_dir / "stale.csv"
    path.write_text(ORDERS_CSV)
    old = datetime.now(UTC) - timedelta(minutes=10)
    with session_scope(live.engine) as s:
        run = ImportRun(
            kind=ImportKind.orders, file_name="stale.csv", file_path=str(path), file_sha256=file_sha256(path),
            file_size=path.stat().st_size, options={"mapping": mapping_json(ORDERS_MAPPING), "stubs": {}},
            started_at=old, heartbeat_at=old, actor="cli:root", **fields,
        )  # fmt: skip
        s.add(run)
        s.flush()
        s.add(ImportRowError(run_id=run.id, row=7, column="quantity", value="x", reason="not a whole number"))
        return run.id


def test_a_run_without_a_heartbeat_shows_as_interrupted_and_resumes(live):
    client = live.web()
    run_id = _stale_run(live)
    listing = client.get("/imports").text
    assert "badge-interrupted" in listing and f'action="/imports/{run_id}/resume"' in listing
    page = client.get(f"/imports/{run_id}").text
    assert "Interrupted" in page and "Resume" in page
    assert client.get(f"/imports/{run_id}/status").json()["status"] == "interrupted"

    r = client.submit(f"/imports/{run_id}/resume")
    assert r.status_code == 303 and r.headers["location"] == f"/imports/{run_id}"
    wait_for(run_id)
    run = run_of(live, run_id)
    assert run.status == ImportStatus.completed, run.message
    assert (run.rows_read, run.inserted, run.rejected) == (5, 3, 2)
    assert "badge-completed" in client.get(f"/imports/{run_id}").text
    assert client.submit(f"/imports/{run_id}/resume").status_code == 409


def test_a_completed_run_cannot_be_resumed(live):
    client = live.web()
    run_id = _stale_run(live, status=ImportStatus.completed)
    page = client.get(f"/imports/{run_id}").text
    assert f'action="/imports/{run_id}/resume"' not in page
    r = client.submit(f"/imports/{run_id}/resume")
    assert r.status_code == 409 and "already complete" in r.text


def test_run_page_of_an_unknown_run_is_404(live):
    client = live.web()
    assert client.get("/imports/999999").status_code == 404
    assert client.get("/imports/999999/errors.csv").status_code == 404
    assert client.get("/imports/999999/status").status_code == 404


def test_the_list_pages_with_a_cursor(live):
    client = live.web()
    ids = [_stale_run(live, status=ImportStatus.failed) for _ in range(27)]
    first = client.get("/imports").text
    assert f'href="/imports/{ids[-1]}"' in first and f'href="/imports/{ids[0]}"' not in first
    next_url = re.search(r'href="(/imports\?cursor=[^"]+)" rel="next"', first).group(1)
    second = client.get(next_url.replace("&amp;", "&")).text
    assert f'href="/imports/{ids[0]}"' in second
