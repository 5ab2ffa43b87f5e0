from __future__ import annotations

from tests.factories import create_customer

URL = "/api/v1/interactions"


def test_note_defaults_and_author(api, session):
    agent = api("agent")
    c = create_customer(session)
    r = agent.post(URL, json={"customer_id": c.id, "kind": "note", "body": "Prefers calls after 6pm"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["channel"], body["direction"]) == ("internal", "internal")
    assert body["user_id"] is not None
    timeline = agent.get(f"/api/v1/customers/{c.id}/360").json()["timeline"]
    assert timeline[0]["id"] == body["id"] and timeline[0]["body"] == "Prefers calls after 6pm"
    # The factory's users have no display name: the author is shown by email.
    assert timeline[0]["user_name"].endswith("@patron.example")


def test_bad_interactions(admin, session):
    c = create_customer(session)
    r = admin.post(URL, json={"customer_id": c.id, "kind": "note"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body"
    r = admin.post(URL, json={"customer_id": c.id, "kind": "telepathy"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "kind"
    r = admin.post(URL, json={"customer_id": 123456, "kind": "call"})
    assert r.status_code == 404


def test_update_list_delete(admin, session):
    c = create_customer(session)
    i = admin.post(URL, json={"customer_id": c.id, "kind": "complaint", "subject": "Late delivery"}).json()
    assert i["channel"] == "phone"
    assert admin.patch(f"{URL}/{i['id']}", json={"body": "Refund offered"}).json()["body"] == "Refund offered"
    assert admin.patch(f"{URL}/{i['id']}", json={"occurred_at": None}).status_code == 422
    listed = admin.get(URL, params={"customer_id": c.id, "kind": "complaint"}).json()["items"]
    assert [x["id"] for x in listed] == [i["id"]]
    assert admin.delete(f"{URL}/{i['id']}").status_code == 204
    assert admin.get(f"{URL}/{i['id']}").status_code == 404


def test_a_time_that_leaves_the_calendar_in_utc_is_refused(admin, session):
    customer = create_customer(session)
    r = admin.post(
        "/api/v1/interactions",
        json={"customer_id": customer.id, "kind": "call", "occurred_at": "0001-01-01T00:00:00+00:01"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "occurred_at"
