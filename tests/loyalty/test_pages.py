"""The loyalty pages: overview, members, the member page and its actions, rewards, rules, vouchers."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from patron.loyalty import service
from patron.loyalty.config import RewardConfig
from patron.models import LoyaltyConfigVersion, LoyaltyMember, LoyaltyReward, LoyaltyTransaction
from patron.users import service as users
from tests.factories import create_customer, create_order, create_product
from tests.web.conftest import PASSWORD, WebClient

_seq = itertools.count(1)


@pytest.fixture
def web(app, session):
    """web(role) -> a client signed in through /login as a new user with that role."""

    def make(role: str = "admin") -> WebClient:
        n = next(_seq)
        user = users.create_user(session, email=f"loyaltypages{n}@patron.example", password=PASSWORD, role=role)
        client = WebClient(app, follow_redirects=False)
        client.refresh_csrf("/login")
        assert client.submit("/login", {"email": user.email, "password": PASSWORD}).status_code == 303
        client.refresh_csrf("/loyalty")
        return client

    return make


@pytest.fixture
def admin_web(web) -> WebClient:
    return web("admin")


@pytest.fixture
def ada(session):
    return create_customer(session, first_name="Ada", last_name="Lovelace", email="ada@engine.example")


@pytest.fixture
def member(session, ada):
    """Ada enrolled (100 sign-up points) with an order of 250.00 (250 points): 350 points."""
    m = service.enrol(session, customer_id=ada.id, by="test")
    product = create_product(session, price=Decimal("125.00"))
    order = create_order(session, ada, lines=[(product, 2, Decimal("125.00"))], placed_at=datetime.now(UTC))
    service.sync_orders(session, order_ids=[order.id])
    assert service.summary(session, member_id=m.id).balance == 350
    return m


@pytest.fixture
def rewards(session):
    five = service.save_reward(
        session,
        data=RewardConfig(code="V5", name="5 off", kind="voucher", points_cost=150, amount=Decimal("5.00")),
    )
    big = service.save_reward(
        session,
        data=RewardConfig(code="V50", name="50 off", kind="voucher", points_cost=5000, amount=Decimal("50.00")),
    )
    return five, big


def balance(session, member_id: int) -> int:
    return service.summary(session, member_id=member_id).balance


def tx_count(session) -> int:
    return session.scalar(select(func.count()).select_from(LoyaltyTransaction))


def statement_rows(html: str) -> list[tuple[str, str, str]]:
    """(kind, points, balance) of each statement row, as shown."""
    rows = re.findall(
        r'data-kind="(\w+)">.*?<td class="num [^"]*" data-points>([^<]+)</td>\s*<td class="num" data-running>([^<]+)<',
        html,
        flags=re.S,
    )
    return rows


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("role", ["viewer", "agent", "analyst", "marketer"])
def test_every_page_renders_for_a_reader(web, session, member, rewards, role):
    client = web(role)
    voucher = service.redeem(session, member_id=member.id, reward_id=rewards[0].id, key="read-1")
    for path in (
        "/loyalty",
        "/loyalty/members",
        f"/loyalty/members/{member.id}",
        "/loyalty/rewards",
        "/loyalty/rules",
        "/loyalty/vouchers",
        f"/loyalty/vouchers?code={voucher.code}",
        f"/customers/{member.customer_id}",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
    for path in (f"/loyalty/members/{member.id}/barcode.svg", f"/loyalty/members/{member.id}/qr.svg"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        assert b"<svg" in r.content


def test_overview_shows_the_figures_and_what_they_mean(admin_web, session, member, rewards):
    service.redeem(session, member_id=member.id, reward_id=rewards[0].id, key="ov-1")
    r = admin_web.get("/loyalty")
    assert r.status_code == 200
    html = r.text
    assert '<dd data-figure="members">1</dd>' in html
    assert '<dd data-figure="outstanding">200</dd>' in html
    # 200 points at the seeded 0.01 a point
    assert '<dd data-figure="liability">2.00 <span class="muted">EUR</span></dd>' in html
    assert '<dd data-figure="earned">350</dd>' in html
    assert '<dd data-figure="redeemed">150</dd>' in html
    assert '<dd data-figure="breakage">0.0%</dd>' in html
    assert 'id="books"' in html and "Books balanced" in html
    assert "Points that lapsed unspent" in html and "Points members hold and can still spend." in html
    assert 'id="chart-monthly-data"' in html and 'id="chart-tiers-data"' in html
    assert "/static/js/loyalty.js" in html
    # members per tier, and the top earner
    assert re.search(r"<td><a [^>]*>Member</a></td><td class=\"num\">1</td><td class=\"num\">200</td>", html)
    assert re.search(rf'href="/loyalty/members/{member.id}">Ada Lovelace</a>.*?<td class="num">350</td>', html, re.S)


def test_members_search_and_tier_filter(admin_web, session, member):
    other = create_customer(session, first_name="Grace", last_name="Hopper", email="grace@navy.example")
    grace = service.enrol(session, customer_id=other.id, by="test")
    r = admin_web.get("/loyalty/members")
    assert f'data-member-id="{member.id}"' in r.text and f'data-member-id="{grace.id}"' in r.text
    assert re.search(rf'data-member-id="{member.id}">.*?<td class="num" data-balance>350</td>', r.text, re.S)
    for q, expected in (("lovelace", member), ("GRACE@navy", grace), (grace.card_number, grace)):
        r = admin_web.get("/loyalty/members", params={"q": q})
        ids = re.findall(r'data-member-id="(\d+)"', r.text)
        assert ids == [str(expected.id)], q
    r = admin_web.get("/loyalty/members", params={"tier": "Gold"})
    assert re.findall(r'data-member-id="(\d+)"', r.text) == [] and "No member matches." in r.text


def test_member_page_shows_card_balance_tier_progress_and_statement(admin_web, session, member):
    r = admin_web.get(f"/loyalty/members/{member.id}")
    html = r.text
    assert r.status_code == 200
    assert f'<p class="card-number" id="card-number">{member.card_number}</p>' in html
    assert f'src="/loyalty/members/{member.id}/barcode.svg"' in html
    assert f'src="/loyalty/members/{member.id}/qr.svg"' in html
    assert 'data-balance="350">350</p>' in html
    assert '<span id="tier">Member</span>' in html
    # qualifying: the order's 250 points (the sign-up bonus does not count); Silver starts at 500
    assert "250 of 500 points for Silver" in html and '<strong id="to-next-tier">250</strong>' in html
    assert '<progress id="tier-progress" max="100" value="50"' in html
    assert statement_rows(html) == [("earn", "+250", "350"), ("enrol", "+100", "100")]
    # points earned now expire in 24 months: none in the next 90 days
    assert '<p class="muted" id="expiring">None.</p>' in html


def test_statement_is_paginated(admin_web, session, member, monkeypatch):
    from patron.loyalty import pages

    monkeypatch.setattr(pages, "STATEMENT_PER_PAGE", 1)
    r = admin_web.get(f"/loyalty/members/{member.id}")
    assert statement_rows(r.text) == [("earn", "+250", "350")]
    next_url = re.search(r'href="([^"]+)" rel="next"', r.text).group(1).replace("&amp;", "&")
    r = admin_web.get(next_url)
    assert statement_rows(r.text) == [("enrol", "+100", "100")]
    assert 'rel="next"' not in r.text


def test_unknown_member_is_a_404_page(admin_web):
    r = admin_web.get("/loyalty/members/999999")
    assert r.status_code == 404 and "member 999999 not found" in r.text


# --------------------------------------------------------------------------- enrol


def test_enrol_from_the_members_page(admin_web, session, ada):
    r = admin_web.submit("/loyalty/members", {"customer_id": str(ada.id)})
    assert r.status_code == 303
    m = service.member_for_customer(session, ada.id)
    assert r.headers["location"] == f"/loyalty/members/{m.id}"
    assert m.enrolled_via == "web"
    page = admin_web.get(r.headers["location"]).text
    assert f"Enrolled with card {m.card_number}." in page
    assert statement_rows(page) == [("enrol", "+100", "100")]


def test_enrol_refusals_keep_the_value(admin_web, session, member, ada):
    r = admin_web.submit("/loyalty/members", {"customer_id": str(ada.id)})
    assert r.status_code == 409
    assert f"customer {ada.id} is already a member (member {member.id}, card {member.card_number})" in r.text
    assert f'name="customer_id" type="text" value="{ada.id}"' in r.text
    r = admin_web.submit("/loyalty/members", {"customer_id": "abc"})
    assert r.status_code == 400 and "the customer id must be a whole number, not &#39;abc&#39;" in r.text
    r = admin_web.submit("/loyalty/members", {"customer_id": "987654"})
    assert r.status_code == 404 and "987654" in r.text
    assert session.scalar(select(func.count()).select_from(LoyaltyMember)) == 1


def test_customer_panel_and_link(admin_web, session, member, ada):
    other = create_customer(session, first_name="Grace", last_name="Hopper")
    r = admin_web.get(f"/customers/{ada.id}")
    assert f"<code data-card>{member.card_number}</code>" in r.text
    assert "<dd data-tier>Member</dd>" in r.text and "<dd data-balance>350</dd>" in r.text
    assert f'href="/loyalty/members/{member.id}"' in r.text
    r = admin_web.get(f"/customers/{other.id}")
    assert "Not a member" in r.text and ">Enrol</button>" in r.text and f'value="{other.id}"' in r.text
    assert admin_web.get(f"/loyalty/customers/{ada.id}").headers["location"] == f"/loyalty/members/{member.id}"
    assert admin_web.get(f"/loyalty/customers/{other.id}").headers["location"] == (
        f"/loyalty/members?customer_id={other.id}#enrol"
    )
    assert f'value="{other.id}"' in admin_web.get(f"/loyalty/members?customer_id={other.id}").text


def test_panel_hides_enrol_from_a_viewer(web, session):
    c = create_customer(session)
    r = web("viewer").get(f"/customers/{c.id}")
    assert "Not a member" in r.text and "Enrol</button>" not in r.text


# --------------------------------------------------------------------------- member actions


def test_redeem_shows_the_voucher_and_the_lower_balance(admin_web, session, member, rewards):
    five, big = rewards
    page = admin_web.get(f"/loyalty/members/{member.id}").text
    # only what the member can afford is offered
    assert f'<option value="{five.id}"' in page and f'<option value="{big.id}"' not in page
    key = re.search(r'id="redeem-form".*?name="key" value="([^"]+)"', page, re.S).group(1)
    r = admin_web.submit(f"/loyalty/members/{member.id}/redeem", {"reward_id": str(five.id), "key": key})
    assert r.status_code == 303
    (voucher,) = service.member_vouchers(session, member_id=member.id)
    page = admin_web.get(f"/loyalty/members/{member.id}").text
    assert f'<p class="voucher-code" id="voucher-code">{voucher.code}</p>' in page
    assert 'data-balance="200">200</p>' in page
    assert statement_rows(page)[0] == ("redeem", "−150", "200")
    assert f"<code>{voucher.code}</code>" in page and "5 off" in page
    # the same form sent again (a double click) replays: no second redemption
    n = tx_count(session)
    r = admin_web.submit(f"/loyalty/members/{member.id}/redeem", {"reward_id": str(five.id), "key": key})
    assert r.status_code == 303 and tx_count(session) == n and balance(session, member.id) == 200


def test_redeem_refusal_says_the_balance_and_keeps_the_choice(admin_web, session, member, rewards):
    _, big = rewards
    n = tx_count(session)
    r = admin_web.submit(f"/loyalty/members/{member.id}/redeem", {"reward_id": str(big.id), "key": "web:r1"})
    assert r.status_code == 409
    assert "not enough points: the balance is 350 and this needs 5000" in r.text
    assert 'id="redeem-error"' in r.text and 'name="key" value="web:r1"' in r.text
    assert tx_count(session) == n and balance(session, member.id) == 350
    r = admin_web.submit(f"/loyalty/members/{member.id}/redeem", {"reward_id": "77777", "key": "web:r2"})
    assert r.status_code == 404 and "reward 77777 not found" in r.text


def test_bonus_goodwill_and_programme_bonus(admin_web, session, member):
    data = {"reason": "goodwill", "points": "40", "memo": "Late parcel", "key": "b1"}
    r = admin_web.submit(f"/loyalty/members/{member.id}/bonus", data)
    assert r.status_code == 303 and balance(session, member.id) == 390
    page = admin_web.get(f"/loyalty/members/{member.id}").text
    assert "Gave 40 bonus points (Late parcel)." in page
    assert statement_rows(page)[0] == ("bonus", "+40", "390")
    # a review bonus is the programme's amount (20 in the seeded rules)
    r = admin_web.submit(f"/loyalty/members/{member.id}/bonus", {"reason": "review", "memo": "", "key": "b2"})
    assert r.status_code == 303 and balance(session, member.id) == 410
    # goodwill needs the points: refused, values kept
    r = admin_web.submit(f"/loyalty/members/{member.id}/bonus", {"reason": "goodwill", "memo": "Great", "key": "b4"})
    assert r.status_code == 400 and "a goodwill bonus needs the number of points" in r.text
    assert 'id="f-bonus-memo" name="memo" maxlength="500" value="Great"' in r.text
    assert '<option value="goodwill" selected>' in r.text
    r = admin_web.submit(f"/loyalty/members/{member.id}/bonus", {"reason": "goodwill", "points": "-5", "key": "b3"})
    assert r.status_code == 400 and "the points must be between 1 and 10,000,000" in r.text
    assert balance(session, member.id) == 410


def test_adjust_and_reverse_need_manage_loyalty(web, session, member):
    agent = web("agent")
    page = agent.get(f"/loyalty/members/{member.id}").text
    assert 'id="redeem-form"' in page and 'id="bonus-form"' in page
    assert 'id="adjust-form"' not in page and 'id="reverse-form"' not in page and 'id="close-form"' not in page
    for action, data in (
        ("adjust", {"points": "10", "reason": "x", "key": "a1"}),
        ("reverse", {"transaction_id": "1", "reason": "x", "key": "a2"}),
        ("close", {"confirm": "yes"}),
    ):
        assert agent.submit(f"/loyalty/members/{member.id}/{action}", data).status_code == 403
    viewer = web("viewer")
    page = viewer.get(f"/loyalty/members/{member.id}").text
    assert 'id="redeem-form"' not in page
    assert viewer.submit(f"/loyalty/members/{member.id}/bonus", {"points": "5", "key": "v1"}).status_code == 403
    assert viewer.submit("/loyalty/members", {"customer_id": "1"}).status_code == 403
    assert balance(session, member.id) == 350


def test_adjust_credit_debit_and_refusals(admin_web, session, member):
    r = admin_web.submit(f"/loyalty/members/{member.id}/adjust", {"points": "-50", "reason": "Scanned", "key": "j1"})
    assert r.status_code == 303 and balance(session, member.id) == 300
    r = admin_web.submit(f"/loyalty/members/{member.id}/adjust", {"points": "-500", "reason": "Oops", "key": "j2"})
    assert r.status_code == 409 and "not enough points: the balance is 300 and this needs 500" in r.text
    assert 'id="f-adjust-points" name="points" maxlength="10" value="-500"' in r.text
    r = admin_web.submit(f"/loyalty/members/{member.id}/adjust", {"points": "0", "reason": "x", "key": "j3"})
    assert r.status_code == 400 and "an adjustment must move points" in r.text
    assert balance(session, member.id) == 300


def test_reverse_a_transaction(admin_web, session, member, rewards):
    voucher = service.redeem(session, member_id=member.id, reward_id=rewards[0].id, key="rv-1")
    r = admin_web.submit(
        f"/loyalty/members/{member.id}/reverse",
        {"transaction_id": str(voucher.transaction_id), "reason": "Changed mind", "key": "rv-2"},
    )
    assert r.status_code == 303 and balance(session, member.id) == 350
    session.refresh(voucher)
    assert voucher.status.value == "cancelled"
    r = admin_web.submit(
        f"/loyalty/members/{member.id}/reverse",
        {"transaction_id": str(voucher.transaction_id), "reason": "again", "key": "rv-3"},
    )
    assert r.status_code == 409 and f"transaction {voucher.transaction_id} was already reversed" in r.text
    assert 'value="Changed mind"' not in r.text and 'value="again"' in r.text
    # another member's transaction cannot be reversed from this page
    other = service.enrol(session, customer_id=create_customer(session).id, by="t")
    (line,) = service.statement(session, member_id=other.id).items
    r = admin_web.submit(
        f"/loyalty/members/{member.id}/reverse", {"transaction_id": str(line.id), "reason": "x", "key": "rv-4"}
    )
    assert r.status_code == 404 and "is not on this member&#39;s statement" in r.text
    assert balance(session, other.id) == 100


def test_close_membership(admin_web, session, member):
    r = admin_web.submit(f"/loyalty/members/{member.id}/close", {})
    assert r.status_code == 400 and "tick the box" in r.text
    r = admin_web.submit(f"/loyalty/members/{member.id}/close", {"confirm": "yes"})
    assert r.status_code == 303
    page = admin_web.get(f"/loyalty/members/{member.id}").text
    assert "This membership is closed" in page and 'data-balance="0">0</p>' in page
    assert statement_rows(page)[0] == ("expire", "−350", "0")
    assert 'id="redeem-form"' not in page


@pytest.mark.parametrize("path", ["redeem", "bonus", "adjust", "reverse", "close"])
def test_member_actions_need_the_csrf_token(admin_web, session, member, path):
    n = tx_count(session)
    r = admin_web.post(
        f"/loyalty/members/{member.id}/{path}", data={"points": "5", "reason": "x", "key": "c", "confirm": "yes"}
    )
    assert r.status_code == 403 and tx_count(session) == n


# --------------------------------------------------------------------------- rewards


def test_create_and_edit_a_reward(admin_web, session):
    data = {
        "code": "SHIP",
        "name": "Free delivery",
        "kind": "free_shipping",
        "points_cost": "300",
        "stock": "10",
        "voucher_valid_days": "30",
        "min_tier": "Silver",
        "is_active": "on",
    }
    r = admin_web.submit("/loyalty/rewards", data)
    assert r.status_code == 303
    reward = service.reward_by_code(session, "SHIP")
    assert (reward.points_cost, reward.stock, reward.voucher_valid_days, reward.min_tier, reward.is_active) == (
        300,
        10,
        30,
        "Silver",
        True,
    )
    page = admin_web.get("/loyalty/rewards").text
    assert "Saved the reward Free delivery (SHIP)." in page and f'data-reward-id="{reward.id}"' in page
    form = admin_web.get(f"/loyalty/rewards?edit={reward.id}").text
    assert f'action="/loyalty/rewards/{reward.id}"' in form and 'value="300"' in form
    r = admin_web.submit(f"/loyalty/rewards/{reward.id}", {**data, "points_cost": "250", "is_active": ""})
    assert r.status_code == 303
    session.refresh(reward)
    assert reward.points_cost == 250 and reward.is_active is False


def test_reward_form_errors_keep_the_values(admin_web, session):
    before = session.scalar(select(func.count()).select_from(LoyaltyReward))
    r = admin_web.submit("/loyalty/rewards", {"code": "V10", "name": "10 off", "kind": "voucher", "points_cost": "0"})
    assert r.status_code == 422 and 'id="points_cost-error"' in r.text
    assert 'name="name" type="text" value="10 off"' in r.text
    r = admin_web.submit("/loyalty/rewards", {"code": "V10", "name": "10 off", "kind": "voucher", "points_cost": "10"})
    assert r.status_code == 422
    assert 'id="amount-error"' in r.text and "is required for a voucher (the money off)" in r.text
    r = admin_web.submit(
        "/loyalty/rewards",
        {"code": "V10", "name": "10 off", "kind": "voucher", "points_cost": "1", "amount": "1", "min_tier": "VIPs"},
    )
    assert r.status_code == 422 and "no tier &#39;VIPs&#39;; the tiers are Member, Silver, Gold, VIP" in r.text
    assert session.scalar(select(func.count()).select_from(LoyaltyReward)) == before


def test_rewards_need_manage_loyalty(web, session):
    agent = web("agent")
    assert 'id="reward-form"' not in agent.get("/loyalty/rewards").text
    r = agent.submit("/loyalty/rewards", {"code": "X", "name": "X", "kind": "free_shipping", "points_cost": "5"})
    assert r.status_code == 403 and service.list_rewards(session) == []


# --------------------------------------------------------------------------- rules


def test_rules_page_shows_the_rules_and_saves_an_edit(admin_web, session):
    page = admin_web.get("/loyalty/rules").text
    assert "<li>Sign-up: 100 points</li>" in page
    assert "Points expire 24 months after they were earned." in page
    assert re.search(r"<td>Silver</td><td class=\"num\">500</td>", page)
    source = re.search(r'<textarea id="f-config" name="config"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    source = source.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")
    assert "signup: 100" in source
    versions = session.scalar(select(func.count()).select_from(LoyaltyConfigVersion))
    r = admin_web.submit("/loyalty/rules", {"config": source.replace("signup: 100", "signup: 250")})
    assert r.status_code == 303
    assert service.current_config(session)[1].earn.bonuses.signup == 250
    page = admin_web.get("/loyalty/rules").text
    assert "<li>Sign-up: 250 points</li>" in page and "Saved the rules as version" in page
    assert session.scalar(select(func.count()).select_from(LoyaltyConfigVersion)) == versions + 1


def test_overlapping_tiers_are_refused_with_the_field(admin_web, session):
    version, _ = service.current_config(session)
    source = """
tiers:
  levels:
    - {name: Member, threshold: 0}
    - {name: Silver, threshold: 0}
"""
    r = admin_web.submit("/loyalty/rules", {"config": source})
    assert r.status_code == 422
    assert (
        "<code>tiers.levels.1.threshold</code>: tier &#39;Silver&#39; starts at 0, which overlaps &#39;Member&#39;"
        in r.text
    )
    assert "- {name: Silver, threshold: 0}" in r.text  # the text is kept
    assert service.current_config(session)[0] == version
    r = admin_web.submit("/loyalty/rules", {"config": "earn: [unclosed"})
    assert r.status_code == 400 and "the rules are not valid YAML" in r.text
    r = admin_web.submit("/loyalty/rules", {"config": "earn:\n  points_per_unit: -1\n  nonsense: 1"})
    assert r.status_code == 422
    assert "<code>earn.points_per_unit</code>" in r.text and "<code>earn.nonsense</code>: unknown field" in r.text
    assert service.current_config(session)[0] == version


def test_rules_need_manage_loyalty(web, session):
    version, _ = service.current_config(session)
    agent = web("agent")
    assert 'id="rules-form"' not in agent.get("/loyalty/rules").text
    assert agent.submit("/loyalty/rules", {"config": "currency: USD"}).status_code == 403
    assert service.current_config(session)[0] == version


# --------------------------------------------------------------------------- vouchers


def test_look_up_and_consume_a_voucher(web, session, member, rewards):
    voucher = service.redeem(session, member_id=member.id, reward_id=rewards[0].id, key="vc-1")
    agent = web("agent")
    page = agent.get("/loyalty/vouchers", params={"code": voucher.code.lower().replace("-", "")}).text
    assert f"<code>{voucher.code}</code>" in page and 'id="voucher-status">Valid<' in page
    assert "5 off (5.00 off)" in page and "Ada Lovelace" in page and 'id="consume-form"' in page
    r = agent.submit("/loyalty/vouchers/consume", {"code": voucher.code, "reference": "till 3 / 0042"})
    assert r.status_code == 303
    page = agent.get(r.headers["location"]).text
    assert f"Voucher {voucher.code} is used: give the reward." in page
    assert 'id="voucher-status">Consumed<' in page and "(till 3 / 0042)" in page
    r = agent.submit("/loyalty/vouchers/consume", {"code": voucher.code})
    assert r.status_code == 409 and f"voucher {voucher.code} was already used on" in r.text
    r = agent.get("/loyalty/vouchers", params={"code": "NOPE-NOPE-NOPE"})
    assert r.status_code == 404 and "no voucher with code" in r.text
    viewer = web("viewer")
    assert 'id="consume-form"' not in viewer.get("/loyalty/vouchers", params={"code": voucher.code}).text
    assert viewer.submit("/loyalty/vouchers/consume", {"code": voucher.code}).status_code == 403


def test_pages_need_sign_in(app):
    client = WebClient(app, follow_redirects=False)
    for path in ("/loyalty", "/loyalty/members", "/loyalty/rules", "/loyalty/members/1/qr.svg"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_members_from_an_uploaded_file(admin_web, web, session):
    a = create_customer(session, first_name="Lin", last_name="Ko")
    b = create_customer(session, email="omar@shop.example")

    def upload(client, text, **data):
        return client.post(
            "/loyalty/members/import",
            data={"csrf_token": client.csrf, **data},
            files={"file": ("members.csv", text, "text/csv")},
        )

    r = upload(admin_web, f"customer_id,email,tier\n{a.id},,Diamond\n,nobody@shop.example,\n")
    assert r.status_code == 400
    assert "2 problem(s) in the file, nobody was enrolled" in r.text
    assert "<td>tier</td><td><code>Diamond</code></td>" in r.text
    assert "<td>email</td><td><code>nobody@shop.example</code></td><td>no customer with this email</td>" in r.text
    assert service.member_for_customer(session, a.id) is None
    good = f"customer_id,email,points\n{a.id},,75\n,omar@shop.example,\n"
    r = upload(admin_web, good, dry_run="1")
    assert r.status_code == 303 and service.member_for_customer(session, a.id) is None
    assert "it would enrol 2 member(s) with 75 opening points" in admin_web.get("/loyalty/members").text
    assert upload(web("agent"), good).status_code == 403
    r = upload(admin_web, good)
    assert r.status_code == 303
    assert "Enrolled 2 member(s) with 75 opening points." in admin_web.get("/loyalty/members").text
    assert service.summary(session, member_id=service.member_for_customer(session, a.id).id).balance == 175
    assert service.member_for_customer(session, b.id) is not None
