"""The main screens in a real Chromium: sign in, find a customer, work their 360, create one, dashboard."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from patron.db import session_scope
from patron.users import service as users
from tests.browser.conftest import sign_in
from tests.browser.seed import ADMIN_EMAIL, ADMIN_NAME

pytestmark = pytest.mark.browser


def test_sign_in_and_out(page):
    page.goto("/customers")
    expect(page).to_have_url(re.compile(r"/login\?next=/customers$"))
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")

    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/customers$"))
    expect(page.locator(".who-name")).to_have_text(ADMIN_NAME)
    expect(page.locator(".badge-role")).to_have_text("admin")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))


def test_search_a_customer_and_open_their_360(signed_in, live_server):
    page = signed_in
    page.get_by_role("link", name="Customers").click()
    page.get_by_role("searchbox", name="Search").fill("Lovelace")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#customer-table tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="Ada Lovelace").click()

    expect(page).to_have_url(re.compile(rf"/customers/{live_server.ids['lovelace']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    expect(page.locator('[data-kpi="orders"]')).not_to_have_text("0")
    expect(page.locator('[data-kpi="spend"]')).to_have_text(re.compile(r"^\d[\d,]*\.\d\d$"))
    expect(page.locator("#consents")).to_contain_text("Granted")
    timeline = page.locator(".timeline > li")
    expect(timeline.first).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("Pen arrived scratched")
    expect(page.locator(".timeline")).to_contain_text("Order WEB-")


def test_add_a_note_and_see_it_on_top(signed_in, live_server):
    page = signed_in
    page.goto(f"/customers/{live_server.ids['babbage']}")
    text = f"Prefers delivery on Fridays ({uuid.uuid4().hex[:6]})"
    page.get_by_role("textbox", name="New note").fill(text)
    page.get_by_role("button", name="Add note").click()
    first = page.locator(".timeline > li").first
    expect(first).to_contain_text(text)
    expect(first).to_contain_text(f"by {ADMIN_NAME}")
    expect(first.locator(".badge")).to_have_text("Note")


def test_create_a_customer_fixing_a_bad_email(signed_in):
    page = signed_in
    page.goto("/customers")
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("First name").fill("Mary")
    page.get_by_label("Last name").fill("Somerville")
    page.get_by_label("Email").fill("mary-at-science")
    page.get_by_label("City").fill("Jedburgh")
    page.get_by_label("Interests").fill("astronomy, maths")
    page.get_by_role("button", name="Create customer").click()

    error = page.locator("#email-error")
    expect(error).to_contain_text("not a valid email address")
    expect(page.get_by_label("First name")).to_have_value("Mary")  # nothing to type twice
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")

    email = f"mary.{uuid.uuid4().hex[:6]}@science.example"
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Create customer").click()
    expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Mary Somerville")
    expect(page.locator(".profile-id")).to_contain_text(email)
    expect(page.locator(".chips")).to_contain_text("astronomy")


def test_dashboard_charts_render(signed_in):
    page = signed_in
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.locator('[data-kpi="orders"]')).not_to_have_text("0")
    for key in ("revenue", "customers", "channels"):
        container = page.locator(f"#chart-{key}")
        expect(container).to_have_attribute("role", "img")
        expect(container.locator(".main-svg").first).to_be_attached()
    expect(page.locator("#chart-revenue .bars .point path").first).to_be_attached()
    expect(page.locator("#chart-revenue .bars .point")).to_have_count(12)  # one bar per month
    expect(page.locator("#chart-customers .scatterlayer .trace")).to_have_count(1)
    channels = json.loads(page.locator("#chart-channels-data").text_content())
    assert len(channels["labels"]) >= 3
    expect(page.locator("#chart-channels .slice")).to_have_count(len(channels["labels"]))
    expect(page.locator("#chart-channels .legend")).to_contain_text("In store")
    assert page.js_errors == []


def test_pages_load_without_script_errors(signed_in, live_server):
    page = signed_in
    for path in ("/", "/customers", f"/customers/{live_server.ids['lovelace']}", "/customers/new", "/segments"):
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
    assert page.js_errors == []


def test_viewer_sees_no_write_forms(page, live_server):
    email = f"viewer.{uuid.uuid4().hex[:6]}@patron.example"
    with session_scope(live_server.engine) as session:
        users.create_user(session, email=email, password="viewer password", role="viewer", name="Vera Viewer")
    sign_in(page, email, "viewer password")
    page.goto(f"/customers/{live_server.ids['turing']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alan Turing")
    expect(page.get_by_role("link", name="Edit profile")).to_have_count(0)
    expect(page.get_by_role("form", name="Add note")).to_have_count(0)
    page.goto("/customers/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
