"""Duplicates and merges over the REST API, and how merged ids behave elsewhere in the API."""

from __future__ import annotations

from sqlalchemy import select

from patron.models import CustomerMerge
from tests.factories import create_customer, create_order

URL = "/api/v1/customers"


def two_anns(session):
    ann = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
    dup = create_customer(
        session, first_name="Ann", last_name="Lee", email="ann+shop@shop.example", external_ids={"shop": "77"}
    )
    create_order(session, dup)
    return ann, dup


def test_list_duplicates(api, session):
    ann, dup = two_anns(session)
    r = api("viewer").get(f"{URL}/duplicates")
    assert r.status_code == 200, r.text
    (pair,) = r.json()["items"]
    assert (pair["a"]["id"], pair["b"]["id"]) == (ann.id, dup.id)
    assert pair["exact"] is True and "same email (canonical)" in pair["reasons"]
    assert pair["suggested_survivor_id"] == dup.id  # it has the order
    assert pair["b"]["order_count"] == 1
    assert api("viewer").get(f"{URL}/duplicates?min_score=0.99").json()["items"] == []
    assert api("viewer").get(f"{URL}/duplicates?min_score=2").status_code == 422


def test_merge_list_and_undo(api, session):
    ann, dup = two_anns(session)
    agent = api("agent")
    r = agent.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id})
    assert r.status_code == 201, r.text
    merge = r.json()
    assert (merge["survivor_id"], merge["merged_id"], merge["undone_at"]) == (ann.id, dup.id, None)
    assert merge["merged_by_id"] is not None and merge["moved"]["orders"]
    assert merge["reasons"][0] == "same email (canonical)"

    assert [m["id"] for m in agent.get(f"{URL}/merges").json()["items"]] == [merge["id"]]
    assert agent.get(f"{URL}/merges?customer_id={dup.id}&active=true").json()["items"][0]["id"] == merge["id"]
    assert agent.get(f"{URL}/merges/{merge['id']}").json() == merge
    assert agent.get(f"{URL}/duplicates").json()["items"] == []

    r = agent.post(f"{URL}/merges/{merge['id']}/undo")
    assert r.status_code == 200 and r.json()["undone_at"] is not None
    r = agent.post(f"{URL}/merges/{merge['id']}/undo")
    assert r.status_code == 409 and "already undone" in r.json()["error"]
    assert len(agent.get(f"{URL}/duplicates").json()["items"]) == 1


def test_merge_errors(admin, session):
    ann, dup = two_anns(session)
    r = admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": ann.id})
    assert r.status_code == 400 and "itself" in r.json()["error"]
    r = admin.post(f"{URL}/merges", json={"survivor_id": 999999, "merged_id": dup.id})
    assert r.status_code == 404 and r.json()["detail"] == {"field": "survivor_id"}
    r = admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id, "score": 1})
    assert r.status_code == 422
    assert admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id}).status_code == 201
    r = admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id})
    assert r.status_code == 409 and "already merged" in r.json()["error"]
    assert admin.get(f"{URL}/merges/999999").status_code == 404
    assert admin.post(f"{URL}/merges/999999/undo").status_code == 404


def test_refused_undo_names_the_later_merge_and_writes_nothing(admin, session):
    ann, dup = two_anns(session)
    third = create_customer(session, first_name="Ann", last_name="Lee", email="a.lee@else.example")
    first = admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id}).json()
    second = admin.post(f"{URL}/merges", json={"survivor_id": third.id, "merged_id": ann.id}).json()
    r = admin.post(f"{URL}/merges/{first['id']}/undo")
    assert r.status_code == 409
    assert f"merge {second['id']}" in r.json()["error"]
    assert r.json()["detail"]["blocking_merge_id"] == second["id"]
    assert session.get(CustomerMerge, first["id"]).undone_at is None


def test_merged_ids_redirect_to_the_survivor(api, session):
    ann, dup = two_anns(session)
    admin = api("admin")
    admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id})
    reader = api("viewer")
    for suffix in ("", "/360?limit=5", "/consents?history=true"):
        r = reader.get(f"{URL}/{dup.id}{suffix}", follow_redirects=False)
        assert r.status_code == 307, suffix
        assert r.headers["location"] == f"{URL}/{ann.id}{suffix}"
    assert reader.get(f"{URL}/{dup.id}").json()["id"] == ann.id  # followed
    assert reader.get(f"{URL}/{dup.id}/360").json()["kpis"]["order_count"] == 1
    assert reader.get(f"{URL}/{ann.id}", follow_redirects=False).status_code == 200

    r = admin.patch(f"{URL}/{dup.id}", json={"city": "York"})
    assert r.status_code == 409 and r.json()["detail"]["survivor_id"] == ann.id
    assert admin.delete(f"{URL}/{dup.id}").status_code == 409


def test_lists_hide_merged_customers_and_ids_resolve_to_the_survivor(admin, session):
    ann, dup = two_anns(session)
    admin.post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id})
    assert [c["id"] for c in admin.get(URL, params={"q": "ann"}).json()["items"]] == [ann.id]
    r = admin.get(URL, params={"external_source": "shop", "external_id": "77"})
    assert [c["id"] for c in r.json()["items"]] == [ann.id]
    product = admin.post("/api/v1/products", json={"sku": "P-1", "name": "Pen", "price": "2.00"}).json()
    order = {
        "customer_id": dup.id,
        "placed_at": "2026-01-02T10:00:00Z",
        "channel": "online",
        "lines": [{"product_id": product["id"], "quantity": 1, "unit_price": "2.00"}],
    }
    r = admin.post("/api/v1/orders", json=order)
    assert r.status_code == 201 and r.json()["customer_id"] == ann.id
    r = admin.post("/api/v1/interactions", json={"customer_id": dup.id, "kind": "call"})
    assert r.status_code == 201 and r.json()["customer_id"] == ann.id
    r = admin.post(f"{URL}/{dup.id}/consents", json={"channel": "sms", "status": "granted"})
    assert r.status_code == 201
    assert {c["channel"] for c in admin.get(f"{URL}/{ann.id}/consents").json()} == {"sms"}


def test_merge_needs_the_merge_permission(api, session):
    ann, dup = two_anns(session)
    r = api("analyst").post(f"{URL}/merges", json={"survivor_id": ann.id, "merged_id": dup.id})
    assert r.status_code == 403 and "merge_customers" in r.json()["error"]
    assert session.scalars(select(CustomerMerge)).all() == []
