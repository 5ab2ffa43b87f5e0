"""The webhooks API: subscriptions CRUD, validation that names the field, the log, send again."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from patron import outbox
from patron.models import OutboxTask
from patron.webhooks import service
from patron.webhooks.sender import Attempt
from patron.webhooks.service import TOPIC

BASE = "/api/v1/webhooks/subscriptions"
URL = "https://shop.example/hooks"


def fields(r) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {e["field"]: e["message"] for e in r.json()["detail"]}


def test_create_shows_the_secret_once(admin):
    r = admin.post(BASE, json={"url": URL, "event_types": ["orders.recorded", "orders.recorded"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(base64.b64decode(created["secret"][6:])) == 32
    assert created["event_types"] == ["orders.recorded"]
    assert created["active"] and created["created_by"].startswith("api:")
    shown = admin.get(f"{BASE}/{created['id']}").json()
    assert "secret" not in shown and shown["secret_hint"] == f"whsec_…{created['secret'][-4:]}"
    assert [s["id"] for s in admin.get(BASE).json()["items"]] == [created["id"]]


def test_a_secret_of_ones_own_is_kept(admin):
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    r = admin.post(BASE, json={"url": URL, "event_types": ["*"], "secret": secret})
    assert r.status_code == 201 and r.json()["secret"] == secret


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": URL, "event_types": ["orders.shipped"]}, "event_types", "unknown event type 'orders.shipped'"),
        ({"url": URL, "event_types": []}, "event_types", "choose at least one event type"),
        ({"url": "ftp://shop.example/x", "event_types": ["*"]}, "url", "must start with http:// or https://"),
        ({"url": "javascript:alert(1)", "event_types": ["*"]}, "url", "must start with http:// or https://"),
        ({"url": "https://", "event_types": ["*"]}, "url", "must name a host"),
        ({"url": "https://shop.example:99999/", "event_types": ["*"]}, "url", "not a valid URL"),
        ({"url": "https://u:p@shop.example/", "event_types": ["*"]}, "url", "must not carry a user name"),
        ({"url": URL, "event_types": ["*"], "secret": "whsec_" + base64.b64encode(b"short").decode()},
         "secret", "is too short: 5 bytes, at least 24"),
        ({"url": URL, "event_types": ["*"], "secret": "hunter2hunter2hunter2hunter2hunter2"},
         "secret", "must start with 'whsec_'"),
        ({"url": URL, "event_types": ["*"], "secret": "whsec_not base64!!"}, "secret", "followed by base64"),
        ({"url": URL, "event_types": ["*"], "colour": "red"}, "colour", "unknown field"),
        ({"event_types": ["*"]}, "url", "Field required"),
        ({"url": URL, "event_types": "orders.recorded"}, "event_types", "valid list"),
        ({"url": URL + "\x00", "event_types": ["*"]}, "url", "NUL"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(admin, body, field, message):
    r = admin.post(BASE, json=body)
    assert message in fields(r).get(field, ""), r.json()


def test_update_and_reactivation_clear_the_reason(admin, session):
    sub_id = admin.post(BASE, json={"url": URL, "event_types": ["*"]}).json()["id"]
    row = service.get_subscription(session, sub_id)
    row.active, row.disabled_reason, row.consecutive_failures = False, "disabled after 12 failed attempts", 12
    session.commit()
    assert admin.get(f"{BASE}/{sub_id}").json()["disabled_reason"] == "disabled after 12 failed attempts"

    r = admin.patch(f"{BASE}/{sub_id}", json={"url": "http://shop.example/v2", "event_types": ["orders.returned"]})
    assert r.status_code == 200 and r.json()["url"] == "http://shop.example/v2" and not r.json()["active"]
    bad = admin.patch(f"{BASE}/{sub_id}", json={"event_types": ["nope"]})
    assert "unknown event type" in fields(bad)["event_types"]
    r = admin.patch(f"{BASE}/{sub_id}", json={"active": True})
    assert (r.json()["active"], r.json()["disabled_reason"], r.json()["consecutive_failures"]) == (True, None, 0)


def test_null_in_an_update_is_refused(admin):
    sub_id = admin.post(BASE, json={"url": URL, "event_types": ["*"]}).json()["id"]
    assert "url" in fields(admin.patch(f"{BASE}/{sub_id}", json={"url": None}))


def test_delete_and_unknown_ids(admin):
    sub_id = admin.post(BASE, json={"url": URL, "event_types": ["*"]}).json()["id"]
    assert admin.delete(f"{BASE}/{sub_id}").status_code == 204
    for r in (admin.get(f"{BASE}/{sub_id}"), admin.get(f"{BASE}/{sub_id}/deliveries"),
              admin.patch(f"{BASE}/{sub_id}", json={"active": True}), admin.delete(f"{BASE}/{sub_id}")):  # fmt: skip
        assert r.status_code == 404 and r.json()["detail"] == {"field": "subscription_id"}
    assert admin.get(f"{BASE}/0").status_code == 422


ENVELOPE = {"id": "evt_abc", "type": "orders.recorded", "occurred_at": "2026-01-01T00:00:00+00:00",
            "actor": "", "data": {"order_ids": [1], "via": "api"}}  # fmt: skip


def log_attempts(session, sub_id: int, n: int) -> None:
    for i in range(1, n + 1):
        task = outbox.Task(id=99, topic=TOPIC, event_id="evt_abc", payload={}, attempt=i, max_attempts=12)
        service.record_attempt(
            session, subscription_id=sub_id, task=task, envelope=ENVELOPE, attempt=Attempt(500, 12, "HTTP 500", "x")
        )
    session.commit()


def test_the_delivery_log_is_paged_newest_first_and_sends_again(admin, session):
    sub_id = admin.post(BASE, json={"url": URL, "event_types": ["*"]}).json()["id"]
    log_attempts(session, sub_id, 3)
    first = admin.get(f"{BASE}/{sub_id}/deliveries", params={"limit": 2}).json()
    assert [d["attempt"] for d in first["items"]] == [3, 2]
    assert first["items"][0]["error"] == "HTTP 500" and first["items"][0]["latency_ms"] == 12
    rest = admin.get(f"{BASE}/{sub_id}/deliveries", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["attempt"] for d in rest["items"]] == [1] and rest["next_cursor"] is None
    assert admin.get(f"{BASE}/{sub_id}/deliveries", params={"cursor": "junk"}).status_code == 400

    delivery_id = first["items"][0]["id"]
    r = admin.post(f"{BASE}/{sub_id}/deliveries/{delivery_id}/resend")
    assert r.status_code == 202 and r.json()["event_id"] == "evt_abc"
    task = session.scalar(select(OutboxTask).where(OutboxTask.id == r.json()["task_id"]))
    assert task.topic == TOPIC and task.event_id == "evt_abc"
    assert task.payload == {"subscription_id": sub_id, "event": ENVELOPE}

    assert admin.post(f"{BASE}/{sub_id}/deliveries/2000000/resend").json()["detail"] == {"field": "delivery_id"}
    admin.patch(f"{BASE}/{sub_id}", json={"active": False})
    r = admin.post(f"{BASE}/{sub_id}/deliveries/{delivery_id}/resend")
    assert r.status_code == 409 and "activate it first" in r.json()["error"]


@pytest.mark.parametrize("role", ["marketer", "agent", "analyst", "viewer"])
def test_only_admins_manage_webhooks(api, role):
    client = api(role)
    assert client.get(BASE).status_code == 403
    assert client.post(BASE, json={"url": URL, "event_types": ["*"]}).status_code == 403
