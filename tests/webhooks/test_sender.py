"""The HTTP edge: which addresses may be reached, and that the vetted address is the one used."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest
from standardwebhooks import Webhook

from patron.models.base import utcnow
from patron.webhooks import sender, service
from tests.webhooks.conftest import Answer


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "private"),  # reserved, and Python counts it as private
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_forbidden_addresses(address, kind):
    assert sender.forbidden_kind(ipaddress.ip_address(address)) == kind


def test_every_resolved_address_must_pass(monkeypatch):
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))]  # fmt: skip
    monkeypatch.setattr(sender.socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(sender.Refused, match=r"resolves to 10\.0\.0\.5, a private address"):
        sender.vet("hooks.example", 443, [])
    assert sender.vet("hooks.example", 443, sender.parse_networks("10.0.0.0/8")) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("10.0.0.5"),
    ]


def test_a_bad_allow_setting_is_named():
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not a network"):
        sender.parse_networks("127.0.0.1/32, 10.0.0.0/33")
    attempt = sender.post("http://hooks.example/", b"{}", {}, timeout=1, allowed_networks="nope")
    assert not attempt.delivered and "PATRON_WEBHOOK_ALLOWED_NETWORKS" in attempt.error


def test_the_connection_goes_to_the_vetted_address_with_the_name_as_host(monkeypatch, receiver):
    """A name is resolved once, here; the request goes to that address (no second lookup for a
    rebinding DNS server to answer differently) and carries the name in its Host header."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolve(host, *args, **kwargs):
        if host == "hooks.test":
            lookups.append(host)
            return real("127.0.0.1", *args, **kwargs) if len(lookups) == 1 else real("10.9.9.9", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    secret = service.generate_secret()
    envelope = {"id": "evt_1", "type": "orders.recorded", "occurred_at": "x", "actor": "", "data": {}}
    body, headers = sender.signed_request(envelope, secret, now=utcnow())
    url = f"http://hooks.test:{receiver.port}/in"
    attempt = sender.post(url, body, headers, timeout=2, allowed_networks="127.0.0.1/32")
    assert attempt.delivered, attempt.error
    assert lookups == ["hooks.test"]
    [got] = receiver.received
    assert got.headers["host"] == f"hooks.test:{receiver.port}"
    assert json.loads(got.body) == envelope
    Webhook(secret).verify(got.body, got.headers)


def test_redirect_loops_stop(receiver):
    receiver.answer(Answer(307, "", headers={"Location": "/again"}))
    attempt = sender.post(receiver.url, b"{}", {}, timeout=2, allowed_networks="127.0.0.1/32")
    assert attempt.error == f"more than {sender.MAX_REDIRECTS} redirects"
    assert len(receiver.received) == sender.MAX_REDIRECTS + 1


def test_the_excerpt_is_the_first_500_characters(receiver):
    receiver.answer(Answer(503, "é" * 2000))
    attempt = sender.post(receiver.url, b"{}", {}, timeout=2, allowed_networks="127.0.0.1/32")
    assert attempt.status_code == 503 and attempt.error == "HTTP 503 Service Unavailable"
    assert attempt.excerpt == "é" * 500
