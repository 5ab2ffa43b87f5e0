"""The analytics screens in a real Chromium: run the analysis from the page, read it, see a customer's value.

The usual seed (eight named customers) is too small for the purchase models to say much,
so this module's server also holds 300 generated customers (fixed seed) next to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from playwright.sync_api import expect

from patron.api.app import create_app
from patron.demo.generator import generate
from patron.settings import Settings
from tests.browser.conftest import LiveServer
from tests.browser.seed import seed

pytestmark = pytest.mark.browser

# Bounds on how long a step may take before the test gives up: not measurements.
RUN_TIMEOUT_MS = 120_000
NUMBER = re.compile(r"^\d[\d,]*(\.\d+)?%?$")
# The data and the analysis are dated, not read off the clock: the fitted model (and which one
# "auto" picks) would otherwise change with the day the tests run, and a seeded order placed
# hours before an analysis as of today gives P(alive) 1.00. The analysis is run a week after
# the usual seed's "now", so the named customers' last orders are days before it.
AS_OF = date(2026, 10, 14)
SEEDED_AT = datetime(2026, 10, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def live_server(database_factory) -> Iterator[LiveServer]:
    """The app on a fresh database with generated customers plus the usual seed."""
    engine = database_factory.new_engine()
    generate(engine, customers=300, seed=21, end=AS_OF)
    ids = seed(engine, now=SEEDED_AT)
    server = LiveServer(create_app(engine, Settings(secret_key="browser-analytics"))).start()
    server.ids = ids
    server.engine = engine
    yield server
    server.stop()
    engine.dispose()


def plotted(page, chart_id: str) -> None:
    """Plotly drew the chart: its SVG is in the container."""
    expect(page.locator(f"#{chart_id} .main-svg").first).to_be_visible()


def test_run_the_analysis_and_read_the_results(signed_in, live_server):
    page = signed_in
    page.get_by_role("link", name="Analytics", exact=True).click()
    expect(page).to_have_url(re.compile(r"/analytics$"))
    expect(page.get_by_role("heading", name="No analysis yet")).to_be_visible()

    form = page.get_by_role("form", name="Run analysis")
    form.get_by_label("As of").fill(AS_OF.isoformat())
    form.get_by_label("Purchase model").select_option("auto")
    form.get_by_label("Margin (% of revenue)").fill("40")
    form.get_by_role("button", name="Run analysis").click()
    expect(page).to_have_url(re.compile(r"/analytics\?run=\d+$"), timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#notice")).to_contain_text("buyers of 308 customers scored")

    for name in ("equity", "retention", "repeat", "churn", "clv"):
        expect(page.locator(f'[data-kpi="{name}"]')).to_have_text(NUMBER)
    for chart in ("chart-trend", "chart-segments", "chart-channels", "chart-cohorts"):
        plotted(page, chart)
    expect(page.locator("#trend-message")).to_contain_text("Net revenue")
    expect(page.locator("#model-choice")).to_contain_text(re.compile(r"BG/NBD|Pareto/NBD"))
    expect(page.locator("#glossary")).to_contain_text("P(alive)")

    # The stored tracking plot is served and decoded by the browser.
    plot = page.locator("#tracking-plot")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(page.locator("#by-frequency-table tbody tr")).to_have_count(8)

    # A decliner links to their 360, which now shows the value panel.
    segment_rows = page.locator("#segment-table tbody tr")
    assert segment_rows.count() >= 3
    first = page.locator("#decliner-table tbody tr a").first
    expect(first).to_be_visible()
    name = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator('[data-value="segment"]')).to_be_visible()
    assert page.js_errors == []


def test_customer_360_shows_value_and_what_they_buy(signed_in, live_server):
    page = signed_in
    page.goto("/analytics")
    if page.get_by_role("heading", name="No analysis yet").count():
        # Run on its own: the module's first test may not have run.
        form = page.get_by_role("form", name="Run analysis")
        form.get_by_label("As of").fill(AS_OF.isoformat())
        form.get_by_role("button", name="Run analysis").click()
        expect(page).to_have_url(re.compile(r"/analytics\?run=\d+$"), timeout=RUN_TIMEOUT_MS)

    page.goto(f"/customers/{live_server.ids['lovelace']}")
    panel = page.locator("#value-outlook")
    expect(panel.get_by_role("heading", name="Value and outlook")).to_be_visible()
    expect(panel.locator('[data-value="segment"]')).to_have_text(re.compile(r"\w"))
    expect(panel.locator('[data-value="rfm"]')).to_have_text(re.compile(r"^R [1-5] · F [1-5] · M [1-5]$"))
    expect(panel.locator('[data-value="p_alive"]')).to_have_text(re.compile(r"^[01]\.\d\d$"))
    expect(panel).to_contain_text("still buy from you")
    expect(panel.locator('[data-value="clv"]')).to_have_text(NUMBER)
    expect(panel.locator("#band-advice")).to_contain_text("What to do")
    insights = page.locator("#insights")
    expect(insights.locator('[data-insight="category"]')).not_to_have_text("—")
    expect(insights.locator('[data-insight="channel"]')).not_to_have_text("—")
    assert page.js_errors == []
