"""Latency of the customer 360 endpoint on a 100k-customer database, against the plain profile read.

    uv run python benchmarks/bench_360.py                      # build a temporary SQLite database
    uv run python benchmarks/bench_360.py --db bench.db        # build it once, reuse it next time
    uv run python benchmarks/bench_360.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The app runs under uvicorn in a background thread on 127.0.0.1; requests are sent one
at a time over one keep-alive connection (httpx), after a warm-up. Both endpoints are
measured in the same run on the same random customers, interleaved, so the ratio
360 / profile compares like with like on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from machine_info import machine  # benchmarks/ is on sys.path when a script runs
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from patron import migrate
from patron.api.app import create_app
from patron.db import make_engine, session_scope
from patron.demo.generator import generate
from patron.errors import Conflict
from patron.models import Customer
from patron.users import service as users

try:  # the dev group ships httpx as the `httpx2` distribution, as Starlette's TestClient expects
    import httpx2 as httpx
except ModuleNotFoundError:
    import httpx

BENCH_EMAIL = "bench@patron.example"
BENCH_PASSWORD = "bench-password-360"


def customer_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Customer)).scalar_one()


def prepare_database(args) -> tuple[Engine, str | None]:
    """Return an engine on a generated database; the path to delete afterwards, if temporary."""
    temporary = None
    if args.database_url:
        url = args.database_url
    elif args.db:
        url = f"sqlite:///{Path(args.db).resolve()}"
    else:
        temporary = str(Path(tempfile.mkdtemp(prefix="patron-bench-")) / "bench.db")
        url = f"sqlite:///{temporary}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    existing = customer_count(engine)
    if existing:
        print(f"Reusing {engine.url.render_as_string()} with {existing:,} customers.")
    else:
        print(f"Generating {args.customers:,} customers into {engine.url.render_as_string()} ...", flush=True)
        summary = generate(engine, customers=args.customers, seed=args.seed)
        rows = ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        print(f"  generated in {summary.seconds:.1f} s: {rows}")
    return engine, temporary


def issue_token(engine: Engine) -> str:
    # A reused database already has the benchmark user.
    with session_scope(engine) as session, contextlib.suppress(Conflict):
        users.create_user(session, email=BENCH_EMAIL, password=BENCH_PASSWORD, role="admin", name="Benchmark")
    with session_scope(engine) as session:
        _, secret = users.create_token(session, email=BENCH_EMAIL, role="admin", name="bench_360")
    return secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BackgroundServer:
    """uvicorn in a daemon thread, stopped through its should_exit flag."""

    def __init__(self, app, port: int):
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    response = client.get(path)
    return time.perf_counter() - t0, response


def summarise(name: str, seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    stats = {
        "median": float(np.median(ms)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "rps": len(ms) / (ms.sum() / 1000),
    }
    print(
        f"  {name:<34} median {stats['median']:7.2f} ms   p99 {stats['p99']:7.2f} ms   "
        f"mean {stats['mean']:7.2f} ms   {stats['rps']:8.1f} req/s"
    )
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="SQLite file to build once and reuse on later runs.")
    parser.add_argument("--database-url", help="Any database URL (e.g. PostgreSQL); generated when empty.")
    parser.add_argument("--customers", type=int, default=100_000, help="Size when the database is built.")
    parser.add_argument("--requests", type=int, default=3_000, help="Measured requests per endpoint.")
    parser.add_argument("--warmup", type=int, default=300, help="Unmeasured requests per endpoint first.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    print(f"Machine: {machine()}")
    engine, temporary = prepare_database(args)
    try:
        token = issue_token(engine)
        n_customers = customer_count(engine)
        with engine.connect() as conn:
            max_id = conn.execute(select(func.max(Customer.id))).scalar_one()
        rng = np.random.default_rng(args.seed)
        ids = rng.integers(1, max_id + 1, args.warmup + args.requests).tolist()
        # Profile reads visit the same customers in another order, so neither endpoint
        # benefits from the other having just touched the same rows.
        profile_ids = rng.permutation(ids).tolist()

        port = free_port()
        app = create_app(engine)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        with (
            BackgroundServer(app, port),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client,
        ):
            probe = client.get(f"/api/v1/customers/{ids[0]}/360")
            if probe.status_code != 200:
                print(f"GET /api/v1/customers/{{id}}/360 answered {probe.status_code}: {probe.text[:300]}")
                return 1
            body = probe.json()
            missing = {"profile", "consents", "kpis", "timeline", "next_cursor"} - set(body)
            if missing:
                print(f"360 response lacks {sorted(missing)}")
                return 1

            times: dict[str, list[float]] = {"360": [], "profile": []}
            timeline_sizes: list[int] = []
            failures = 0
            for i, (cid, pid) in enumerate(zip(ids, profile_ids, strict=True)):
                t360, r360 = timed_get(client, f"/api/v1/customers/{cid}/360")
                tprof, rprof = timed_get(client, f"/api/v1/customers/{pid}")
                if r360.status_code != 200 or rprof.status_code != 200:
                    failures += 1
                    continue
                if i >= args.warmup:
                    times["360"].append(t360)
                    times["profile"].append(tprof)
                    timeline_sizes.append(len(r360.json()["timeline"]))

        db = engine.url.render_as_string(hide_password=True)
        print(f"\nDatabase: {engine.dialect.name} ({db}), {n_customers:,} customers")
        print(
            f"Requests: {len(times['360']):,} per endpoint after {args.warmup} warm-up each, sequential, "
            f"one keep-alive connection; failures: {failures}"
        )
        print(f"360 timeline entries per response: mean {np.mean(timeline_sizes):.1f}")
        s360 = summarise("GET /api/v1/customers/{id}/360", times["360"])
        sprof = summarise("GET /api/v1/customers/{id} (peer)", times["profile"])
        print(
            f"  ratio 360 / profile: median {s360['median'] / sprof['median']:.2f}x, "
            f"p99 {s360['p99'] / sprof['p99']:.2f}x"
        )
        return 0 if failures == 0 else 1
    finally:
        engine.dispose()
        if temporary:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)
            Path(temporary).parent.rmdir()


if __name__ == "__main__":
    sys.exit(main())
