"""One signed HTTP POST to a subscriber, guarded against server-side request forgery.

The host is resolved here, and every address it resolves to must be public (not loopback,
private, link-local such as the 169.254.169.254 cloud metadata service, multicast, reserved
or unspecified) unless it lies inside PATRON_WEBHOOK_ALLOWED_NETWORKS. The connection then
goes to the vetted address itself, with the name in the Host header and in TLS SNI and
certificate checks, so a second DNS answer (DNS rebinding) cannot move the request elsewhere.

Redirects: an answer 3xx pointing to the same scheme, host and port is followed (the body
POSTed again, signed as before) at most MAX_REDIRECTS times; a redirect anywhere else is
refused and counts as a failed attempt. Nothing here raises: every outcome is an Attempt.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from standardwebhooks import Webhook

from patron import __version__

MAX_REDIRECTS = 3
EXCERPT_CHARS = 500
# Read at most this much of an answer: the log keeps 500 characters, the rest is not wanted.
READ_BYTES = 16 * 1024
USER_AGENT = f"Patron-Webhooks/{__version__}"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt came to: an answer (status, excerpt) and/or an error."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class Refused(Exception):
    """The attempt stopped before or instead of sending: a forbidden target, a bad redirect."""


def parse_networks(text: str) -> list[IPNetwork]:
    """'127.0.0.1/32, 10.0.0.0/8' -> networks; raises ValueError naming a bad entry."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"PATRON_WEBHOOK_ALLOWED_NETWORKS: {part!r} is not a network (CIDR)") from None
    return out


def forbidden_kind(ip: IPAddress) -> str | None:
    """Why an address may not be reached by default (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, hit in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if hit:
            return kind
    return None if ip.is_global else "non-public"


def vet(host: str, port: int, allowed: list[IPNetwork]) -> list[IPAddress]:
    """The addresses `host` resolves to, all of them fit to connect to; else Refused.

    Every address must pass, not just one: a name answering a public and a private address
    would otherwise reach the private one on a later try.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
    if not addresses:
        raise Refused(f"cannot resolve {host}: no address")
    for ip in addresses:
        kind = forbidden_kind(ip)
        if kind and not any(ip in net for net in allowed if net.version == ip.version):
            raise Refused(
                f"target refused: {host} resolves to {ip}, a {kind} address "
                "(allow it with PATRON_WEBHOOK_ALLOWED_NETWORKS)"
            )
    return addresses


def signed_request(envelope: dict[str, Any], secret: str, *, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the Standard Webhooks headers; the event id is the webhook-id."""
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    msg_id = envelope["id"]
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=now, data=body),
    }
    return body, headers


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted address, with the host name for SNI and the certificate check."""

    def __init__(self, address: str, port: int, *, server_name: str, timeout: float):
        self._server_name = server_name
        self._tls = ssl.create_default_context()
        super().__init__(address, port, timeout=timeout, context=self._tls)

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)


def _origin(parts) -> tuple[str, str, int]:
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _post_once(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allowed) -> tuple[int, str, str]:
    """POST to `url` through a vetted address: (status, excerpt, Location header)."""
    parts = urlsplit(url)
    scheme, host, port = _origin(parts)
    addresses = vet(host, port, allowed)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    last_error: OSError | None = None
    for ip in addresses:  # each address is vetted; try the next when one does not answer
        if scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPSConnection(str(ip), port, server_name=host, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(str(ip), port, timeout=timeout)
        try:
            conn.request("POST", path, body=body, headers={**headers, "Host": host_header})
            response = conn.getresponse()
            raw = response.read(READ_BYTES)
            charset = response.headers.get_content_charset() or "utf-8"
            excerpt = raw.decode(charset, errors="replace")[:EXCERPT_CHARS]
            return response.status, excerpt, response.headers.get("Location", "")
        except OSError as exc:
            if isinstance(exc, (TimeoutError, ssl.SSLError)):  # the address answered, but badly
                raise
            last_error = exc
        finally:
            conn.close()
    assert last_error is not None
    raise last_error


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allowed_networks: str) -> Attempt:
    """Deliver once (following same-origin redirects); never raises."""
    started = time.monotonic()

    def done(status=None, error=None, excerpt=None) -> Attempt:
        return Attempt(status, round((time.monotonic() - started) * 1000), error, excerpt)

    try:
        allowed = parse_networks(allowed_networks)
    except ValueError as exc:
        return done(error=str(exc))
    status, excerpt = None, None
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, excerpt, location = _post_once(url, body, headers, timeout=timeout, allowed=allowed)
            if not (300 <= status < 400 and location):
                break
            target = urljoin(url, location)
            if _origin(urlsplit(target)) != _origin(urlsplit(url)):
                return done(status, f"redirect to {target} refused (only the same scheme, host and port)", excerpt)
            url = target
        else:
            return done(status, f"more than {MAX_REDIRECTS} redirects", excerpt)
    except Refused as exc:
        return done(error=str(exc))
    except TimeoutError:
        return done(status, f"timed out after {timeout:g} s without an answer")
    except ssl.SSLError as exc:
        return done(error=f"TLS error: {exc.reason or exc}")
    except ConnectionRefusedError:
        return done(error=f"connection refused by {urlsplit(url).netloc}")
    except (OSError, http.client.HTTPException) as exc:
        return done(error=f"connection failed: {exc.__class__.__name__}: {exc}"[:300])
    if not 200 <= status < 300:
        reason = http.client.responses.get(status, "")
        return done(status, f"HTTP {status}{' ' + reason if reason else ''}", excerpt)
    return done(status, None, excerpt)
