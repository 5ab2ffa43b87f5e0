"""A real HTTP receiver on 127.0.0.1, a clock the test moves, and settings that allow the receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from patron.db import session_scope
from patron.models.base import utcnow
from patron.settings import get_settings
from patron.webhooks import service
from patron.webhooks.schemas import WebhookSubscriptionCreate
from tests.web.conftest import admin_web, web  # noqa: F401  (signed-in page clients)


@dataclass
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers each POST with the next planned Answer (the last one repeats) and keeps what it got."""

    def __init__(self) -> None:
        self.plan: list[Answer] = [Answer()]
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = receiver.plan.pop(0) if len(receiver.plan) > 1 else receiver.plan[0]
                if answer.delay:
                    time.sleep(answer.delay)
                data = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value.replace("{port}", str(receiver.port)))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender gave up waiting (timeout tests)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, *answers: Answer) -> None:
        self.plan = list(answers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def webhook_settings(monkeypatch):
    """set(**env) -> the process settings with these PATRON_WEBHOOK_* values (127.0.0.1 allowed by default)."""

    def configure(allowed: str = "127.0.0.1/32", timeout: float | None = None) -> None:
        monkeypatch.setenv("PATRON_WEBHOOK_ALLOWED_NETWORKS", allowed)
        if timeout is not None:
            monkeypatch.setenv("PATRON_WEBHOOK_TIMEOUT_SECONDS", str(timeout))
        get_settings.cache_clear()

    configure()
    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


class Clock:
    """The worker's clock: starts now (so freshly queued tasks are due) and moves only when told."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


def subscribe(engine, url: str, event_types: list[str], **fields) -> tuple[int, str]:
    """A committed subscription: (id, secret)."""
    with session_scope(engine) as session:
        row, secret = service.create_subscription(
            session, data=WebhookSubscriptionCreate(url=url, event_types=event_types, **fields), actor="test"
        )
        return row.id, secret
