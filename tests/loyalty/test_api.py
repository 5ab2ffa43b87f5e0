"""The loyalty REST API: every endpoint's happy path, roles, bad input that posts nothing, Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from stdnum import luhn

from patron.loyalty import cards, service
from patron.loyalty.config import RewardConfig
from tests.factories import create_customer

BASE = "/api/v1/loyalty"
SEEDED_TIERS = [("Member", "0"), ("Silver", "500"), ("Gold", "1500"), ("VIP", "5000")]


# --- helpers ---------------------------------------------------------------------------------


def enrol(client: TestClient, session, **customer) -> dict:
    c = create_customer(session, **customer)
    r = client.post(f"{BASE}/members", json={"customer_id": c.id})
    assert r.status_code == 201, r.text
    return r.json()


def balance(client: TestClient, member_id: int) -> int:
    r = client.get(f"{BASE}/members/{member_id}")
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def statement_ids(client: TestClient, member_id: int) -> list[int]:
    r = client.get(f"{BASE}/members/{member_id}/statement", params={"limit": 500})
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["items"]]


def make_reward(client: TestClient, **fields) -> dict:
    body = {"code": "V5", "name": "5 EUR off", "kind": "voucher", "points_cost": 60, "amount": "5.00"} | fields
    r = client.post(f"{BASE}/rewards", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def refused(client: TestClient, session, member_id: int, method: str, url: str, status: int, **kw):
    """Send a request that must be refused with `status`, and check that nothing was posted."""
    before_balance, before_statement = balance(client, member_id), statement_ids(client, member_id)
    r = client.request(method, url, **kw)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "detail"}
    assert balance(client, member_id) == before_balance
    assert statement_ids(client, member_id) == before_statement
    assert service.check_books(session) == []
    return r.json()


# --- authentication and roles ------------------------------------------------------------------


def test_every_route_needs_a_token(app):
    client = TestClient(app)
    routes = [
        ("GET", "/config"), ("PUT", "/config"), ("GET", "/config/versions"), ("POST", "/members"),
        ("GET", "/members"), ("GET", "/members/1"), ("GET", "/members/by-card/2900000000000000"),
        ("GET", "/customers/1/member"), ("POST", "/members/1/close"), ("GET", "/members/1/statement"),
        ("GET", "/members/1/card.svg"), ("POST", "/members/1/bonuses"), ("POST", "/members/1/adjustments"),
        ("POST", "/members/1/redemptions"), ("POST", "/transactions/1/reversal"), ("GET", "/rewards"),
        ("POST", "/rewards"), ("GET", "/rewards/1"), ("PUT", "/rewards/1"), ("PATCH", "/rewards/1"),
        ("GET", "/vouchers/AAAA-AAAA-AAAA"), ("POST", "/vouchers/AAAA-AAAA-AAAA/consume"), ("GET", "/report"),
        ("GET", "/check"), ("POST", "/jobs/run"),
    ]  # fmt: skip
    for method, path in routes:
        r = client.request(method, BASE + path, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"


def test_viewer_reads_but_cannot_move_points_and_agent_cannot_change_the_rules(api, admin, session):
    member = enrol(admin, session)
    reward = make_reward(admin)
    viewer, agent = api("viewer"), api("agent")

    assert viewer.get(f"{BASE}/members/{member['id']}").json()["balance"] == 100
    assert viewer.get(f"{BASE}/rewards").status_code == 200
    # The programme's figures are read by every role, as on the Loyalty page.
    assert viewer.get(f"{BASE}/report").json()["members"] == 1
    assert viewer.get(f"{BASE}/check").json() == {"balanced": True, "problems": []}
    for method, path, body in [
        ("POST", f"/members/{member['id']}/redemptions", {"reward_id": reward["id"]}),
        ("POST", f"/members/{member['id']}/bonuses", {"reason": "goodwill", "points": 5}),
        ("POST", "/members", {"customer_id": create_customer(session).id}),
        ("POST", "/vouchers/AAAA-AAAA-AAAA/consume", {}),
    ]:
        r = viewer.request(method, BASE + path, json=body)
        assert r.status_code == 403 and "operate_loyalty" in r.json()["error"], (path, r.text)

    config = admin.get(f"{BASE}/config").json()
    for method, path, body in [
        ("PUT", "/config", config),
        ("POST", "/rewards", {"code": "X", "name": "x", "kind": "free_shipping", "points_cost": 1}),
        ("PATCH", f"/rewards/{reward['id']}", {"points_cost": 1}),
        ("POST", f"/members/{member['id']}/adjustments", {"points": 5, "reason": "x"}),
        ("POST", f"/members/{member['id']}/close", None),
        ("POST", "/transactions/1/reversal", {"reason": "x"}),
        ("POST", "/jobs/run", None),
    ]:
        r = agent.request(method, BASE + path, json=body)
        assert r.status_code == 403 and "manage_loyalty" in r.json()["error"], (path, r.text)

    # An agent operates the programme: it redeems for a member.
    r = agent.post(f"{BASE}/members/{member['id']}/redemptions", json={"reward_id": reward["id"]})
    assert r.status_code == 201 and r.json()["balance"] == 40
    assert len(admin.get(f"{BASE}/config/versions").json()) == 1
    assert service.check_books(session) == []


# --- configuration ---------------------------------------------------------------------------


def test_config_is_read_and_replaced_as_a_new_version(admin, session):
    r = admin.get(f"{BASE}/config")
    assert r.status_code == 200
    config = r.json()
    assert [(t["name"], t["threshold"]) for t in config["tiers"]["levels"]] == SEEDED_TIERS
    assert config["earn"]["bonuses"] == {"signup": 100, "birthday": 50, "review": 20, "survey": 10}

    config["earn"]["bonuses"]["signup"] = 250
    config["tiers"]["levels"][1]["threshold"] = "400"
    r = admin.put(f"{BASE}/config", json=config)
    assert r.status_code == 200, r.text
    assert r.json()["earn"]["bonuses"]["signup"] == 250
    assert r.json()["tiers"]["levels"][1] == {
        "name": "Silver",
        "threshold": "400",
        "earn_multiplier": "1.25",
        "free_shipping": False,
        "members_only": [],
    }
    assert admin.get(f"{BASE}/config").json() == r.json()

    versions = admin.get(f"{BASE}/config/versions").json()
    assert len(versions) == 2
    assert versions[0]["config"] == r.json() and versions[0]["created_by"].startswith("api:user")
    assert versions[1]["config"]["earn"]["bonuses"]["signup"] == 100
    assert versions[0]["id"] > versions[1]["id"]
    # The new rules are in force: a new member gets the new sign-up bonus.
    assert enrol(admin, session)["balance"] == 250


def test_overlapping_tiers_are_refused_naming_the_field_and_nothing_is_stored(admin):
    config = admin.get(f"{BASE}/config").json()
    config["tiers"]["levels"][2]["threshold"] = "500"  # Gold from 500, like Silver
    r = admin.put(f"{BASE}/config", json=config)
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["field"] == "tiers.levels.2.threshold"
    assert "overlaps 'Silver'" in error["message"]

    config["tiers"]["levels"][2]["threshold"] = "1500"
    config["tiers"]["levels"][0]["threshold"] = "10"
    r = admin.put(f"{BASE}/config", json=config)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "tiers.levels.0.threshold"
    assert len(admin.get(f"{BASE}/config/versions").json()) == 1


# --- members ---------------------------------------------------------------------------------


def test_enrol_returns_the_member_with_card_balance_tier_and_progress(admin, session):
    c = create_customer(session, first_name="Ada", last_name="Lovelace", email="ada@shop.example")
    r = admin.post(f"{BASE}/members", json={"customer_id": c.id})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["customer"] == {"id": c.id, "name": "Ada Lovelace", "email": "ada@shop.example"}
    assert len(m["card_number"]) == 16 and m["card_number"].startswith("2900") and luhn.is_valid(m["card_number"])
    assert (m["status"], m["tier"], m["enrolled_via"]) == ("active", "Member", "api")
    assert (m["balance"], m["balance_value"], m["currency"]) == (100, "1.00", "EUR")
    assert m["benefits"] == {"earn_multiplier": "1", "free_shipping": False, "members_only": []}
    # The sign-up bonus does not count towards a tier.
    assert (m["qualifying_value"], m["tier_basis"], m["window_months"]) == ("0", "points", 12)
    assert m["next_tier"] == {"name": "Silver", "threshold": "500", "to_go": "500", "progress": 0.0}
    assert m["expiring"] == []  # the bonus expires in 24 months

    r = admin.post(f"{BASE}/members", json={"customer_id": c.id})
    assert r.status_code == 409 and "already a member" in r.json()["error"]
    assert admin.post(f"{BASE}/members", json={"customer_id": 2_000_000_000}).status_code == 404
    assert admin.post(f"{BASE}/members", json={"customer_id": 0}).status_code == 422

    for path in [f"/members/{m['id']}", f"/customers/{c.id}/member", f"/members/by-card/{m['card_number']}"]:
        r = admin.get(BASE + path)
        assert r.status_code == 200 and r.json() == m, path
    spaced = " ".join(m["card_number"][i : i + 4] for i in range(0, 16, 4))
    assert admin.get(f"{BASE}/members/by-card/{spaced}").json()["id"] == m["id"]


def test_unknown_members_and_cards(admin, session):
    assert admin.get(f"{BASE}/members/2000000000").status_code == 404
    assert admin.get(f"{BASE}/members/2000000000/statement").status_code == 404
    assert admin.get(f"{BASE}/members/2000000000/card.svg").status_code == 404
    c = create_customer(session)
    r = admin.get(f"{BASE}/customers/{c.id}/member")
    assert r.status_code == 404 and "not a member" in r.json()["error"]
    r = admin.get(f"{BASE}/members/by-card/2900000000000001")
    assert r.status_code == 400 and "check digit" in r.json()["error"]
    body = "290012345678901"
    unknown = body + luhn.calc_check_digit(body)
    r = admin.get(f"{BASE}/members/by-card/{unknown}")
    assert r.status_code == 404 and unknown in r.json()["error"]


def test_list_members_filters_and_pages(admin, session):
    a = enrol(admin, session, first_name="Zelda", email="zelda@shop.example")
    b = enrol(admin, session, first_name="Yann")
    c = enrol(admin, session, first_name="Xavier")
    admin.post(f"{BASE}/members/{c['id']}/close")

    r = admin.get(f"{BASE}/members", params={"limit": 2})
    page1 = r.json()
    assert [m["id"] for m in page1["items"]] == [c["id"], b["id"]] and page1["next_cursor"]
    page2 = admin.get(f"{BASE}/members", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [m["id"] for m in page2["items"]] == [a["id"]] and page2["next_cursor"] is None

    assert [m["id"] for m in admin.get(f"{BASE}/members", params={"status": "active"}).json()["items"]] == [
        b["id"],
        a["id"],
    ]
    assert [m["id"] for m in admin.get(f"{BASE}/members", params={"q": "ZELDA@shop"}).json()["items"]] == [a["id"]]
    assert [m["id"] for m in admin.get(f"{BASE}/members", params={"q": b["card_number"]}).json()["items"]] == [b["id"]]
    assert admin.get(f"{BASE}/members", params={"tier": "Gold"}).json() == {"items": [], "next_cursor": None}
    assert len(admin.get(f"{BASE}/members", params={"tier": "Member"}).json()["items"]) == 3
    assert admin.get(f"{BASE}/members", params={"status": "nope"}).status_code == 422
    assert admin.get(f"{BASE}/members", params={"cursor": "garbage"}).status_code == 400


def test_close_forfeits_the_points_and_stops_movements(admin, session):
    m = enrol(admin, session)
    r = admin.post(f"{BASE}/members/{m['id']}/close")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["balance"]) == ("closed", 0)
    assert r.json()["closed_at"] is not None
    items = admin.get(f"{BASE}/members/{m['id']}/statement").json()["items"]
    assert [(t["kind"], t["change"], t["balance_after"]) for t in items] == [("expire", -100, 0), ("enrol", 100, 100)]
    r = refused(
        admin,
        session,
        m["id"],
        "POST",
        f"{BASE}/members/{m['id']}/bonuses",
        409,
        json={"reason": "goodwill", "points": 5},
    )
    assert "closed" in r["error"]
    assert admin.post(f"{BASE}/members/{m['id']}/close").status_code == 409


def test_card_images(admin, session):
    m = enrol(admin, session)
    for kind in ("barcode", "qr"):
        r = admin.get(f"{BASE}/members/{m['id']}/card.svg", params={"kind": kind})
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/svg+xml"
        assert r.content.lstrip().startswith((b"<?xml", b"<svg")) and b"<svg" in r.content
    assert admin.get(f"{BASE}/members/{m['id']}/card.svg").content == cards.barcode_svg(m["card_number"])
    assert admin.get(f"{BASE}/members/{m['id']}/card.svg", params={"kind": "pdf"}).status_code == 422


# --- movements -------------------------------------------------------------------------------


def test_bonuses(admin, session):
    m = enrol(admin, session)
    url = f"{BASE}/members/{m['id']}/bonuses"
    r = admin.post(url, json={"reason": "review", "reference": "review 812"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["kind"], t["points"], t["change"], t["balance_after"]) == ("bonus", 20, 20, 120)
    assert t["memo"] == "Review bonus: review 812" and t["member_id"] == m["id"]
    r = admin.post(url, json={"reason": "goodwill", "points": 35, "memo": "late parcel"})
    assert (r.status_code, r.json()["change"], r.json()["balance_after"], r.json()["memo"]) == (
        201,
        35,
        155,
        "late parcel",
    )
    assert balance(admin, m["id"]) == 155

    for body, status, field in [
        ({"reason": "goodwill"}, 400, "points"),
        ({"reason": "goodwill", "points": 0}, 422, "points"),
        ({"reason": "goodwill", "points": -5}, 422, "points"),
        ({"reason": "goodwill", "points": 10_000_001}, 422, "points"),
        ({"reason": "lottery", "points": 5}, 422, "reason"),
        ({"reason": "survey", "extra": 1}, 422, "extra"),
    ]:
        err = refused(admin, session, m["id"], "POST", url, status, json=body)
        detail = err["detail"]
        fields = [d["field"] for d in detail] if isinstance(detail, list) else [detail["field"]]
        assert field in fields, (body, err)
    refused(admin, session, m["id"], "POST", f"{BASE}/members/2000000000/bonuses", 404, json={"reason": "survey"})


def test_adjustments_credit_and_debit_but_never_below_zero(admin, session):
    m = enrol(admin, session)
    url = f"{BASE}/members/{m['id']}/adjustments"
    r = admin.post(url, json={"points": 50, "reason": "missing points for order 17"})
    assert r.status_code == 201
    assert (r.json()["kind"], r.json()["change"], r.json()["balance_after"]) == ("adjust", 50, 150)
    r = admin.post(url, json={"points": -30, "reason": "double credit"})
    assert (r.status_code, r.json()["points"], r.json()["change"], r.json()["balance_after"]) == (201, 30, -30, 120)

    err = refused(admin, session, m["id"], "POST", url, 409, json={"points": -121, "reason": "too much"})
    assert "the balance is 120" in err["error"] and err["detail"]["balance"] == 120
    for body in [
        {"points": 0, "reason": "nothing"},
        {"points": 5, "reason": "   "},
        {"points": 5},
        {"points": -10_000_001, "reason": "x"},
        {"points": "many", "reason": "x"},
    ]:
        refused(admin, session, m["id"], "POST", url, 422, json=body)
    err = refused(admin, session, m["id"], "POST", url, 422, json={"points": 0, "reason": "nothing"})
    assert err["detail"][0]["field"] == "points" and "must not be 0" in err["detail"][0]["message"]
    refused(
        admin,
        session,
        m["id"],
        "POST",
        f"{BASE}/members/2000000000/adjustments",
        404,
        json={"points": 1, "reason": "x"},
    )
    assert balance(admin, m["id"]) == 120


def test_redeem_gives_a_voucher_and_refuses_more_than_the_balance(admin, session):
    m = enrol(admin, session)
    reward = make_reward(admin)
    url = f"{BASE}/members/{m['id']}/redemptions"
    r = admin.post(url, json={"reward_id": reward["id"]})
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["code"] == cards.normalise_voucher_code(v["code"]) and len(v["code"]) == 14
    assert (v["status"], v["valid"], v["points_spent"], v["balance"]) == ("issued", True, 60, 40)
    assert v["reward"] == {
        "id": reward["id"],
        "code": "V5",
        "name": "5 EUR off",
        "kind": "voucher",
        "amount": "5.00",
        "product_id": None,
    }
    assert v["member"] == {"id": m["id"], "card_number": m["card_number"], "tier": "Member", "status": "active"}
    expires = datetime.fromisoformat(v["expires_at"])
    assert expires.date() == datetime.now(UTC).date() + timedelta(days=90)
    assert (expires.hour, expires.minute) == (23, 59)
    assert v["consumed_at"] is None

    err = refused(admin, session, m["id"], "POST", url, 409, json={"reward_id": reward["id"]})
    assert "the balance is 40" in err["error"] and "needs 60" in err["error"]
    assert err["detail"]["balance"] == 40
    err = refused(admin, session, m["id"], "POST", url, 409, json={"reward_code": "V5"})
    assert "the balance is 40" in err["error"]
    err = refused(admin, session, m["id"], "POST", url, 404, json={"reward_id": 2_000_000_000})
    assert "reward 2000000000 not found" in err["error"]
    err = refused(admin, session, m["id"], "POST", url, 404, json={"reward_code": "NOPE"})
    assert "NOPE" in err["error"]
    for body in [{}, {"reward_id": reward["id"], "reward_code": "V5"}, {"reward_id": 0}, {"reward_id": -1}]:
        refused(admin, session, m["id"], "POST", url, 422, json=body)
    refused(admin, session, m["id"], "POST", f"{BASE}/members/2000000000/redemptions", 404, json={"reward_id": 1})

    # By code, once there are points for it.
    admin.post(f"{BASE}/members/{m['id']}/bonuses", json={"reason": "goodwill", "points": 20})
    r = admin.post(url, json={"reward_code": "V5"})
    assert (r.status_code, r.json()["balance"], r.json()["reward"]["id"]) == (201, 0, reward["id"])
    assert r.json()["code"] != v["code"]
    assert service.check_books(session) == []


def test_statement_has_the_running_balance_and_pages(admin, session):
    m = enrol(admin, session)
    reward = make_reward(admin, points_cost=30)
    admin.post(f"{BASE}/members/{m['id']}/bonuses", json={"reason": "goodwill", "points": 40})
    admin.post(f"{BASE}/members/{m['id']}/redemptions", json={"reward_id": reward["id"]})
    admin.post(f"{BASE}/members/{m['id']}/adjustments", json={"points": -10, "reason": "fix"})

    r = admin.get(f"{BASE}/members/{m['id']}/statement")
    assert r.status_code == 200
    s = r.json()
    assert s["member_id"] == m["id"] and s["next_cursor"] is None
    assert [(t["kind"], t["change"], t["balance_after"]) for t in s["items"]] == [
        ("adjust", -10, 100),
        ("redeem", -30, 110),
        ("bonus", 40, 140),
        ("enrol", 100, 100),
    ]
    assert s["items"][1]["reward_id"] == reward["id"] and s["items"][1]["memo"] == "Redeemed: 5 EUR off"

    seen, cursor = [], None
    while True:
        page = admin.get(
            f"{BASE}/members/{m['id']}/statement", params={"limit": 3, "cursor": cursor} if cursor else {"limit": 3}
        ).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == s["items"]


def test_reversal_undoes_a_redemption_and_cancels_its_voucher(admin, session):
    m = enrol(admin, session)
    reward = make_reward(admin, stock=5)
    v = admin.post(f"{BASE}/members/{m['id']}/redemptions", json={"reward_id": reward["id"]}).json()
    assert admin.get(f"{BASE}/rewards/{reward['id']}").json()["stock"] == 4

    url = f"{BASE}/transactions/{v['transaction_id']}/reversal"
    r = admin.post(url, json={"reason": "customer changed their mind"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["kind"], t["points"], t["change"], t["balance_after"], t["reverses_id"]) == (
        "reversal",
        60,
        60,
        100,
        v["transaction_id"],
    )
    assert admin.get(f"{BASE}/vouchers/{v['code']}").json()["status"] == "cancelled"
    assert admin.get(f"{BASE}/rewards/{reward['id']}").json()["stock"] == 5

    err = refused(admin, session, m["id"], "POST", url, 409, json={"reason": "again"})
    assert f"already reversed by transaction {t['id']}" in err["error"]
    err = refused(admin, session, m["id"], "POST", f"{BASE}/transactions/{t['id']}/reversal", 409, json={"reason": "x"})
    assert "itself a reversal" in err["error"]
    refused(admin, session, m["id"], "POST", f"{BASE}/transactions/2000000000/reversal", 404, json={"reason": "x"})
    refused(admin, session, m["id"], "POST", url, 422, json={"reason": "  "})
    err = refused(admin, session, m["id"], "POST", f"{BASE}/vouchers/{v['code']}/consume", 409, json={})
    assert "cancelled" in err["error"]


def test_reversing_an_earning_that_was_spent_is_refused(admin, session):
    m = enrol(admin, session)
    reward = make_reward(admin, points_cost=100)
    admin.post(f"{BASE}/members/{m['id']}/redemptions", json={"reward_id": reward["id"]})
    enrol_tx = statement_ids(admin, m["id"])[-1]
    err = refused(
        admin, session, m["id"], "POST", f"{BASE}/transactions/{enrol_tx}/reversal", 409, json={"reason": "x"}
    )
    assert "the balance is 0" in err["error"]


# --- Idempotency-Key -------------------------------------------------------------------------


def test_idempotency_key_replays_the_stored_result_and_refuses_another_body(api, admin, session):
    m = enrol(admin, session)
    reward = make_reward(admin, points_cost=30)
    url = f"{BASE}/members/{m['id']}/redemptions"
    key = {"Idempotency-Key": "till-7-receipt-991"}

    first = admin.post(url, json={"reward_id": reward["id"]}, headers=key)
    assert first.status_code == 201
    again = admin.post(url, json={"reward_id": reward["id"]}, headers=key)
    assert (again.status_code, again.json()) == (201, first.json())  # the same voucher, the same balance
    assert balance(admin, m["id"]) == 70
    assert len(statement_ids(admin, m["id"])) == 2

    other = admin.post(url, json={"reward_code": "NOPE"}, headers=key)
    assert other.status_code == 404  # the reward is looked up first
    err = refused(
        admin,
        session,
        m["id"],
        "POST",
        f"{BASE}/members/{m['id']}/bonuses",
        422,
        json={"reason": "survey"},
        headers=key,
    )
    assert err["detail"][0]["field"] == "Idempotency-Key" and "already used" in err["detail"][0]["message"]
    reward2 = make_reward(admin, code="V1", points_cost=10)
    err = refused(admin, session, m["id"], "POST", url, 422, json={"reward_id": reward2["id"]}, headers=key)
    assert err["detail"][0]["field"] == "Idempotency-Key"

    # Keys are per caller: another user's identical key is another request.
    r = api("agent").post(url, json={"reward_id": reward["id"]}, headers=key)
    assert r.status_code == 201 and r.json()["code"] != first.json()["code"] and r.json()["balance"] == 40

    # Without a key every request is new.
    bonus = {"reason": "goodwill", "points": 5}
    a = admin.post(f"{BASE}/members/{m['id']}/bonuses", json=bonus)
    b = admin.post(f"{BASE}/members/{m['id']}/bonuses", json=bonus)
    assert (a.json()["balance_after"], b.json()["balance_after"]) == (45, 50)

    # Bonuses, adjustments and reversals replay too.
    for path, body in [
        (f"/members/{m['id']}/bonuses", bonus),
        (f"/members/{m['id']}/adjustments", {"points": -7, "reason": "fix"}),
        (f"/transactions/{a.json()['id']}/reversal", {"reason": "by mistake"}),
    ]:
        h = {"Idempotency-Key": f"k-{path}"}
        one, two = admin.post(BASE + path, json=body, headers=h), admin.post(BASE + path, json=body, headers=h)
        assert one.status_code == 201 and (two.status_code, two.json()) == (201, one.json()), path
    assert balance(admin, m["id"]) == 50 + 5 - 7 - 5
    assert service.check_books(session) == []

    too_long = {"Idempotency-Key": "k" * 201}
    refused(admin, session, m["id"], "POST", f"{BASE}/members/{m['id']}/bonuses", 422, json=bonus, headers=too_long)


# --- rewards ---------------------------------------------------------------------------------


def test_rewards_catalogue(admin, session):
    r = admin.post(
        f"{BASE}/rewards",
        json={
            "code": "SHIP",
            "name": "Free shipping",
            "kind": "free_shipping",
            "points_cost": 250,
            "stock": 10,
            "valid_until": "2099-12-31",
            "min_tier": "Silver",
        },
    )
    assert r.status_code == 201, r.text
    ship = r.json()
    assert {k: ship[k] for k in ("code", "kind", "points_cost", "amount", "stock", "valid_from", "valid_until")} == {
        "code": "SHIP",
        "kind": "free_shipping",
        "points_cost": 250,
        "amount": None,
        "stock": 10,
        "valid_from": None,
        "valid_until": "2099-12-31",
    }
    assert (ship["voucher_valid_days"], ship["min_tier"], ship["is_active"], ship["description"]) == (
        90,
        "Silver",
        True,
        "",
    )
    v5 = make_reward(admin)
    listed = {x["code"]: x for x in admin.get(f"{BASE}/rewards").json()["items"]}
    assert set(listed) == {"SHIP", "V5"} and listed["V5"] == v5
    assert admin.get(f"{BASE}/rewards/{ship['id']}").json() == ship

    r = admin.patch(f"{BASE}/rewards/{v5['id']}", json={"points_cost": 75, "is_active": False})
    assert r.status_code == 200
    assert (r.json()["points_cost"], r.json()["is_active"], r.json()["amount"], r.json()["name"]) == (
        75,
        False,
        "5.00",
        "5 EUR off",
    )
    assert set(x["code"] for x in admin.get(f"{BASE}/rewards", params={"active_only": True}).json()["items"]) == {
        "SHIP"
    }
    r = admin.patch(f"{BASE}/rewards/{v5['id']}", json={"kind": "free_shipping", "amount": None})
    assert (r.status_code, r.json()["kind"], r.json()["amount"]) == (200, "free_shipping", None)

    r = admin.put(
        f"{BASE}/rewards/{v5['id']}",
        json={"code": "V10", "name": "10 off", "kind": "voucher", "points_cost": 120, "amount": "10"},
    )
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["code"], r.json()["amount"], r.json()["is_active"]) == (
        v5["id"],
        "V10",
        "10.00",
        True,
    )

    # Bad input: each refused, naming the field.
    rewards, one = f"{BASE}/rewards", f"{BASE}/rewards/{ship['id']}"
    fs = {"code": "A", "name": "x", "kind": "free_shipping", "points_cost": 1}
    for method, url, body, status, field in [
        ("POST", rewards, fs | {"code": "SHIP"}, 409, "code"),
        ("POST", rewards, fs | {"kind": "voucher"}, 422, "amount"),
        ("POST", rewards, fs | {"points_cost": 0}, 422, "points_cost"),
        ("POST", rewards, fs | {"min_tier": "Platinum"}, 422, "min_tier"),
        ("POST", rewards, fs | {"kind": "free_product", "product_sku": "NO-SKU"}, 422, "product_sku"),
        ("PATCH", one, {"name": None}, 422, "name"),
        ("PATCH", one, {"code": "V10"}, 409, "code"),
        ("PATCH", one, {"kind": "voucher"}, 422, "amount"),
        ("PATCH", f"{rewards}/2000000000", {"name": "x"}, 404, "reward_id"),
        ("PUT", f"{rewards}/2000000000", fs, 404, "reward_id"),
    ]:  # fmt: skip
        r = admin.request(method, url, json=body)
        assert r.status_code == status, (body, r.text)
        detail = r.json()["detail"]
        fields = [d["field"] for d in detail] if isinstance(detail, list) else [detail["field"]]
        assert field in fields, (body, detail)
    assert admin.get(f"{BASE}/rewards/{ship['id']}").json() == ship
    assert admin.get(f"{BASE}/rewards/2000000000").status_code == 404


# --- vouchers --------------------------------------------------------------------------------


def test_voucher_is_checked_then_consumed_once(api, admin, session):
    m = enrol(admin, session)
    reward = make_reward(admin)
    v = admin.post(f"{BASE}/members/{m['id']}/redemptions", json={"reward_id": reward["id"]}).json()

    r = api("viewer").get(f"{BASE}/vouchers/{v['code'].lower().replace('-', '')}")
    assert r.status_code == 200
    checked = r.json()
    assert (checked["code"], checked["status"], checked["valid"], checked["member"]["id"]) == (
        v["code"],
        "issued",
        True,
        m["id"],
    )
    assert checked["expires_at"] == v["expires_at"] and checked["reward"]["code"] == "V5"

    r = api("agent").post(f"{BASE}/vouchers/{v['code']}/consume", json={"reference": "receipt 42"})
    assert r.status_code == 200, r.text
    used = r.json()
    assert (used["status"], used["valid"], used["consumed_reference"]) == ("consumed", False, "receipt 42")
    assert used["consumed_at"] is not None

    r = admin.post(f"{BASE}/vouchers/{v['code']}/consume", json={})
    assert r.status_code == 409
    assert f"voucher {v['code']} was already used on" in r.json()["error"] and "(receipt 42)" in r.json()["error"]
    assert admin.get(f"{BASE}/vouchers/{v['code']}").json()["status"] == "consumed"
    # A used voucher's redemption cannot be reversed.
    r = admin.post(f"{BASE}/transactions/{v['transaction_id']}/reversal", json={"reason": "x"})
    assert r.status_code == 409 and "cannot be undone" in r.json()["error"]
    assert balance(admin, m["id"]) == 40

    r = admin.get(f"{BASE}/vouchers/AAAA-CCCC-DDDD")
    assert r.status_code == 404 and "AAAA-CCCC-DDDD" in r.json()["error"]
    assert admin.post(f"{BASE}/vouchers/AAAA-CCCC-DDDD/consume").status_code == 404
    assert admin.post(f"{BASE}/vouchers/{v['code']}/consume", json={"reference": "x" * 101}).status_code == 422


def test_expired_voucher_is_refused(admin, session):
    m = enrol(admin, session)
    reward = service.save_reward(
        session,
        data=RewardConfig(
            code="OLD", name="Old", kind="voucher", points_cost=10, amount=Decimal(1), voucher_valid_days=30
        ),
    )
    issued = datetime.now(UTC) - timedelta(days=40)
    voucher = service.redeem(session, member_id=m["id"], reward_id=reward.id, key="test:old", now=issued)
    code = voucher.code

    r = admin.get(f"{BASE}/vouchers/{code}")
    assert (r.json()["status"], r.json()["valid"]) == ("expired", False)
    expiry = (issued + timedelta(days=30)).date()
    err = refused(admin, session, m["id"], "POST", f"{BASE}/vouchers/{code}/consume", 409, json={})
    assert err["error"] == f"voucher {code} expired on {expiry:%Y-%m-%d}"
    assert admin.get(f"{BASE}/vouchers/{code}").json()["consumed_at"] is None


# --- reports, checks and jobs -----------------------------------------------------------------


def test_report_and_check(admin, session):
    a = enrol(admin, session, first_name="Ann", last_name="Top")
    b = enrol(admin, session)
    reward = make_reward(admin, points_cost=30)
    admin.post(f"{BASE}/members/{a['id']}/bonuses", json={"reason": "goodwill", "points": 50})
    admin.post(f"{BASE}/members/{b['id']}/redemptions", json={"reward_id": reward["id"]})

    r = admin.get(f"{BASE}/report", params={"months": 3})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["months"], rep["members"], rep["outstanding_points"], rep["liability"]) == (3, 2, 220, "2.20")
    assert (rep["currency"], rep["point_value"]) == ("EUR", "0.01")
    assert len(rep["by_month"]) == 3
    this_month = rep["by_month"][-1]
    assert this_month == {
        "month": f"{datetime.now(UTC):%Y-%m}",
        "earned": 0,
        "bonus": 250,
        "redeemed": 30,
        "expired": 0,
        "clawed_back": 0,
        "adjusted": 0,
        "reversed": 0,
        "transferred": 0,
    }
    assert (rep["earned_total"], rep["redeemed_total"], rep["expired_total"], rep["breakage_rate"]) == (250, 30, 0, 0.0)
    assert rep["tiers"] == [
        {"tier": "Member", "members": 2, "points": 220},
        {"tier": "Silver", "members": 0, "points": 0},
        {"tier": "Gold", "members": 0, "points": 0},
        {"tier": "VIP", "members": 0, "points": 0},
    ]
    assert rep["tier_movements"] == [{"from_tier": None, "to_tier": "Member", "reason": "enrolled", "members": 2}]
    assert rep["top_earners"][0] == {
        "member_id": a["id"],
        "card_number": a["card_number"],
        "customer_id": a["customer_id"],
        "name": "Ann Top",
        "points": 150,
    }
    assert [t["points"] for t in rep["top_earners"]] == [150, 100]
    assert rep["books_balanced"] is True
    assert admin.get(f"{BASE}/report", params={"months": 0}).status_code == 422
    assert admin.get(f"{BASE}/report", params={"months": 121}).status_code == 422

    assert admin.get(f"{BASE}/check").json() == {"balanced": True, "problems": []}


def test_run_jobs_expires_lapsed_points_and_reviews_tiers(admin, session):
    c = create_customer(session)
    long_ago = datetime.now(UTC) - timedelta(days=3 * 365)
    member = service.enrol(session, customer_id=c.id, by="test", now=long_ago)

    r = admin.post(f"{BASE}/jobs/run")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "expired_members": 1,
        "expired_points": 100,
        "tiers": {"reviewed": 1, "upgraded": 0, "kept": 1, "downgraded": 0},
        "birthdays": 0,
    }
    assert balance(admin, member.id) == 0
    assert admin.post(f"{BASE}/jobs/run").json() == {
        "expired_members": 0,
        "expired_points": 0,
        "tiers": {"reviewed": 0, "upgraded": 0, "kept": 0, "downgraded": 0},
        "birthdays": 0,
    }
    assert admin.get(f"{BASE}/check").json() == {"balanced": True, "problems": []}


def test_birthday_bonus_through_the_jobs(admin, session):
    today = datetime.now(UTC).date()
    # Born in a leap year, so that today is a birthday on every day, 29 February included.
    m = enrol(admin, session, birthday=date(1992, today.month, today.day).isoformat())
    assert admin.post(f"{BASE}/jobs/run").json()["birthdays"] == 1
    assert balance(admin, m["id"]) == 150
    assert admin.post(f"{BASE}/jobs/run").json()["birthdays"] == 0
    assert balance(admin, m["id"]) == 150


def test_members_arrive_from_a_csv_and_a_bad_file_enrols_nobody(admin, api, session):
    a = create_customer(session)
    b = create_customer(session, email="bea@shop.example")
    bad = f"customer_id,points\n{a.id},-3\n".encode()
    r = admin.post("/api/v1/loyalty/members.csv", content=bad, headers={"Content-Type": "text/csv"})
    assert r.status_code == 400
    assert r.json()["detail"]["errors"] == [
        {"row": 2, "column": "points", "value": "-3", "reason": "not a whole number of points from 0 to 10,000,000"}
    ]
    assert service.member_for_customer(session, a.id) is None
    good = f"customer_id,email,points\n{a.id},,40\n,bea@shop.example,\n".encode()
    r = api("agent").post("/api/v1/loyalty/members.csv", content=good, headers={"Content-Type": "text/csv"})
    assert r.status_code == 403  # opening balances are points given: managers only
    r = admin.post("/api/v1/loyalty/members.csv", content=good, headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["enrolled"], body["points"]) == (2, 40)
    first = service.member_for_customer(session, a.id)
    assert body["member_ids"] == [first.id, service.member_for_customer(session, b.id).id]
    assert balance(admin, first.id) == 140  # 40 carried over and the sign-up bonus
    r = admin.post("/api/v1/loyalty/members.csv", content=b"\xff\xfe", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "not UTF-8" in r.json()["error"]


def test_member_search_takes_percent_and_underscore_literally(admin, session):
    a = enrol(admin, session, first_name="Ann", last_name="Lee", email="ann_lee@shop.example")
    enrol(admin, session, first_name="Bob", last_name="Ray", email="annxlee@shop.example")

    def found(q):
        return [m["id"] for m in admin.get(f"{BASE}/members", params={"q": q}).json()["items"]]

    assert found("ann_") == [a["id"]]
    assert found("%") == []
