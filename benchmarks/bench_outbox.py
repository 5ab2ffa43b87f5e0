"""Outbox throughput: events per second from publish to receipt by a webhook receiver.

    uv run python benchmarks/bench_outbox.py                       # 5,000 events; SQLite, PostgreSQL
    uv run python benchmarks/bench_outbox.py --events 20000 --backends postgresql

For each backend, a fresh database gets one webhook subscription pointing at a local HTTP
receiver (127.0.0.1, answers 200 at once); `--workers` `patron worker` processes are
started and left idle, then `--events` events are published in one transaction and the
clock runs from its commit until the receiver has every one (signed, one HTTP request
each). SQLite runs one worker (one writer at a time); PostgreSQL runs 1 and 4.

Then, in the same run, the cost of publishing on an import: `--import-rows` order lines
imported with `patron import`'s code path with publishing on and off (bench_import's
file and code), as the share by which publishing lengthens the import.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_import import Scratch, fast_import, write_orders_csv  # benchmarks/ is on sys.path
from machine_info import machine

from patron import events
from patron.db import session_scope
from patron.models import WebhookSubscription

SECRET = "whsec_" + base64.b64encode(b"benchmark-secret-of-32-bytes-ok!").decode()
PATRON = Path(sys.executable).parent / "patron"


class Receiver:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.count += 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def deliver(backend: str, pg_url: str, folder: Path, *, n: int, workers: int) -> float:
    """Events per second from the publishing commit to the last receipt."""
    db = Scratch(backend, pg_url, folder)
    receiver = Receiver()
    procs = []
    try:
        with session_scope(db.engine) as session:
            session.add(WebhookSubscription(url=receiver.url, event_types=["*"], secret=SECRET, active=True))
        env = {
            **os.environ,
            "PATRON_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "PATRON_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "PATRON_LOG_LEVEL": "WARNING",
        }
        procs = [
            subprocess.Popen([str(PATRON), "worker", "--no-jobs", "--batch", "50"], env=env, stdout=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        time.sleep(8)  # let them start (imports) and go idle
        with session_scope(db.engine) as session:
            for i in range(n):
                events.publish(session, events.OrdersRecorded(order_ids=[i + 1], via="benchmark"))
        t0 = time.perf_counter()
        deadline = t0 + 600
        while receiver.count < n and time.perf_counter() < deadline:
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        if receiver.count < n:
            raise SystemExit(f"{backend}: only {receiver.count} of {n} events arrived in 10 minutes")
        return n / seconds
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
        receiver.close()
        db.close()


def import_cost(backend: str, pg_url: str, folder: Path, path: Path) -> tuple[float, float]:
    """Seconds to import the file with publishing on, and with it off."""
    times = []
    for publishing in (True, False):
        db = Scratch(backend, pg_url, folder)
        try:
            if publishing:
                seconds, _ = fast_import(db.engine, path)
            else:
                with events.publishing_off():
                    seconds, _ = fast_import(db.engine, path)
            times.append(seconds)
        finally:
            db.close()
    return times[0], times[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--import-rows", type=int, default=300_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    folder = Path(tempfile.mkdtemp(prefix="patron-bench-outbox-"))
    path = folder / "orders.csv"
    write_orders_csv(path, args.import_rows)
    rows = []
    for backend in args.backends.split(","):
        for workers in [1] if backend == "sqlite" else [1, 4]:
            rate = deliver(backend, args.pg_url, folder, n=args.events, workers=workers)
            print(f"{backend}, {workers} worker(s): {args.events:,} events delivered at {rate:,.0f} events/s")
            rows.append((backend, workers, rate))
        on, off = import_cost(backend, args.pg_url, folder, path)
        print(
            f"{backend}: import of {args.import_rows:,} lines {on:.2f} s publishing, {off:.2f} s not: "
            f"{on / off - 1:+.1%}"
        )
        rows.append((backend, "import", on / off - 1))
    print()
    print(f"{'backend':<12}{'workers':>8}{'events/s':>10}{'vs 1 worker':>13}")
    single = {}
    for backend, workers, value in rows:
        if workers == "import":
            continue
        single.setdefault(backend, value)
        print(f"{backend:<12}{workers:>8}{value:>10,.0f}{value / single[backend]:>12.1f}x")
    for backend, workers, value in rows:
        if workers == "import":
            print(f"{backend:<12} publishing lengthens a {args.import_rows:,}-line import by {value:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
