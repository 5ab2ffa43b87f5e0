"""Customers over the REST API: validation, duplicates, search, pagination, consent, 360."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from patron.models import ConsentEvent, Customer
from tests.factories import create_customer, create_interaction, create_order, create_product

URL = "/api/v1/customers"


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def fields_of(response) -> set[str]:
    return {e["field"] for e in response.json()["detail"]}


def test_create_normalises_contact_data(admin):
    r = admin.post(
        URL,
        json={
            "first_name": " Ann ",
            "last_name": "Lee",
            "email": " Ann.Lee@Example.COM ",
            "phone": "(415) 555-2671",
            "country": "us",
            "interests": ["Running", "running ", "Yoga"],
            "external_ids": {"shop": "A-1", "pos": "77"},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["first_name"] == "Ann"
    assert body["email"] == "ann.lee@example.com"
    assert body["phone"] == "+14155552671"
    assert body["country"] == "US"
    assert body["interests"] == ["running", "yoga"]
    assert body["external_ids"] == {"pos": "77", "shop": "A-1"}
    assert admin.get(f"{URL}/{body['id']}").json() == body


def test_bad_input_names_each_field(admin, session):
    before = count(session, Customer)
    r = admin.post(
        URL,
        json={
            "email": "not-an-email",
            "phone": "12",
            "country": "XX",
            "birthday": "2999-01-01",
            "household_size": "many",
            "time_zone": "Mars/Olympus",
            "nickname": "x",
        },
    )
    assert r.status_code == 422
    assert fields_of(r) == {"email", "phone", "country", "birthday", "household_size", "time_zone", "nickname"}
    assert "unknown field" in r.json()["error"]
    assert count(session, Customer) == before


def test_cross_field_rules_blame_a_field(admin):
    r = admin.post(URL, json={"first_name": "A", "birthday": "1990-05-01", "birth_year": 1991})
    assert r.status_code == 422 and fields_of(r) == {"birth_year"}
    r = admin.post(URL, json={})
    assert r.status_code == 422 and "at least a name" in r.json()["error"]


def test_duplicate_email_and_external_id_are_conflicts(admin, session):
    create_customer(session, email="dup@shop.example", external_ids={"shop": "9"})
    before = count(session, Customer)
    r = admin.post(URL, json={"first_name": "B", "email": "DUP@shop.example"})
    assert r.status_code == 409 and r.json()["detail"]["field"] == "email"
    r = admin.post(URL, json={"first_name": "B", "external_ids": {"shop": "9"}})
    assert r.status_code == 409 and r.json()["detail"]["field"] == "external_ids.shop"
    assert count(session, Customer) == before


def test_failed_request_writes_nothing(admin, session):
    """Customer and consents are one transaction: a bad consent leaves no customer behind."""
    before = (count(session, Customer), count(session, ConsentEvent))
    r = admin.post(
        URL,
        json={
            "first_name": "C",
            "consents": [{"channel": "email", "status": "granted"}, {"channel": "fax", "status": "granted"}],
        },
    )
    assert r.status_code == 422 and fields_of(r) == {"consents.1.channel"}
    assert (count(session, Customer), count(session, ConsentEvent)) == before


def test_unknown_id_is_404(admin):
    for method, path in [
        ("get", f"{URL}/999999"),
        ("patch", f"{URL}/999999"),
        ("delete", f"{URL}/999999"),
        ("get", f"{URL}/999999/360"),
    ]:
        r = admin.request(method, path, json={} if method == "patch" else None)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "customer 999999 not found"


def test_patch_changes_only_what_was_sent(admin, session):
    c = create_customer(session, city="Lyon", phone="+33612345678", birthday="1980-02-03")
    r = admin.patch(f"{URL}/{c.id}", json={"city": "Paris", "external_ids": {"shop": "S1"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["city"] == "Paris" and body["phone"] == "+33612345678" and body["birthday"] == "1980-02-03"
    assert body["external_ids"] == {"shop": "S1"}
    # Cross-field rules see the stored values too.
    r = admin.patch(f"{URL}/{c.id}", json={"birth_year": 1975})
    assert r.status_code == 422 and fields_of(r) == {"birth_year"}
    # Clearing an optional field is allowed and distinct from leaving it out.
    assert admin.patch(f"{URL}/{c.id}", json={"phone": None}).json()["phone"] is None


def test_patch_to_another_customers_email_is_conflict(admin, session):
    create_customer(session, email="taken@shop.example")
    c = create_customer(session)
    r = admin.patch(f"{URL}/{c.id}", json={"email": "taken@shop.example"})
    assert r.status_code == 409


def test_delete_needs_admin_and_removes_history(api, session):
    c = create_customer(session)
    create_order(session, c)
    assert api("marketer").delete(f"{URL}/{c.id}").status_code == 403
    assert api("admin").delete(f"{URL}/{c.id}").status_code == 204
    assert api("admin").get(f"{URL}/{c.id}").status_code == 404


def test_search_by_name_email_and_phone(admin, session):
    ann = create_customer(
        session, first_name="Annabel", last_name="Okafor", email="a.okafor@mail.example", phone="+442079460958"
    )
    create_customer(session, first_name="Bob", last_name="Annand", email="bob@mail.example")
    create_customer(session, first_name="Zed", last_name="Zulu", email="zed@mail.example")

    def ids(q):
        return {c["id"] for c in admin.get(URL, params={"q": q, "limit": 500}).json()["items"]}

    assert ann.id in ids("anna") and len(ids("anna")) == 2  # first name Annabel, last name Annand
    assert ids("annabel oka") == {ann.id}  # full name prefix
    assert ids("A.OKAFOR@") == {ann.id}  # email, case-insensitive
    assert ids("020 7946 0958") == {ann.id}  # national format of the stored E.164 number
    assert ids("50%") == set()  # LIKE wildcards are literal


def test_filters_and_cursor_pagination_visit_every_row_once(admin, session):
    made = [create_customer(session, country="FR" if i % 2 else "DE", last_name="Same") for i in range(11)]
    french = {c.id for c in made if c.country == "FR"}
    seen, cursor, pages = [], None, 0
    while True:
        params = {"country": "fr", "sort": "last_name", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = admin.get(URL, params=params).json()
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(seen) >= french and len(seen) == len(set(seen))
    assert {i for i in seen if i in {c.id for c in made}} == french
    desc = [c["id"] for c in admin.get(URL, params={"sort": "-created_at", "limit": 500}).json()["items"]]
    mine = [i for i in desc if i in {c.id for c in made}]
    assert mine == sorted(mine, reverse=True)


def test_bad_sort_cursor_and_limit_are_explained(admin):
    r = admin.get(URL, params={"sort": "password"})
    assert r.status_code == 400 and "cannot sort by 'password'" in r.json()["error"]
    r = admin.get(URL, params={"cursor": "garbage!!"})
    assert r.status_code == 400 and r.json()["detail"]["field"] == "cursor"
    r = admin.get(URL, params={"limit": 0})
    assert r.status_code == 422 and fields_of(r) == {"limit"}


def test_consent_history_is_append_only_and_current_state_is_latest(admin, session):
    c = create_customer(session, consents=[{"channel": "email", "status": "granted", "source": "signup"}])
    r = admin.post(f"{URL}/{c.id}/consents", json={"channel": "email", "status": "withdrawn", "source": "unsubscribe"})
    assert r.status_code == 201
    admin.post(f"{URL}/{c.id}/consents", json={"channel": "sms", "purpose": "service", "status": "granted"})
    current = {(x["channel"], x["purpose"]): x["status"] for x in admin.get(f"{URL}/{c.id}/consents").json()}
    assert current == {("email", "marketing"): "withdrawn", ("sms", "service"): "granted"}
    history = admin.get(f"{URL}/{c.id}/consents", params={"history": True}).json()
    assert [h["status"] for h in history if h["channel"] == "email"] == ["withdrawn", "granted"]
    r = admin.post(f"{URL}/{c.id}/consents", json={"channel": "email", "status": "maybe"})
    assert r.status_code == 422 and fields_of(r) == {"status"}


def test_360_kpis(admin, session):
    c = create_customer(session)
    shoes = create_product(session, category_path="Women/Shoes", brand="Strada")
    toys = create_product(session, category_path="Kids/Toys", brand="Ravens")
    t0 = datetime(2025, 3, 1, 10, tzinfo=UTC)
    create_order(session, c, [(shoes, 1, Decimal("80.00"))], placed_at=t0, channel="in_store")
    o2 = create_order(
        session,
        c,
        [(toys, 3, Decimal("10.00")), (shoes, 1, Decimal("40.00"))],
        placed_at=t0 + timedelta(days=30),
        shipping_fee=Decimal("5.00"),
    )
    create_order(session, c, [(toys, 10, Decimal("10.00"))], placed_at=t0 + timedelta(days=60), status="cancelled")
    assert admin.post(f"/api/v1/orders/{o2.id}/returns", json={"amount": "15.00", "kind": "refund"}).status_code == 201

    kpis = admin.get(f"{URL}/{c.id}/360").json()["kpis"]
    assert kpis["order_count"] == 2  # the cancelled order does not count
    assert kpis["first_purchase_at"] == "2025-03-01T10:00:00Z"
    assert kpis["last_purchase_at"] == "2025-03-31T10:00:00Z"
    assert Decimal(kpis["refunded"]) == Decimal("15.00")
    assert Decimal(kpis["total_spend"]) == Decimal("80.00") + Decimal("75.00") - Decimal("15.00")
    assert Decimal(kpis["average_order_value"]) == Decimal("70.00")
    assert [f["name"] for f in kpis["favourite_categories"]] == ["Women/Shoes", "Kids/Toys"]
    assert kpis["favourite_brands"][0] == {"name": "Strada", "spend": "120.00", "quantity": 2}
    assert {ch["channel"]: ch["share"] for ch in kpis["channel_mix"]} == {"in_store": 0.5, "online": 0.5}


def test_360_for_a_customer_with_no_history(admin, session):
    c = create_customer(session)
    body = admin.get(f"{URL}/{c.id}/360").json()
    assert body["kpis"]["order_count"] == 0 and body["kpis"]["average_order_value"] is None
    assert body["timeline"] == [] and body["next_cursor"] is None


def test_360_timeline_merges_newest_first_and_pages_through_ties(admin, session):
    c = create_customer(session)
    other = create_customer(session)
    t = datetime(2025, 6, 1, 12, tzinfo=UTC)
    expected = []
    for i in range(4):
        # Orders and interactions at the same instants, to exercise the tie-breaking.
        expected.append(("order", create_order(session, c, placed_at=t + timedelta(hours=i)).id, i))
        expected.append(("interaction", create_interaction(session, c, occurred_at=t + timedelta(hours=i)).id, i))
    create_interaction(session, other, occurred_at=t)  # someone else's: never shown
    expected.sort(key=lambda e: (e[2], e[0], e[1]), reverse=True)

    got, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = admin.get(f"{URL}/{c.id}/360", params=params).json()
        got += [(e["type"], e["id"]) for e in body["timeline"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert got == [(kind, id_) for kind, id_, _ in expected]
