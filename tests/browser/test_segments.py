"""The segment builder in a real Chromium: nest conditions, watch the live count, save, read the report.

The usual seed's eight customers: women are Ada (GB), Grace (US), Katherine (US) and Hedy (AT);
the men are in GB and the US. This module's server also holds an analysis run scoring them,
so the report's churn and RFM charts have something to draw.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from patron.api.app import create_app
from patron.db import session_scope
from patron.models import AnalysisRun, CustomerScore
from patron.models.enums import AnalysisStatus
from patron.settings import Settings
from tests.browser.conftest import LiveServer
from tests.browser.seed import seed

pytestmark = pytest.mark.browser

# customer -> (RFM segment, churn band) in the seeded run
SCORES = {
    "lovelace": ("Champions", "low"),
    "hopper": ("Loyal", "low"),
    "johnson": ("At risk", "high"),
    "lamarr": ("At risk", "lost"),
    "babbage": ("Hibernating", "medium"),
}


@pytest.fixture(scope="module")
def live_server(database_factory) -> Iterator[LiveServer]:
    """The app on a fresh database with the usual seed and one finished analysis run."""
    engine = database_factory.new_engine()
    ids = seed(engine)
    with session_scope(engine) as session:
        run = AnalysisRun(
            as_of=datetime.now(UTC).date(),
            status=AnalysisStatus.completed,
            requested_model="auto",
            model="bgnbd",
            settings={"horizon_days": 365, "discount_rate": 0.1, "margin": 0.4},
        )
        session.add(run)
        session.flush()
        for name, (rfm, band) in SCORES.items():
            session.add(
                CustomerScore(run_id=run.id, customer_id=ids[name], as_of=run.as_of, orders=4, frequency=3,
                              revenue=Decimal("100"), rfm_segment=rfm, churn_band=band, clv=Decimal("250"))
            )  # fmt: skip
    server = LiveServer(create_app(engine, Settings(secret_key="browser-segments"))).start()
    server.ids = ids
    server.engine = engine
    yield server
    server.stop()
    engine.dispose()


def condition(row, field: str, op: str, value: str) -> None:
    """Pick the field, the operator and the value of one condition row, as a person does."""
    row.get_by_label("Field").select_option(field)
    row.get_by_label("Operator").select_option(op)
    box = row.get_by_label("Value")
    if box.evaluate("el => el.tagName") == "SELECT":
        box.select_option(value)
    else:
        box.fill(value)


def test_build_a_nested_rule_save_it_and_read_the_report(signed_in, live_server):
    page = signed_in
    page.get_by_role("link", name="Segments", exact=True).click()
    expect(page).to_have_url(re.compile(r"/segments$"))
    expect(page.locator("#segment-list")).to_contain_text("RFM: Champions")
    page.get_by_role("link", name="New segment").click()
    expect(page).to_have_url(re.compile(r"/segments/new$"))

    count = page.locator("#preview-count")
    expect(count).to_have_text("Add a condition to see who matches.")
    top = page.locator("#rule-builder > .rule-group")

    # Women: 4 of the 8.
    top.locator(":scope > .rule-add").get_by_role("button", name="+ Condition").click()
    first = top.locator(":scope > .rule-children > .rule-row").first
    condition(first, "gender", "eq", "female")
    expect(count).to_have_text("4 of 8 customers")
    expect(page.locator("#preview-sample tbody tr")).to_have_count(4)

    # ... AND (in GB OR in AT): a group nested in the top one.
    top.locator(":scope > .rule-add").get_by_role("button", name="+ Group").click()
    group = top.locator(":scope > .rule-children > .rule-group")
    expect(group.get_by_label("Match")).to_have_value("any")
    condition(group.locator(".rule-row").first, "country", "eq", "GB")
    expect(count).to_have_text("1 of 8 customers")
    group.locator(":scope > .rule-add").get_by_role("button", name="+ Condition").click()
    expect(group.locator(".rule-row")).to_have_count(2)
    condition(group.locator(".rule-row").nth(1), "country", "eq", "AT")
    expect(count).to_have_text("2 of 8 customers")
    sample = page.locator("#preview-sample tbody")
    expect(sample).to_contain_text("Ada Lovelace")
    expect(sample).to_contain_text("Hedy Lamarr")

    # A wrong value is named by its place in the rule, and the count waits for a fix.
    group.locator(".rule-row").nth(1).get_by_label("Value").fill("")
    expect(page.locator("#preview-error")).to_contain_text("all[1].any[1].value")
    group.locator(".rule-row").nth(1).get_by_label("Value").fill("AT")
    expect(count).to_have_text("2 of 8 customers")
    expect(page.locator("#preview-error")).to_be_hidden()

    page.get_by_label("Name").fill("Women in GB or Austria")
    page.get_by_label("Description").fill("Readers for the Vienna evening.")
    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(r"/segments/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Women in GB or Austria")
    expect(page.locator("#notice")).to_contain_text("Saved")

    rule = page.locator("#rule-readable")
    expect(rule).to_contain_text("Gender is female")
    expect(rule).to_contain_text("Any of these")
    expect(rule).to_contain_text("Country is AT")
    expect(page.locator('[data-figure="size"]')).to_have_text("2")
    expect(page.locator('[data-figure="share"]')).to_have_text("25.0%")
    expect(page.locator('[data-figure="churn"]')).to_contain_text("50.0%")  # Hedy is in the lost band
    expect(page.locator('[data-figure="nps"]')).to_have_text("no survey answers yet")

    # The charts are drawn, with one mark per value.
    for chart in ("chart-monthly", "chart-churn", "chart-rfm"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    assert page.locator("#chart-monthly .bars .point").count() >= 4
    expect(page.locator("#chart-churn .bars .point")).to_have_count(4)  # low, medium, high, lost (two empty)
    expect(page.locator("#chart-rfm .slice")).to_have_count(2)  # Champions, At risk
    expect(page.locator("#chart-rfm .legend")).to_contain_text("At risk")

    members = page.locator("#member-table tbody tr")
    expect(members).to_have_count(2)
    expect(members.first).to_contain_text("Ada Lovelace")
    expect(members.nth(1)).to_contain_text("Hedy Lamarr")
    members.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/customers/{live_server.ids['lovelace']}$"))
    assert page.js_errors == []


def test_start_from_an_example_and_edit(signed_in, live_server):
    page = signed_in
    page.goto("/segments/new")
    page.get_by_label("Start from an example").select_option(label="Geographic: Paris region")
    expect(page.get_by_label("Name")).to_have_value("Paris region")
    top = page.locator("#rule-builder > .rule-group")
    expect(top.locator(".rule-group .rule-row")).to_have_count(8)  # one per postal prefix
    expect(page.locator("#preview-count")).to_have_text("0 of 8 customers")
    expect(page.locator("#preview-warnings")).to_contain_text("matches no customer")
    assert page.js_errors == []
