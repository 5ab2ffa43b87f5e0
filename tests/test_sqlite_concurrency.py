"""Concurrent requests against the real app under uvicorn: SQLite answers like PostgreSQL.

Each test runs once per backend against a fresh migrated database (a SQLite *file*, in
WAL mode, and a PostgreSQL database), with the app served by uvicorn on 127.0.0.1 from a
background thread and requests sent by real parallel threads released together by a
barrier. Both backends must give the same answers, and never a 500: on SQLite a write
transaction takes the write lock when it begins (BEGIN IMMEDIATE), so concurrent writers
queue on the busy timeout instead of failing with "database is locked".
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx2 as httpx
import pytest
import uvicorn
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from patron.api.app import create_app
from patron.db import make_engine
from patron.models import ApiToken, Customer, IdempotencyKey
from patron.settings import Settings
from tests.factories import create_token_for

API = "/api/v1"
# Generous bounds that only turn a hang into a failure; nothing here measures time.
REQUEST_TIMEOUT = 120
BARRIER_TIMEOUT = 60


class LiveServer:
    """uvicorn serving `app` from a background thread on an already-bound 127.0.0.1 socket."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


class Live:
    """A served app with an admin token, and helpers to send requests in parallel."""

    def __init__(self, engine: Engine, server: LiveServer, token: str):
        self.engine = engine
        self.server = server
        self.token = token

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url + API,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=REQUEST_TIMEOUT,
        )

    def parallel(self, requests: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
        """Send each request from its own thread and client, all released together."""
        start = threading.Barrier(len(requests))
        clients = [self.client() for _ in requests]
        for c in clients:  # open each client's connection before the barrier
            assert c.get("/customers", params={"limit": 1}).status_code == 200

        def send(i: int) -> httpx.Response:
            start.wait(timeout=BARRIER_TIMEOUT)
            return requests[i](clients[i])

        try:
            with ThreadPoolExecutor(max_workers=len(requests)) as pool:
                return list(pool.map(send, range(len(requests))))
        finally:
            for c in clients:
                c.close()


def serve(engine: Engine) -> Iterator[Live]:
    with Session(engine) as session:
        token = create_token_for(session, "admin")
        session.commit()
    server = LiveServer(create_app(engine, Settings(secret_key="concurrency-tests"))).start()
    try:
        yield Live(engine, server, token)
    finally:
        server.stop()


@pytest.fixture
def live(fresh_engine) -> Iterator[Live]:
    yield from serve(fresh_engine)


def no_server_errors(responses: list[httpx.Response]) -> None:
    errors = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert not errors, (Counter(r.status_code for r in responses), errors[:3])


def created(response: httpx.Response, status: int = 201) -> dict:
    assert response.status_code == status, response.text
    return response.json()


# --- (a) one Idempotency-Key sent 20 times at once ------------------------------------------------


def test_twenty_identical_keyed_batches_create_once(live):
    body = {"records": [{"email": "race-a@shop.example"}, {"email": "race-b@shop.example"}]}
    responses = live.parallel(
        [lambda c: c.post("/customers/batch", json=body, headers={"Idempotency-Key": "race-1"})] * 20
    )
    no_server_errors(responses)
    assert {r.status_code for r in responses} <= {200, 409}, Counter(r.status_code for r in responses)
    first = [r for r in responses if r.status_code == 200 and "idempotent-replayed" not in r.headers]
    replays = [r for r in responses if r.status_code == 200 and r.headers.get("idempotent-replayed") == "true"]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(first) == 1
    assert len(first) + len(replays) + len(in_flight) == 20
    assert [x["status"] for x in first[0].json()["results"]] == ["created", "created"]
    assert all(r.json() == first[0].json() for r in replays)
    assert all(r.json()["detail"] == {"field": "Idempotency-Key"} for r in in_flight)
    # A 409 says "retry": the retry gets the stored response.
    with live.client() as c:
        again = c.post("/customers/batch", json=body, headers={"Idempotency-Key": "race-1"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first[0].json()
    with Session(live.engine) as session:
        emails = session.scalars(select(Customer.email).where(Customer.email.like("race-%"))).all()
        assert sorted(emails) == ["race-a@shop.example", "race-b@shop.example"]
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


# --- (b) 30 redemptions of a balance that covers one ------------------------------------------------


def test_thirty_redemptions_of_a_balance_covering_one(live):
    with live.client() as c:
        customer = created(c.post("/customers", json={"email": "saver@shop.example"}))
        member = created(c.post("/loyalty/members", json={"customer_id": customer["id"]}))
        assert member["balance"] == 100  # the sign-up bonus
        reward = created(
            c.post(
                "/loyalty/rewards",
                json={"code": "V60", "name": "6 EUR off", "kind": "voucher", "points_cost": 60, "amount": "6.00"},
            )
        )
    url = f"/loyalty/members/{member['id']}/redemptions"
    responses = live.parallel([lambda c: c.post(url, json={"reward_id": reward["id"]})] * 30)
    no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 29}
    (win,) = [r.json() for r in responses if r.status_code == 201]
    assert (win["points_spent"], win["balance"]) == (60, 40)
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert {r["error"] for r in refusals} == {"not enough points: the balance is 40 and this needs 60"}
    assert {r["detail"]["balance"] for r in refusals} == {40}
    with live.client() as c:
        assert c.get(f"/loyalty/members/{member['id']}").json()["balance"] == 40
        assert c.get("/loyalty/check").json() == {"balanced": True, "problems": []}
        statement = c.get(f"/loyalty/members/{member['id']}/statement", params={"limit": 500}).json()["items"]
    assert sorted((t["kind"], t["change"]) for t in statement) == [("enrol", 100), ("redeem", -60)], statement


# --- (c) 20 writers of different kinds ---------------------------------------------------------------


def test_twenty_writers_of_different_kinds_all_succeed(live):
    with live.client() as c:
        buyer = created(c.post("/customers", json={"email": "buyer@shop.example"}))
        created(c.post("/loyalty/members", json={"customer_id": buyer["id"]}))
        product = created(c.post("/products", json={"sku": "TEA-1", "name": "Tea", "price": "10.00"}))
    placed_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    def new_customer(i: int):
        return lambda c: c.post("/customers", json={"email": f"writer{i}@shop.example", "first_name": f"W{i}"})

    def new_order(i: int):
        order = {
            "external_id": f"W-{i}",
            "customer_id": buyer["id"],
            "placed_at": placed_at,
            "channel": "online",
            "lines": [{"product_id": product["id"], "quantity": 1, "unit_price": "10.00"}],
        }
        return lambda c: c.post("/orders", json=order)

    def batch(i: int):
        return lambda c: c.post("/customers/batch", json={"records": [{"email": f"batch{i}@shop.example"}]})

    requests = [new_customer(i) for i in range(8)] + [new_order(i) for i in range(8)] + [batch(i) for i in range(4)]
    responses = live.parallel(requests)
    no_server_errors(responses)
    assert [r.status_code for r in responses] == [201] * 16 + [200] * 4, [(r.status_code, r.text) for r in responses]
    with live.client() as c:
        orders = c.get("/orders", params={"customer_id": buyer["id"], "limit": 100}).json()["items"]
        assert sorted(o["external_id"] for o in orders) == sorted(f"W-{i}" for i in range(8))
        assert c.get("/loyalty/check").json() == {"balanced": True, "problems": []}
    with Session(live.engine) as session:
        emails = set(session.scalars(select(Customer.email)).all())
    assert {f"writer{i}@shop.example" for i in range(8)} | {f"batch{i}@shop.example" for i in range(4)} <= emails


# --- reads beside a writer, and a lock that cannot be had -------------------------------------------


def _hold_write_lock(engine: Engine):
    """A connection in a write transaction: on SQLite it holds the database's write lock (on
    PostgreSQL it locks no row the requests need)."""
    conn = engine.connect()
    conn.begin()
    conn.execute(text("UPDATE customers SET first_name = first_name WHERE id = -1"))
    return conn


def test_reads_do_not_wait_for_a_writer(live):
    """A GET answers while another connection holds the write lock, even when its token's
    last use is due to be recorded; a POST queues behind the lock and succeeds after it."""
    with Session(live.engine) as session:
        session.execute(update(ApiToken).values(last_used_at=datetime.now(UTC) - timedelta(hours=1)))
        session.commit()
    holder = _hold_write_lock(live.engine)
    try:
        with live.client() as c:
            r = c.get("/customers", params={"limit": 5}, timeout=20)  # below the 30 s busy timeout
            assert r.status_code == 200, r.text
            with ThreadPoolExecutor(max_workers=1) as pool:
                waiting = pool.submit(c.post, "/customers", json={"email": "queued@shop.example"})
                time.sleep(0.3)  # give it time to reach the lock; the result does not depend on it
                holder.commit()
                assert waiting.result(timeout=REQUEST_TIMEOUT).status_code == 201
    finally:
        holder.close()
    # With the lock free, a GET records the token's use (after its reads, on SQLite).
    with Session(live.engine) as session:
        session.execute(update(ApiToken).values(last_used_at=datetime.now(UTC) - timedelta(hours=1)))
        session.commit()
    with live.client() as c:
        assert c.get("/customers", params={"limit": 5}).status_code == 200
    with Session(live.engine) as session:
        (used,) = session.scalars(select(ApiToken.last_used_at)).all()
    assert datetime.now(UTC) - used < timedelta(minutes=5)


@pytest.fixture
def impatient_sqlite(tmp_path) -> Iterator[Live]:
    """A SQLite app whose busy timeout is half a second."""
    from patron import migrate

    url = f"sqlite:///{tmp_path / 'impatient.db'}"
    migrate.upgrade(make_engine(url))
    engine = make_engine(url, connect_args={"check_same_thread": False, "timeout": 0.5})
    yield from serve(engine)
    engine.dispose()


def test_a_write_lock_not_had_in_time_is_a_503_with_retry_after(impatient_sqlite):
    live = impatient_sqlite
    with live.client() as c:
        assert c.get("/customers").status_code == 200
        holder = _hold_write_lock(live.engine)
        try:
            r = c.post("/customers", json={"email": "late@shop.example"})
        finally:
            holder.rollback()
            holder.close()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"].isdigit()
        assert set(r.json()) == {"error", "detail"} and "busy" in r.json()["error"]
        assert c.post("/customers", json={"email": "late@shop.example"}).status_code == 201
