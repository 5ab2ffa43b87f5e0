"""POST /orders/batch: upsert by external_id, stubs or refusals for unknown references."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from patron.models import Customer, CustomerExternalId, Order, Product
from tests.factories import create_customer, create_order, create_product

URL = "/api/v1/orders/batch"


def order(external_id: str, **over):
    body = {
        "external_id": external_id,
        "placed_at": "2026-02-01T09:30:00+01:00",
        "channel": "online",
        "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "9.50"}],
    }
    return body | over


def send(client, records, **options):
    r = client.post(URL, json={"records": records, **options})
    assert r.status_code == 200, r.text
    return r.json()


def statuses(body) -> list[str]:
    return [r["status"] for r in body["results"]]


def fields(result) -> set[str]:
    return {e["field"] for e in result["errors"]}


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_good_and_bad_records_each_get_their_result(admin, session):
    c = create_customer(session, external_ids={"shop": "C-1"})
    p = create_product(session, sku="MUG-1")
    body = send(
        admin,
        [
            order("W-1", customer_id=c.id),
            order(
                "W-2",
                customer={"source": "shop", "external_id": "C-1"},
                lines=[{"product_id": p.id, "quantity": 1, "unit_price": "9.50"}],
            ),
            order("W-3", customer_id=c.id, total="1.00"),
            order("W-4", customer={"source": "shop", "external_id": "NOBODY"}),
            order("W-5", customer_id=c.id, lines=[{"sku": "NOPE", "quantity": 1, "unit_price": "1.00"}]),
            order("W-6", customer_id=c.id, customer={"source": "shop", "external_id": "C-1"}),
            {"customer_id": c.id, "placed_at": "2026-02-01T09:30:00Z", "channel": "online", "subtotal": "5.00"},
        ],
    )
    assert statuses(body) == ["created", "created", "rejected", "rejected", "rejected", "rejected", "rejected"]
    assert body["summary"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 5}
    r = body["results"]
    assert fields(r[2]) == {"total"} and "19.00" in r[2]["errors"][0]["message"]
    assert fields(r[3]) == {"customer.external_id"} and "unknown_customers=stub" in r[3]["errors"][0]["message"]
    assert fields(r[4]) == {"lines.0.sku"} and "'NOPE'" in r[4]["errors"][0]["message"]
    assert fields(r[5]) == {"customer_id"}
    assert fields(r[6]) == {"external_id"}
    w1 = session.get(Order, r[0]["id"])
    assert (w1.customer_id, w1.total, w1.lines[0].product_id) == (c.id, Decimal("19.00"), p.id)
    assert session.scalar(select(func.count()).select_from(Order).where(Order.external_id.like("W-%"))) == 2


def test_every_reason_to_refuse_a_record_is_reported_together(admin, session):
    body = send(
        admin,
        [
            order(
                "W-9",
                customer={"source": "shop", "external_id": "X"},
                store_code="NOWHERE",
                lines=[
                    {"sku": "NOPE-1", "quantity": 1, "unit_price": "1.00"},
                    {"product_id": 2_000_000_000, "quantity": 1, "unit_price": "1.00"},
                ],
            )
        ],
    )
    assert fields(body["results"][0]) == {"customer.external_id", "store_code", "lines.0.sku", "lines.1.product_id"}


def test_stubs_for_unknown_customers_and_products_when_asked(admin, session):
    customers_before, products_before = count(session, Customer), count(session, Product)
    ref = {"source": "shop", "external_id": "NEW-7", "email": "New@Shop.example", "first_name": "Nia"}
    records = [
        order("S-1", customer=ref, lines=[{"sku": "TEA-1", "quantity": 3, "unit_price": "4.20"}]),
        order(
            "S-2",
            customer={"source": "shop", "external_id": "NEW-7"},
            lines=[{"sku": "TEA-1", "quantity": 1, "unit_price": "4.50"}],
        ),
    ]
    body = send(admin, records, unknown_customers="stub", unknown_products="stub")
    assert statuses(body) == ["created", "created"]
    stubs = body["results"][0]["stubs"]
    assert [(s["type"], s["reference"]) for s in stubs] == [("customer", "shop:NEW-7"), ("product", "TEA-1")]
    assert body["results"][1]["stubs"] == []  # the second order found both stubs
    assert count(session, Customer) == customers_before + 1 and count(session, Product) == products_before + 1
    customer = session.get(Customer, stubs[0]["id"])
    assert (customer.email, customer.first_name) == ("new@shop.example", "Nia")
    assert {x.source: x.external_id for x in customer.external_ids} == {"shop": "NEW-7"}
    product = session.get(Product, stubs[1]["id"])
    assert (product.sku, product.name, product.price) == ("TEA-1", "TEA-1", Decimal("4.20"))
    assert {session.get(Order, r["id"]).customer_id for r in body["results"]} == {customer.id}


def test_unknown_references_are_refused_by_default_and_nothing_is_created(admin, session):
    customers_before, products_before = count(session, Customer), count(session, Product)
    body = send(admin, [order("R-1", customer={"source": "shop", "external_id": "Z"})])
    assert statuses(body) == ["rejected"]
    assert fields(body["results"][0]) == {"customer.external_id", "lines.0.sku"}
    assert (count(session, Customer), count(session, Product)) == (customers_before, products_before)


def test_a_stub_is_rolled_back_with_the_order_that_failed(admin, session):
    customers_before = count(session, Customer)
    body = send(
        admin,
        [
            order(
                "R-2",
                customer={"source": "shop", "external_id": "GONE"},
                lines=[
                    {"sku": "MUG-1", "quantity": 1, "unit_price": "2.00"},
                    {"sku": "NO SPACES ALLOWED", "quantity": 1, "unit_price": "2.00"},
                ],
            )
        ],
        unknown_customers="stub",
        unknown_products="stub",
    )
    # The customer and the first product were stubbed before the second SKU turned out bad.
    assert statuses(body) == ["rejected"] and fields(body["results"][0]) == {"lines.1.sku"}
    assert "stub product" in body["results"][0]["errors"][0]["message"]
    assert count(session, Customer) == customers_before
    assert session.scalar(select(Product.id).where(Product.sku == "MUG-1")) is None
    assert session.scalar(select(CustomerExternalId.id).where(CustomerExternalId.external_id == "GONE")) is None


def test_resent_orders_are_unchanged_updated_or_refused(admin, session):
    c = create_customer(session)
    create_product(session, sku="MUG-1")
    create_product(session, sku="MUG-2")
    first = send(admin, [order("U-1", customer_id=c.id), order("U-2", customer_id=c.id)])
    assert statuses(first) == ["created", "created"]
    u1 = first["results"][0]["id"]

    body = send(
        admin,
        [
            order("U-1", customer_id=c.id),
            order("U-2", customer_id=c.id, status="fulfilled", channel="in_store"),
        ],
    )
    assert statuses(body) == ["unchanged", "updated"]
    updated = session.get(Order, body["results"][1]["id"])
    session.refresh(updated)
    assert (updated.status, updated.channel) == ("fulfilled", "in_store")

    other = create_customer(session)
    body = send(
        admin,
        [
            order("U-1", customer_id=c.id, shipping_fee="5.00"),
            order("U-1", customer_id=c.id, lines=[{"sku": "MUG-2", "quantity": 2, "unit_price": "9.50"}]),
            order("U-1", customer_id=other.id),
        ],
    )
    assert statuses(body) == ["rejected"] * 3
    amounts, lines, customer = (r["errors"] for r in body["results"])
    assert {e["field"] for e in amounts} == {"shipping_fee", "total"}
    assert all("return or refund" in e["message"] and f"/orders/{u1}/returns" in e["message"] for e in amounts)
    assert [e["field"] for e in lines] == ["lines"] and "return or refund" in lines[0]["message"]
    assert customer[0]["field"] == "customer_id"
    o = session.get(Order, u1)
    session.refresh(o)
    assert (o.total, o.shipping_fee, o.customer_id) == (Decimal("19.00"), Decimal("0.00"), c.id)


def test_a_returned_order_keeps_its_status_when_resent(admin, session):
    c = create_customer(session)
    p = create_product(session, sku="MUG-1")
    o = create_order(session, c, lines=[(p, 2, Decimal("9.50"))], external_id="RET-1")
    r = admin.post(f"/api/v1/orders/{o.id}/returns", json={"amount": "9.50"})
    assert r.status_code == 201, r.text
    body = send(admin, [order("RET-1", customer_id=c.id, placed_at="2026-01-15T12:00:00Z", status="placed")])
    assert statuses(body) == ["unchanged"]
    assert "status stays partially_returned" in body["results"][0]["notes"][0]


def test_orders_of_a_merged_customer_go_to_the_survivor(admin, session):
    survivor = create_customer(session)
    merged = create_customer(session, external_ids={"shop": "M-1"})
    merged.merged_into_id = survivor.id
    session.flush()
    create_product(session, sku="MUG-1")
    body = send(
        admin, [order("M-1", customer={"source": "shop", "external_id": "M-1"}), order("M-2", customer_id=merged.id)]
    )
    assert statuses(body) == ["created", "created"]
    assert {session.get(Order, r["id"]).customer_id for r in body["results"]} == {survivor.id}
    assert all(f"merged into {survivor.id}" in r["notes"][0] for r in body["results"])
    assert statuses(send(admin, [order("M-1", customer_id=merged.id)])) == ["unchanged"]


def test_an_unknown_shop_id_with_a_known_email_joins_that_customer(admin, session):
    c = create_customer(session, email="eve@shop.example")
    create_product(session, sku="MUG-1")
    ref = {"source": "shop", "external_id": "E-1", "email": "eve@shop.example"}
    body = send(admin, [order("E-1", customer=ref)])
    assert statuses(body) == ["created"] and body["results"][0]["stubs"] == []
    assert session.get(Order, body["results"][0]["id"]).customer_id == c.id
    session.refresh(c)
    assert {x.source: x.external_id for x in c.external_ids} == {"shop": "E-1"}
    assert "found by email" in body["results"][0]["notes"][0]


def test_options_are_validated(admin):
    r = admin.post(URL, json={"records": [order("O-1", customer_id=1)], "unknown_customers": "maybe"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "unknown_customers"
