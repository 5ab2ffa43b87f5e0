"""Regressions found by the OpenAPI fuzzer: input a database cannot hold is a 422, not a 500."""

from __future__ import annotations

import pytest

from tests.factories import create_customer


@pytest.mark.parametrize(
    "path",
    ["/api/v1/customers/2147483648", "/api/v1/orders/99999999999", "/api/v1/products/0", "/api/v1/interactions/-1"],
)
def test_ids_outside_the_integer_range_are_invalid_not_errors(admin, path):
    r = admin.get(path)
    assert r.status_code == 422 and r.json()["detail"][0]["field"].endswith("_id")


def test_body_ids_are_bounded_too(admin):
    r = admin.post("/api/v1/interactions", json={"customer_id": 2**31, "kind": "call"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "customer_id"


def test_nul_characters_are_refused_with_the_field_named(admin, session):
    c = create_customer(session)
    r = admin.post("/api/v1/interactions", json={"customer_id": c.id, "kind": "note", "body": "a\x00b"})
    assert r.status_code == 422 and r.json()["detail"] == [
        {"field": "body", "message": "must not contain NUL (\\x00) characters"}
    ]
    r = admin.patch(f"/api/v1/customers/{c.id}", json={"attributes": {"vip": ["x", "\x00"]}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "attributes.vip.1"
    r = admin.get("/api/v1/customers", params={"q": "an\x00n"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "q"


def _cursor(values) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("/api/v1/customers?sort=id", [9999999999999999999999999, 1]),
        ("/api/v1/products?sort=id", [1, -9999999999999999999999999]),
        ("/api/v1/orders", ["0001-01-01T00:00:00+14:00", 1]),
        ("/api/v1/customers/{id}/360", ["9999-12-31T23:59:59-12:00", "order", 1]),
    ],
)
def test_a_cursor_holding_values_no_column_can_hold_is_a_400(admin, session, path, values):
    path = path.format(id=create_customer(session).id)
    separator = "&" if "?" in path else "?"
    r = admin.get(f"{path}{separator}cursor={_cursor(values)}")
    assert r.status_code == 400 and r.json()["detail"] == {"field": "cursor"}, r.text


def test_lone_surrogates_in_json_are_refused_with_the_field_named(admin, session):
    # Written by hand: json.dumps would escape them the same way a client does.
    r = admin.post(
        "/api/v1/customers",
        content='{"first_name": "Ada", "attributes": {"note": "x\\ud800y"}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "attributes.note", r.text
    assert "lone surrogate" in r.json()["error"]
    r = admin.post(
        "/api/v1/customers",
        content='{"first_name": "Ada", "attributes": {"\\udfff": 1}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "lone surrogate" in r.json()["error"], r.text
    r = admin.post(
        "/api/v1/segments/preview",
        content='{"rule": {"field": "city", "op": "eq", "value": "\\ud83d"}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (400, 422) and "surrogate" in r.text, r.text
    # A proper pair (an emoji) is a character like any other.
    r = admin.post(
        "/api/v1/customers",
        content='{"first_name": "Ada", "attributes": {"note": "\\ud83d\\ude00"}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["attributes"]["note"] == "\U0001f600"
