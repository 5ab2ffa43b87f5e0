"""The loyalty programme in a real Chromium: enrol a customer from their page, an order placed through
the REST API earns points, redeem a reward on the member page, read the statement.

The usual seed plus one reward ("5 off", 150 points). Ada's seeded orders were placed before she
joins, so they earn nothing; the order placed during the test (5 x 24.00 = 120.00) earns 120
points at the seeded 1 point per unit, on top of the 100-point sign-up bonus.
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
from patron.loyalty import service as loyalty
from patron.loyalty.config import RewardConfig
from patron.settings import Settings
from tests.browser.conftest import LiveServer
from tests.browser.seed import seed
from tests.factories import create_token_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(database_factory) -> Iterator[LiveServer]:
    """The app on a fresh database with the usual seed, one reward and an API token."""
    engine = database_factory.new_engine()
    ids = seed(engine)
    with session_scope(engine) as session:
        reward = loyalty.save_reward(
            session,
            data=RewardConfig(code="FIVE", name="5 off", kind="voucher", points_cost=150, amount=Decimal("5.00")),
        )
        ids["reward"] = reward.id
        token = create_token_for(session, "admin")
    server = LiveServer(create_app(engine, Settings(secret_key="browser-loyalty"))).start()
    server.ids = ids
    server.engine = engine
    server.token = token
    yield server
    server.stop()
    engine.dispose()


def statement(page) -> list[tuple[str, str, str]]:
    """(description, points, balance) of each statement row, as shown."""
    rows = page.locator("#statement-table tbody tr")
    out = []
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        out.append((cells.nth(2).inner_text().strip(), cells.nth(3).inner_text().strip(), cells.nth(4).inner_text()))
    return out


def test_enrol_earn_redeem_and_read_the_statement(signed_in, live_server):
    page = signed_in
    ada = live_server.ids["lovelace"]

    # Ada's customer page: the loyalty panel offers to enrol her.
    page.goto(f"/customers/{ada}")
    panel = page.locator("#loyalty-panel")
    expect(panel).to_contain_text("Not a member of the loyalty programme.")
    panel.get_by_role("button", name="Enrol").click()

    # The member page: the card, the sign-up bonus.
    expect(page).to_have_url(re.compile(r"/loyalty/members/\d+$"))
    member_id = int(page.url.rsplit("/", 1)[1])
    card = page.locator("#card-number").inner_text()
    assert re.fullmatch(r"2900\d{12}", card)
    expect(page.locator("#notice")).to_have_text(f"Enrolled with card {card}.")
    expect(page.locator("#balance")).to_have_text("100")
    expect(page.locator("#tier")).to_have_text("Member")
    expect(page.get_by_role("img", name=f"Barcode of card {card}")).to_be_visible()
    expect(page.get_by_role("img", name=f"QR code of card {card}")).to_be_visible()
    assert page.locator("#card-barcode").evaluate("img => img.naturalWidth") > 0
    assert page.locator("#card-qr").evaluate("img => img.naturalWidth") > 0
    # 100 points cannot buy the 150-point reward yet
    expect(page.locator("#redeem-form")).to_contain_text("No reward the member can afford with 100 points.")

    # A shop sends an order through the REST API: it earns points as it is stored.
    placed = datetime.now(UTC).isoformat()  # after the enrolment: only orders placed as a member earn
    response = page.request.post(
        "/api/v1/orders",
        headers={"Authorization": f"Bearer {live_server.token}"},
        data={
            "customer_id": ada,
            "placed_at": placed,
            "channel": "online",
            "currency": "EUR",
            "lines": [{"sku": "BK-001", "quantity": 5, "unit_price": "24.00"}],
        },
    )
    assert response.status == 201, response.text()
    order_id = response.json()["id"]

    page.reload()
    expect(page.locator("#balance")).to_have_text("220")
    expect(page.locator("#to-next-tier")).to_have_text("380")  # 120 of Silver's 500 qualifying points
    assert statement(page) == [
        (f"Earned · Order #{order_id}", "+120", "220"),
        ("Sign-up bonus · Welcome bonus", "+100", "100"),
    ]

    # Redeem the reward: the voucher code shows, the balance drops.
    form = page.locator("#redeem-form")
    form.get_by_label("Reward").select_option(label="5 off — 150 points")
    form.get_by_role("button", name="Redeem").click()
    expect(page.locator("#voucher-code")).to_be_visible()
    code = page.locator("#voucher-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    expect(page.locator("#notice")).to_contain_text(f"Redeemed 5 off for 150 points. Voucher {code}, valid until")
    expect(page.locator("#balance")).to_have_text("70")
    expect(page.locator("#voucher-table")).to_contain_text(code)
    expect(page.locator("#voucher-table")).to_contain_text("Issued")

    # The statement: newest first, each line with the balance after it.
    assert statement(page) == [
        ("Redeemed · Redeemed: 5 off", "−150", "70"),
        (f"Earned · Order #{order_id}", "+120", "220"),
        ("Sign-up bonus · Welcome bonus", "+100", "100"),
    ]

    # Back on the customer page, the panel shows the membership.
    page.goto(f"/customers/{ada}")
    expect(panel.locator("[data-card]")).to_have_text(card)
    expect(panel.locator("[data-balance]")).to_have_text("70")
    expect(panel.locator("[data-tier]")).to_have_text("Member")
    panel.get_by_role("link", name="Member page").click()
    expect(page).to_have_url(re.compile(rf"/loyalty/members/{member_id}$"))
    assert page.js_errors == []


def test_a_refused_redemption_says_why(signed_in, live_server):
    """A member without enough points: the reward is not offered, and a forced request is refused."""
    page = signed_in
    with session_scope(live_server.engine) as session:
        member = loyalty.enrol(session, customer_id=live_server.ids["hopper"], by="test")
        member_id = member.id
    page.goto(f"/loyalty/members/{member_id}")
    expect(page.locator("#balance")).to_have_text("100")
    # A stale page offering the reward (as if it was affordable before): the refusal is shown, nothing moves.
    page.locator("#redeem-form").evaluate(
        """(form, rewardId) => {
            const select = document.createElement('select'); select.name = 'reward_id';
            select.innerHTML = '<option value="' + rewardId + '" selected>5 off</option>'; form.appendChild(select);
            form.submit(); }""",
        live_server.ids["reward"],
    )
    expect(page.locator("#redeem-error")).to_have_text("not enough points: the balance is 100 and this needs 150")
    expect(page.locator("#balance")).to_have_text("100")
    assert [row[1] for row in statement(page)] == ["+100"]


def test_the_overview_reports_the_programme(signed_in, live_server):
    page = signed_in
    page.get_by_role("link", name="Loyalty", exact=True).click()
    expect(page).to_have_url(re.compile(r"/loyalty$"))
    expect(page.locator("h1")).to_have_text("Loyalty")
    expect(page.locator("#books")).to_have_text("Books balanced")
    expect(page.locator("#chart-monthly .main-svg").first).to_be_attached()
    expect(page.locator("#chart-tiers .main-svg").first).to_be_attached()
    assert page.js_errors == []
