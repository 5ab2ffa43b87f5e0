"""The segments REST API: authentication and roles, preview, CRUD, members, CSV, reports, snapshots."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.models import Segment
from patron.models.enums import Role
from patron.users.permissions import Permission, allows
from tests.factories import create_customer

BASE = "/api/v1/segments"
FR = {"field": "country", "op": "eq", "value": "FR"}


def test_every_route_needs_a_token(app):
    client = TestClient(app)
    routes = [
        ("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/fields"), ("GET", f"{BASE}/examples"),
        ("POST", f"{BASE}/preview"), ("GET", f"{BASE}/1"), ("PATCH", f"{BASE}/1"), ("DELETE", f"{BASE}/1"),
        ("GET", f"{BASE}/1/members"), ("GET", f"{BASE}/1/members.csv"), ("POST", f"{BASE}/1/members"),
        ("POST", f"{BASE}/1/members.csv"), ("POST", f"{BASE}/1/freeze"), ("GET", f"{BASE}/1/report"),
        ("GET", f"{BASE}/compare?first=1&second=2"), ("GET", f"{BASE}/snapshots"), ("POST", f"{BASE}/snapshots"),
        ("GET", f"{BASE}/migration"), ("POST", f"{BASE}/clusters"),
    ]  # fmt: skip
    for method, url in routes:
        r = client.request(method, url, json={})
        assert r.status_code == 401, (method, url, r.text)


def test_changing_segments_needs_manage_segments_and_reading_does_not(api, session):
    assert {r for r in Role if allows(r, Permission.manage_segments)} == {Role.admin, Role.marketer, Role.analyst}
    create_customer(session, country="FR")
    viewer = api("viewer")
    for method, url, body in [
        ("POST", BASE, {"name": "x", "rule": FR}),
        ("POST", f"{BASE}/snapshots", None),
        ("POST", f"{BASE}/clusters", {}),
        ("DELETE", f"{BASE}/1", None),
    ]:
        r = viewer.request(method, url, json=body)
        assert r.status_code == 403 and "manage_segments" in r.json()["error"], (method, url)
    r = viewer.post(f"{BASE}/preview", json={"rule": FR})
    assert r.status_code == 200 and r.json()["count"] == 1
    assert viewer.get(BASE).status_code == 200


def test_fields_and_examples_feed_the_builder(admin):
    fields = {f["name"]: f for f in admin.get(f"{BASE}/fields").json()}
    assert "between" in fields["clv"]["ops"] and "Champions" in fields["rfm_segment"]["choices"]
    assert {e["kind"] for e in admin.get(f"{BASE}/examples").json()} == {
        "demographic",
        "geographic",
        "behavioural",
        "benefits",
    }


def test_preview_returns_count_sample_and_warnings_and_bad_rules_name_the_node(admin, session):
    a = create_customer(session, country="FR", first_name="Ann", last_name="Roux")
    create_customer(session, country="DE")
    body = admin.post(f"{BASE}/preview", json={"rule": FR, "sample_size": 5}).json()
    assert body["count"] == 1 and body["total"] == 2 and body["warnings"] == []
    assert body["sample"] == [{"id": a.id, "name": "Ann Roux", "email": a.email, "city": None, "country": "FR"}]
    everyone = admin.post(f"{BASE}/preview", json={"rule": {"not": {"field": "country", "op": "eq", "value": "JP"}}})
    assert "every customer" in everyone.json()["warnings"][0]
    r = admin.post(f"{BASE}/preview", json={"rule": {"all": [FR, {"field": "clv", "op": "between", "value": [9, 1]}]}})
    assert r.status_code == 400
    assert r.json()["detail"]["path"].startswith("all[1]") and "all[1]" in r.json()["error"]
    assert admin.post(f"{BASE}/preview", json={"rule": FR, "extra": 1}).status_code == 422


def test_create_read_update_and_delete(admin, session):
    a = create_customer(session, country="FR")
    before = session.scalar(select(func.count(Segment.id)))
    r = admin.post(BASE, json={"name": "French", "rule": FR, "description": "FR only"})
    assert r.status_code == 201, r.text
    seg = r.json()
    assert (
        seg["members"] == 1
        and seg["kind"] == "dynamic"
        and not seg["built_in"]
        and seg["created_by"].startswith("api:")
    )
    assert admin.post(BASE, json={"name": "french", "rule": FR}).status_code == 409
    bad = admin.post(BASE, json={"name": "Broken", "rule": {"field": "nope", "op": "eq", "value": 1}})
    assert bad.status_code == 400 and session.scalar(select(func.count(Segment.id))) == before + 1
    r = admin.patch(f"{BASE}/{seg['id']}", json={"rule": {"field": "country", "op": "eq", "value": "DE"}})
    assert r.status_code == 200 and r.json()["members"] == 0
    assert admin.get(f"{BASE}/{seg['id']}").json()["rule"]["value"] == "DE"
    assert admin.patch(f"{BASE}/{seg['id']}", json={"rule": {"any": []}}).status_code == 400
    assert admin.get(f"{BASE}/{seg['id']}").json()["rule"]["value"] == "DE"
    for null in ("name", "is_archived", "description", "rule"):
        r = admin.patch(f"{BASE}/{seg['id']}", json={null: None})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == null, (null, r.text)
    assert admin.patch(f"{BASE}/{seg['id']}", json={"category": None}).status_code == 200
    assert admin.delete(f"{BASE}/{seg['id']}").status_code == 204
    assert admin.get(f"{BASE}/{seg['id']}").status_code == 404
    built_in = next(s for s in admin.get(BASE).json()["items"] if s["built_in"])
    r = admin.delete(f"{BASE}/{built_in['id']}")
    assert r.status_code == 409 and "built in" in r.json()["error"]
    assert a.id  # the customer is untouched by all this


def test_members_pages_csv_export_and_static_lists(admin, session):
    customers = [create_customer(session, country="FR") for _ in range(3)]
    seg = admin.post(BASE, json={"name": "French", "rule": FR}).json()
    page = admin.get(f"{BASE}/{seg['id']}/members", params={"limit": 2}).json()
    rest = admin.get(f"{BASE}/{seg['id']}/members", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [m["id"] for m in page["items"] + rest["items"]] == [c.id for c in customers]
    csv_response = admin.get(f"{BASE}/{seg['id']}/members.csv")
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert [int(line.split(",")[0]) for line in csv_response.text.splitlines()[1:]] == [c.id for c in customers]

    lst = admin.post(BASE, json={"name": "List", "kind": "static", "customer_ids": [customers[0].id]}).json()
    assert lst["members"] == 1
    r = admin.post(f"{BASE}/{lst['id']}/members.csv", content=f"customer_id\n{customers[1].id}\n999999\n")
    assert r.status_code == 400 and r.json()["detail"]["errors"][0]["row"] == 3
    r = admin.post(f"{BASE}/{lst['id']}/members.csv", content=f"email\n{customers[1].email}\n")
    assert r.status_code == 200 and r.json() == {"added": 1, "members": 2}
    r = admin.post(f"{BASE}/{lst['id']}/members", json={"customer_ids": [customers[2].id], "replace": True})
    assert r.json() == {"added": 1, "members": 1}
    assert admin.post(f"{BASE}/{seg['id']}/members", json={"customer_ids": [customers[0].id]}).status_code == 400
    frozen = admin.post(f"{BASE}/{seg['id']}/freeze", json={"name": "French, frozen"})
    assert frozen.status_code == 201 and frozen.json()["kind"] == "static" and frozen.json()["members"] == 3

    # A name typed as a formula is exported as text, so a spreadsheet does not run it.
    evil = create_customer(session, country="DE", first_name="=HYPERLINK(A1)", last_name="-2", city="-2+3")
    german = admin.post(BASE, json={"name": "German", "rule": {"field": "country", "op": "eq", "value": "DE"}}).json()
    rows = list(csv.reader(io.StringIO(admin.get(f"{BASE}/{german['id']}/members.csv").text)))
    assert evil.first_name.startswith("=")
    assert rows[1][:3] == [str(evil.id), "'" + evil.first_name, "-2"] and rows[1][5] == "'-2+3"


def test_reports_comparison_snapshots_and_migration(admin, session):
    create_customer(session, country="FR")
    fr = admin.post(BASE, json={"name": "French", "rule": FR}).json()
    de = admin.post(BASE, json={"name": "German", "rule": {"field": "country", "op": "eq", "value": "DE"}}).json()
    report = admin.get(f"{BASE}/{fr['id']}/report").json()
    assert report["size"] == 1 and report["orders"] == 0 and report["nps"] is None and report["monthly"] == []
    both = admin.get(f"{BASE}/compare", params={"first": fr["id"], "second": de["id"]}).json()
    assert both["overlap"] == 0 and both["first"]["name"] == "French" and both["second"]["size"] == 0
    r = admin.get(f"{BASE}/migration")
    assert r.status_code == 400 and "two snapshots" in r.json()["error"]
    first = admin.post(f"{BASE}/snapshots").json()
    second = admin.post(f"{BASE}/snapshots").json()
    assert first["sizes"][str(fr["id"])] == 1
    assert [s["id"] for s in admin.get(f"{BASE}/snapshots").json()][:2] == [second["id"], first["id"]]
    matrix = admin.get(f"{BASE}/migration", params={"segments": f"{fr['id']},{de['id']}"}).json()
    assert matrix["cells"] == [{"from": fr["id"], "to": fr["id"], "customers": 1}]
    assert admin.get(f"{BASE}/migration", params={"segments": "a,b"}).status_code == 400
    assert admin.get(f"{BASE}/migration", params={"segments": str(2**31)}).status_code == 400
    assert admin.get(f"{BASE}/migration", params={"after": 2**31}).status_code == 422
    assert admin.get(f"{BASE}/compare", params={"first": 1, "second": 2**31}).status_code == 422
    assert admin.post(BASE, json={"name": "Big", "kind": "static", "customer_ids": [2**31]}).status_code == 422
    assert admin.post(BASE, json={"name": "A\x00B", "rule": FR}).status_code == 422
    big = {"field": "household_size", "op": "eq", "value": 2**70}
    r = admin.post(f"{BASE}/preview", json={"rule": big})
    assert r.status_code == 400 and "household_size takes a whole number from" in r.json()["error"]
    lst = admin.post(BASE, json={"name": "List", "kind": "static"}).json()
    r = admin.post(f"{BASE}/{lst['id']}/members.csv", content="customer_id\n1\x00\n")
    assert r.status_code == 400 and "NUL" in r.json()["error"]
    r = admin.post(f"{BASE}/clusters", json={})
    assert r.status_code == 400 and "run `patron analyze` first" in r.json()["error"]
