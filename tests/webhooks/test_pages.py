"""Settings › Webhooks pages: forms with CSRF, errors named on their field, admin only."""

from __future__ import annotations

import re

import pytest

from patron.webhooks import service
from tests.webhooks.test_api import log_attempts

URL = "https://shop.example/hooks"


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
    return match.group(1) if match else ""


def test_create_shows_the_secret_once_then_masked(admin_web, session):
    r = admin_web.submit("/settings/webhooks/new", {"url": URL, "event_types": ["orders.recorded", "customers.created"],
                                                     "description": "Shop backend"})  # fmt: skip
    assert r.status_code == 201, r.text
    secret = re.search(r'id="secret-value">(whsec_[^<]+)<', r.text).group(1)
    [row] = service.list_subscriptions(session)
    assert row.secret == secret and row.event_types == ["orders.recorded", "customers.created"]
    again = admin_web.get(f"/settings/webhooks/{row.id}").text
    assert secret not in again and f"whsec_…{secret[-4:]}" in again
    listing = admin_web.get("/settings/webhooks").text
    assert URL in listing and "Shop backend" in listing and "Active" in listing


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"url": "ftp://shop.example/", "event_types": ["*"]}, "url", "must start with http:// or https://"),
        ({"url": "", "event_types": ["*"]}, "url", "must start with http:// or https://"),
        ({"url": URL}, "event_types", "choose at least one event type"),
        ({"url": URL, "event_types": ["orders.shipped"]}, "event_types", "unknown event type"),
        ({"url": URL, "event_types": ["*"], "secret": "whsec_c2hvcnQ="}, "secret", "is too short"),
    ],
)
def test_bad_input_is_shown_on_its_field(admin_web, session, form, field, message):
    r = admin_web.submit("/settings/webhooks/new", form)
    assert r.status_code == 422
    assert message in field_error(r.text, field)
    assert 'name="csrf_token"' in r.text
    assert service.list_subscriptions(session) == []


def test_edit_deactivate_activate_delete(admin_web, session):
    row, _ = create(session)
    base = f"/settings/webhooks/{row.id}"
    r = admin_web.submit(base, {"url": "ftp://x", "event_types": ["*"]})
    assert r.status_code == 422 and "must start with http" in field_error(r.text, "url")
    r = admin_web.submit(base, {"url": "https://shop.example/v2", "event_types": ["orders.returned"]})
    assert r.status_code == 303
    session.refresh(row)
    assert (row.url, row.event_types) == ("https://shop.example/v2", ["orders.returned"])

    gone = "disabled: the receiver answered HTTP 410 Gone"
    row.active, row.disabled_reason, row.consecutive_failures = False, gone, 3
    session.commit()
    page = admin_web.get(base).text
    assert "Disabled" in page and "HTTP 410 Gone" in page and f'action="{base}/activate"' in page
    assert admin_web.submit(f"{base}/activate").status_code == 303
    session.refresh(row)
    assert (row.active, row.disabled_reason, row.consecutive_failures) == (True, None, 0)
    assert admin_web.submit(f"{base}/deactivate").status_code == 303
    session.refresh(row)
    assert not row.active and row.disabled_reason is None
    assert admin_web.submit(f"{base}/delete").headers["location"] == "/settings/webhooks"
    assert service.list_subscriptions(session) == []
    assert admin_web.get(base).status_code == 404


def test_the_log_and_send_again(admin_web, session):
    row, _ = create(session)
    log_attempts(session, row.id, 2)
    page = admin_web.get(f"/settings/webhooks/{row.id}").text
    assert page.count("Send again") == 2 and "HTTP 500" in page and "evt_abc" in page
    delivery_id = re.search(r'data-delivery-id="(\d+)"', page).group(1)
    r = admin_web.submit(f"/settings/webhooks/{row.id}/deliveries/{delivery_id}/resend")
    assert r.status_code == 303
    assert "Event evt_abc queued to be sent again." in admin_web.get(r.headers["location"]).text
    assert admin_web.submit(f"/settings/webhooks/{row.id}/deliveries/2000000/resend").status_code == 404


def test_forms_need_the_csrf_token(admin_web, session):
    r = admin_web.submit("/settings/webhooks/new", {"url": URL, "event_types": ["*"]}, token="forged")
    assert r.status_code == 403 and service.list_subscriptions(session) == []


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_only_admins_see_the_pages(web, session, role):
    client = web(role)
    assert client.get("/settings/webhooks").status_code == 403
    assert client.submit("/settings/webhooks/new", {"url": URL, "event_types": ["*"]}).status_code == 403
    assert service.list_subscriptions(session) == []


def create(session):
    from patron.webhooks.schemas import WebhookSubscriptionCreate

    row, secret = service.create_subscription(session, data=WebhookSubscriptionCreate(url=URL, event_types=["*"]))
    session.commit()
    return row, secret
