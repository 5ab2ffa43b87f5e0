"""The dashboard: KPI tiles and the chart data embedded in the page; the Plotly asset."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape

from patron.dashboard import service
from tests.factories import create_customer, create_order, create_product


def chart(html: str, key: str) -> dict:
    match = re.search(rf'<script type="application/json" id="chart-{key}-data">(.*?)</script>', html, re.S)
    assert match, f"no data for chart {key}"
    return json.loads(match.group(1))


def kpi(html: str, name: str) -> str:
    match = re.search(rf'data-kpi="{name}">([^<]*)<', html)
    assert match, name
    return unescape(match.group(1))


def months_back(now: datetime, n: int) -> datetime:
    """The 15th, noon UTC, of the month `n` months before `now`'s."""
    index = now.year * 12 + now.month - 1 - n
    return datetime(index // 12, index % 12 + 1, 15, 12, tzinfo=UTC)


def this_month(now: datetime) -> datetime:
    """A moment in the current month that is already past."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start + (now - start) / 2


def test_month_keys_cross_the_year():
    keys = service.month_keys(datetime(2026, 2, 10, tzinfo=UTC))
    assert len(keys) == 12
    assert keys[0] == "2025-03" and keys[-2:] == ["2026-01", "2026-02"]


def test_dashboard_charts_hold_the_monthly_totals(session, admin_web):
    now = datetime.now(UTC)
    ann, bob = create_customer(session), create_customer(session)
    p = create_product(session)
    create_order(session, ann, [(p, 1, Decimal("10.00"))], placed_at=this_month(now))
    create_order(session, bob, [(p, 1, Decimal("25.50"))], placed_at=this_month(now), channel="in_store")
    create_order(session, ann, [(p, 4, Decimal("25.00"))], placed_at=months_back(now, 2))
    create_order(session, ann, [(p, 1, Decimal("999.00"))], placed_at=months_back(now, 13))  # too old
    create_order(session, bob, [(p, 1, Decimal("500.00"))], placed_at=this_month(now), status="cancelled")

    page = admin_web.get("/")
    assert page.status_code == 200
    html = page.text
    revenue = chart(html, "revenue")
    by_month = dict(zip(revenue["months"], revenue["y"], strict=True))
    assert len(by_month) == 12
    assert by_month[now.strftime("%Y-%m")] == 35.5
    assert by_month[months_back(now, 2).strftime("%Y-%m")] == 100.0
    assert sum(revenue["y"]) == 135.5
    assert revenue["x"][-1] == now.strftime("%b %Y")

    channels = chart(html, "channels")
    assert dict(zip(channels["labels"], channels["values"], strict=True)) == {"In store": 1, "Online": 2}

    signups = chart(html, "customers")
    assert signups["y"][-1] == 2 and sum(signups["y"]) == 2

    assert kpi(html, "customers") == "2"
    assert kpi(html, "orders") == "3"
    assert kpi(html, "revenue") == "135.50"
    assert kpi(html, "aov") == "45.17"
    for key in ("revenue", "customers", "channels"):
        assert f'<h2 id="chart-{key}-title">' in html
        assert f'id="chart-{key}" data-chart="{key}" role="img" aria-labelledby="chart-{key}-title"' in html
    assert '<script src="/static/vendor/plotly.min.js?v=' in html


def test_dashboard_without_data_shows_empty_states(admin_web):
    html = admin_web.get("/").text
    assert "No orders in the last 12 months yet." in html
    assert "No new customers in the last 12 months yet." in html
    assert 'id="chart-revenue-data"' not in html
    assert kpi(html, "orders") == "0" and kpi(html, "aov") == "—"


def test_overview_service_uses_only_the_last_twelve_months(session):
    now = datetime(2026, 11, 23, 10, tzinfo=UTC)
    c = create_customer(session)
    p = create_product(session)
    create_order(session, c, [(p, 1, Decimal("40.00"))], placed_at=datetime(2025, 12, 1, 0, 0, tzinfo=UTC))
    create_order(session, c, [(p, 1, Decimal("60.00"))], placed_at=datetime(2025, 11, 30, 23, 59, tzinfo=UTC))
    board = service.overview(session, now=now)
    assert board.since == datetime(2025, 12, 1, tzinfo=UTC)
    assert board.orders == 1 and board.revenue == Decimal("40.00")
    assert board.revenue_by_month[0].month == "2025-12" and board.revenue_by_month[0].value == Decimal("40.00")
    assert board.average_order_value == Decimal("40.00")


def test_plotly_is_served_locally_as_javascript(anonymous):
    r = anonymous.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "plotly" in r.text[:2000].lower()
    assert len(r.content) > 1_000_000


def test_own_static_assets(anonymous):
    css = anonymous.get("/static/css/patron.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = anonymous.get("/static/js/charts.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert anonymous.get("/static/../settings.py").status_code == 404
