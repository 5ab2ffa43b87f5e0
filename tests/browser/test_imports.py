"""Import in a real Chromium: upload a CSV of orders, fix the mapping, run it, read the summary, get the errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from patron.api.app import create_app
from patron.settings import Settings
from tests.browser.conftest import LiveServer
from tests.browser.seed import seed
from tests.imports.live_app import ORDERS_CSV

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(database_factory, tmp_path_factory) -> Iterator[LiveServer]:
    """The shared live server, but with uploads kept in a temporary import folder."""
    engine = database_factory.new_engine()
    ids = seed(engine)
    settings = Settings(secret_key="browser-tests", import_dir=tmp_path_factory.mktemp("imports"))
    server = LiveServer(create_app(engine, settings)).start()
    server.ids = ids
    server.engine = engine
    yield server
    server.stop()
    engine.dispose()


def test_import_orders_with_a_bad_row_or_two(signed_in):
    page = signed_in
    page.get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
    page.get_by_role("link", name="New import").click()

    page.get_by_label("The file holds").select_option("orders")
    # Presets for other kinds are not offered for orders... and vice versa.
    page.get_by_label("The file holds").select_option("products")
    expect(page.locator('#f-preset option[value="cdnow"]')).to_be_disabled()
    page.get_by_label("The file holds").select_option("orders")
    expect(page.locator('#f-preset option[value="cdnow"]')).to_be_enabled()
    page.get_by_role("button", name="Upload and preview").click()  # no file yet
    expect(page.locator("#file-error")).to_have_text("Choose a file to import.")
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "orders.csv", "mimeType": "text/csv", "buffer": ORDERS_CSV.encode()}]
    )
    page.get_by_role("button", name="Upload and preview").click()

    expect(page).to_have_url(re.compile(r"/imports/uploads/[0-9a-f]{32}$"))
    expect(page.locator('[data-detected="format"]')).to_have_text("CSV")
    expect(page.locator("#preview-table")).to_contain_text("last tuesday")
    expect(page.locator("#preview-table tbody tr")).to_have_count(5)
    missing = page.locator("#missing")
    expect(missing).to_be_hidden()  # order_id, customer_id and placed_at were mapped by name

    # Match customers by email instead of id: the form says what is missing meanwhile.
    page.get_by_label("Field for column customer_id").select_option("")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("customer_id or customer_email")
    page.get_by_label("Field for column Email").select_option("customer_email")
    expect(missing).to_be_hidden()
    page.get_by_label("Field for column Price").select_option("unit_price")
    page.get_by_label("Customers not yet in Patron").select_option("stub")
    page.get_by_label("Products not yet in the catalogue").select_option("stub")
    page.get_by_role("button", name="Start import").click()

    expect(page).to_have_url(re.compile(r"/imports/\d+$"))
    expect(page.locator("#run-status")).to_have_text("Completed", timeout=60_000)
    expect(page.locator('[data-count="rows_read"]')).to_have_text("5")
    expect(page.locator('[data-count="inserted"]')).to_have_text("3")
    expect(page.locator('[data-count="rejected"]')).to_have_text("2")
    expect(page.locator("#run-message")).to_contain_text("5 rows read: 3 inserted")
    expect(page.locator("#run-stubs")).to_contain_text("new customers")
    errors = page.locator("#error-table")
    expect(errors).to_contain_text("last tuesday")
    expect(errors).to_contain_text("lots")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download error report").click()
    assert download.value.suggested_filename == re.sub(r".*/imports/(\d+)$", r"import-\1-errors.csv", page.url)
    report = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert report[0] == "row,column,value,reason"
    assert any("last tuesday" in line for line in report) and any("lots" in line for line in report)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    row = page.locator("#import-table tbody tr").first
    expect(row).to_contain_text("orders.csv")
    expect(row).to_contain_text("Completed")
    assert page.js_errors == []
