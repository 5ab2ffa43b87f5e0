"""Orders over the REST API: money that adds up, references that exist, returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from patron.models import Order, OrderLine
from tests.factories import create_customer, create_order, create_product

URL = "/api/v1/orders"


def fields_of(r) -> set[str]:
    return {e["field"] for e in r.json()["detail"]}


def payload(customer, product, **over):
    body = {
        "customer_id": customer.id,
        "placed_at": "2026-02-01T09:30:00+01:00",
        "channel": "online",
        "lines": [{"product_id": product.id, "quantity": 2, "unit_price": "19.99", "discount": "1.98"}],
        "discount": "5.00",
        "shipping_fee": "4.95",
        "tax": "3.10",
    }
    return body | over


def test_totals_are_computed_and_time_stored_in_utc(admin, session):
    c, p = create_customer(session), create_product(session)
    r = admin.post(URL, json=payload(c, p, external_id="WEB-1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["subtotal"] == "38.00"  # 2 * 19.99 - 1.98
    assert body["total"] == "41.05"  # 38.00 - 5.00 + 4.95 + 3.10
    assert body["placed_at"] == "2026-02-01T08:30:00Z"
    assert [ln["line_no"] for ln in body["lines"]] == [1]
    assert admin.get(f"{URL}/{body['id']}").json() == body


def test_amounts_that_do_not_add_up_are_refused(admin, session):
    c, p = create_customer(session), create_product(session)
    r = admin.post(URL, json=payload(c, p, total="41.00"))
    assert r.status_code == 422 and fields_of(r) == {"total"} and "41.05" in r.json()["error"]
    r = admin.post(URL, json=payload(c, p, subtotal="40.00"))
    assert r.status_code == 422 and fields_of(r) == {"subtotal"}
    r = admin.post(URL, json=payload(c, p, lines=[], subtotal=None))
    assert r.status_code == 422 and fields_of(r) == {"subtotal"}
    bad_line = {"product_id": p.id, "quantity": 0, "unit_price": "-1", "discount": "0"}
    r = admin.post(URL, json=payload(c, p, lines=[bad_line]))
    assert r.status_code == 422 and fields_of(r) == {"lines.0.quantity", "lines.0.unit_price"}
    r = admin.post(URL, json=payload(c, p, tax="1.001"))
    assert r.status_code == 422 and fields_of(r) == {"tax"}
    r = admin.post(URL, json=payload(c, p, currency="zzz"))
    assert r.status_code == 422 and fields_of(r) == {"currency"} and "ISO 4217" in r.json()["error"]
    r = admin.post(URL, json=payload(c, p, currency="gbp"))
    assert r.status_code == 201 and r.json()["currency"] == "GBP"


def test_time_must_be_aware_and_not_in_the_future(admin, session):
    c, p = create_customer(session), create_product(session)
    r = admin.post(URL, json=payload(c, p, placed_at="2026-02-01T09:30:00"))
    assert r.status_code == 422 and "time zone" in r.json()["error"]
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = admin.post(URL, json=payload(c, p, placed_at=future))
    assert r.status_code == 422 and fields_of(r) == {"placed_at"}
    # Year 0 once converted to UTC: a 422 naming the field, not a 500.
    r = admin.post(URL, json=payload(c, p, placed_at="0001-01-01T00:00:00+14:00"))
    assert r.status_code == 422 and fields_of(r) == {"placed_at"} and "years 1 to 9999" in r.json()["error"]


def test_unknown_references_write_nothing(admin, session):
    c, p = create_customer(session), create_product(session, sku="KNOWN")
    before = session.scalar(select(func.count()).select_from(OrderLine))
    lines = [
        {"sku": "KNOWN", "quantity": 1, "unit_price": "1.00"},
        {"sku": "NOPE", "quantity": 1, "unit_price": "1.00"},
        {"product_id": 987654, "quantity": 1, "unit_price": "1.00"},
    ]
    r = admin.post(URL, json=payload(c, p, lines=lines, discount="0"))
    assert r.status_code == 422 and fields_of(r) == {"lines.1.sku", "lines.2.product_id"}
    r = admin.post(URL, json=payload(c, p) | {"customer_id": 987654})
    assert r.status_code == 404 and "customer 987654" in r.json()["error"]
    r = admin.post(URL, json=payload(c, p, store_code="NOWHERE"))
    assert r.status_code == 404 and r.json()["detail"]["field"] == "store_code"
    assert session.scalar(select(func.count()).select_from(OrderLine)) == before


def test_duplicate_external_id_is_a_conflict(admin, session):
    c, p = create_customer(session), create_product(session)
    assert admin.post(URL, json=payload(c, p, external_id="POS-7")).status_code == 201
    before = session.scalar(select(func.count()).select_from(Order))
    r = admin.post(URL, json=payload(c, p, external_id="POS-7"))
    assert r.status_code == 409 and r.json()["detail"]["field"] == "external_id"
    assert session.scalar(select(func.count()).select_from(Order)) == before


def test_store_by_code(admin, session):
    c, p = create_customer(session), create_product(session)
    store = admin.post("/api/v1/stores", json={"code": "LYON-1", "name": "Lyon Part-Dieu", "country": "FR"}).json()
    r = admin.post(URL, json=payload(c, p, channel="in_store", store_code="LYON-1"))
    assert r.status_code == 201 and r.json()["store_id"] == store["id"]
    assert admin.post("/api/v1/stores", json={"code": "LYON-1", "name": "x"}).status_code == 409


def test_returns_move_status_and_never_exceed_what_was_paid(admin, session):
    c, p = create_customer(session), create_product(session)
    order = create_order(session, c, [(p, 3, Decimal("10.00"))])
    line_id = order.lines[0].id
    url = f"{URL}/{order.id}/returns"
    r = admin.post(url, json={"order_line_id": line_id, "quantity": 1, "amount": "10.00", "reason": "too small"})
    assert r.status_code == 201
    assert admin.get(f"{URL}/{order.id}").json()["status"] == "partially_returned"
    r = admin.post(url, json={"order_line_id": line_id, "quantity": 3, "amount": "5.00"})
    assert r.status_code == 422 and fields_of(r) == {"quantity"} and "only 2" in r.json()["error"]
    r = admin.post(url, json={"amount": "20.01", "kind": "refund"})
    assert r.status_code == 422 and fields_of(r) == {"amount"}
    r = admin.post(url, json={"amount": "0"})
    assert r.status_code == 422 and fields_of(r) == {"amount"}
    assert admin.post(url, json={"amount": "20.00", "kind": "refund"}).status_code == 201
    body = admin.get(f"{URL}/{order.id}").json()
    assert body["status"] == "returned" and [x["amount"] for x in body["returns"]] == ["10.00", "20.00"]


def test_update_and_filters(admin, session):
    c1, c2, p = create_customer(session), create_customer(session), create_product(session)
    o1 = create_order(session, c1, [(p, 1, Decimal("5"))], channel="mobile")
    create_order(session, c2, [(p, 1, Decimal("5"))], channel="phone")
    r = admin.patch(f"{URL}/{o1.id}", json={"status": "fulfilled"})
    assert r.status_code == 200 and r.json()["status"] == "fulfilled" and r.json()["total"] == "5.00"
    r = admin.patch(f"{URL}/{o1.id}", json={"status": None})
    assert r.status_code == 422 and fields_of(r) == {"status"}
    r = admin.patch(f"{URL}/{o1.id}", json={"total": "1.00"})
    assert r.status_code == 422 and fields_of(r) == {"total"}
    items = admin.get(URL, params={"customer_id": c1.id}).json()["items"]
    assert [o["id"] for o in items] == [o1.id]
    assert admin.get(URL, params={"channel": "fax"}).status_code == 422


def test_roles(api, session):
    c, p = create_customer(session), create_product(session)
    assert api("agent").post(URL, json=payload(c, p)).status_code == 403
    assert api("analyst").get(URL).status_code == 200
    assert api("marketer").post(URL, json=payload(c, p)).status_code == 201


def test_time_filters_refuse_naive_times_and_times_outside_the_calendar(admin):
    for url, param in (("/api/v1/orders", "placed_from"), ("/api/v1/interactions", "occurred_to")):
        for value, message in (
            ("0001-01-01T00:00:00+14:00", "years 1 to 9999"),
            ("9999-12-31T23:59:59-12:00", "years 1 to 9999"),
            ("2026-01-01T00:00:00", "time zone"),
        ):
            r = admin.get(url, params={param: value})
            assert r.status_code == 422, (url, value, r.text)
            assert r.json()["detail"][0]["field"] == param and message in r.json()["error"]
        assert admin.get(url, params={param: "2026-01-01T00:00:00Z"}).status_code == 200
