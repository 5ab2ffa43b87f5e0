"""POST /webhooks/orders: HMAC-signed order pushes, upserted like batch records."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.models import Customer, Order
from tests.factories import create_product

URL = "/api/v1/webhooks/orders"
SECRET = "whsec-test-0123456789"


def sign(body: bytes, *, secret: str = SECRET, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def record(external_id: str = "SHOP-1001", **over) -> bytes:
    body = {
        "external_id": external_id,
        "customer": {"source": "shop", "external_id": "CUST-77", "email": "pat@shop.example", "first_name": "Pat"},
        "placed_at": "2026-03-02T10:00:00Z",
        "channel": "online",
        "lines": [{"sku": "HOOK-1", "quantity": 1, "unit_price": "12.00"}],
    }
    return json.dumps(body | over).encode()


@pytest.fixture
def shop(app):
    """An unauthenticated client (no bearer token), with webhooks enabled."""
    app.state.settings = app.state.settings.model_copy(update={"webhook_secret": SECRET})
    return TestClient(app)


def push(client, body: bytes, signature: str | None = None):
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["X-Patron-Signature"] = signature
    return client.post(URL, content=body, headers=headers)


def test_a_signed_order_is_recorded_and_a_redelivery_changes_nothing(shop, session):
    create_product(session, sku="HOOK-1")
    body = record()
    r = push(shop, body, sign(body))
    assert r.status_code == 201, r.text
    result = r.json()
    assert result["status"] == "created" and result["index"] == 0
    assert [(s["type"], s["reference"]) for s in result["stubs"]] == [("customer", "shop:CUST-77")]
    order = session.get(Order, result["id"])
    assert session.get(Customer, order.customer_id).email == "pat@shop.example"

    r = push(shop, body, sign(body))
    assert r.status_code == 200 and r.json()["status"] == "unchanged" and r.json()["id"] == order.id
    paid = record(status="paid")
    r = push(shop, paid, sign(paid))
    assert r.status_code == 200 and r.json()["status"] == "updated"
    assert session.scalar(select(func.count()).select_from(Order).where(Order.external_id == "SHOP-1001")) == 1


def test_a_rejected_order_is_a_422_and_writes_nothing(shop, session):
    customers = session.scalar(select(func.count()).select_from(Customer))
    body = record(lines=[{"sku": "UNKNOWN", "quantity": 1, "unit_price": "1.00"}])
    r = push(shop, body, sign(body))
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {"field": "lines.0.sku", "message": "no product with sku 'UNKNOWN' (send unknown_products=stub to create one)"}
    ]
    assert session.scalar(select(func.count()).select_from(Customer)) == customers  # the stub went too

    bad = record(channel="carrier-pigeon")
    r = push(shop, bad, sign(bad))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "channel"
    garbage = b"{not json"
    r = push(shop, garbage, sign(garbage))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "malformed"),
        ("t=abc,v1=abc", "malformed"),
        ("t=1700000000", "malformed"),
        ("sha256=deadbeef", "malformed"),
    ],
)
def test_missing_or_malformed_signatures_are_401(shop, signature, reason):
    r = push(shop, record(), signature)
    assert r.status_code == 401 and reason in r.json()["error"]
    assert r.headers["www-authenticate"] == "Patron-Signature"


def test_wrong_secret_altered_body_and_stale_timestamps_are_401(shop, session):
    body = record()
    r = push(shop, body, sign(body, secret="not-the-secret"))
    assert r.status_code == 401 and "does not match" in r.json()["error"]
    r = push(shop, record(total="0.00"), sign(body))
    assert r.status_code == 401 and "does not match" in r.json()["error"]
    for skew in (-301, 301):
        r = push(shop, body, sign(body, t=int(time.time()) + skew))
        assert r.status_code == 401 and "5 minutes" in r.json()["error"], skew
    assert session.scalar(select(Order.id).where(Order.external_id == "SHOP-1001")) is None


def test_a_rotated_secret_can_be_sent_as_a_second_v1(shop, session):
    create_product(session, sku="HOOK-1")
    body = record()
    old, new = sign(body, secret="old-secret"), sign(body)
    r = push(shop, body, f"{old},v1={new.split('v1=')[1]}")
    assert r.status_code == 201, r.text


def test_disabled_without_a_secret(app):
    app.state.settings = app.state.settings.model_copy(update={"webhook_secret": ""})
    body = record()
    r = push(TestClient(app), body, sign(body))
    assert r.status_code == 503 and "PATRON_WEBHOOK_SECRET" in r.json()["error"]


def test_a_bearer_token_is_no_substitute_for_a_signature(shop, admin):
    r = admin.post(URL, content=record(), headers={"content-type": "application/json"})
    assert r.status_code == 401 and "missing X-Patron-Signature" in r.json()["error"]
