"""Workers killed with `kill -9` in the middle of delivering 2,000 webhooks: nothing is lost.

Real processes (`patron worker`), a real local HTTP receiver, a real database. On SQLite one
worker is killed and restarted ten times; on PostgreSQL three run at once and are killed in
turn. Afterwards every event has been received at least once, duplicates carry the same
event id, and (PostgreSQL) no event was being delivered by two workers at the same time.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select
from standardwebhooks import Webhook

from patron import events
from patron.db import session_scope
from patron.models import OutboxTask, WebhookSubscription
from patron.models.enums import OutboxStatus

EVENTS = 2_000
KILLS = 10
SECRET = "whsec_" + base64.b64encode(b"kill-nine-test-secret-32-bytes!!").decode()
PATRON = Path(sys.executable).parent / "patron"


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that checks each signature and notes (id, start, end)."""

    def __init__(self):
        self.deliveries: list[tuple[str, float, float]] = []
        self.bad: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                start = time.monotonic()
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    payload = Webhook(SECRET).verify(body, headers)
                    if payload["id"] != headers["webhook-id"]:
                        raise ValueError("body id differs from webhook-id")
                except Exception as exc:  # noted, answered 400 so the sender retries
                    with receiver.lock:
                        receiver.bad.append(repr(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                time.sleep(0.004)  # a little work, so that kills land in the middle of deliveries
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver.lock:
                    receiver.deliveries.append((headers["webhook-id"], start, time.monotonic()))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(PATRON), "worker", "--lease-seconds", "2", "--batch", "10", "--no-jobs"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def pending(engine) -> int:
    with session_scope(engine, write=False) as session:
        return session.scalar(
            select(func.count()).select_from(OutboxTask).where(OutboxTask.status == OutboxStatus.pending)
        )


def test_killed_workers_lose_no_event(fresh_engine):
    # Several workers at once are PostgreSQL's case; SQLite has one writer at a time.
    workers = 3 if fresh_engine.dialect.name == "postgresql" else 1
    receiver = Receiver()
    try:
        with session_scope(fresh_engine) as session:
            session.add(
                WebhookSubscription(url=receiver.url, event_types=["orders.recorded"], secret=SECRET, active=True)
            )
        with session_scope(fresh_engine) as session:
            sent = []
            for i in range(EVENTS):
                event = events.OrdersRecorded(order_ids=[i + 1], via="test")
                events.publish(session, event)
                sent.append(event.id)
        assert pending(fresh_engine) == EVENTS

        env = {
            **os.environ,
            "PATRON_DATABASE_URL": fresh_engine.url.render_as_string(hide_password=False),
            "PATRON_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "PATRON_LOG_LEVEL": "WARNING",
        }
        rng = random.Random(9)
        procs = [start_worker(env) for _ in range(workers)]
        deadline = time.monotonic() + 600
        for kill in range(KILLS):
            # Let some deliveries through, then kill one worker without warning and start another.
            target = receiver.count() + rng.randint(40, 120)
            while receiver.count() < target and time.monotonic() < deadline:
                assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs if p.poll() is not None]
                time.sleep(0.01)
            victim = procs[kill % workers]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            procs[kill % workers] = start_worker(env)
        assert receiver.count() < EVENTS, "the workers finished before the last kill: kill sooner"

        while pending(fresh_engine) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending(fresh_engine) == 0, "the workers did not finish within 10 minutes"
        for p in procs:  # a graceful stop ends each one cleanly
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=60) == 0, p.stderr.read()
    finally:
        receiver.close()

    assert receiver.bad == []
    received = [event_id for event_id, _, _ in receiver.deliveries]
    assert set(received) == set(sent)  # every event at least once, nothing that was not sent
    duplicates = len(received) - len(set(received))
    assert duplicates <= KILLS * 10 * workers  # at most a killed worker's batch each time
    with session_scope(fresh_engine, write=False) as session:
        statuses = dict(session.execute(select(OutboxTask.status, func.count()).group_by(OutboxTask.status)).all())
    assert statuses == {OutboxStatus.done: EVENTS}
    if workers > 1:  # no event in the hands of two workers at the same time
        by_event: dict[str, list[tuple[float, float]]] = {}
        for event_id, start, end in receiver.deliveries:
            by_event.setdefault(event_id, []).append((start, end))
        for spans in by_event.values():
            spans.sort()
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert start >= end, json.dumps(spans)
