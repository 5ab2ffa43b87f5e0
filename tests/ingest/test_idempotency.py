"""Idempotency-Key on the batch endpoints: replay, refusal, scope, and the race."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from patron import idempotency
from patron.errors import Conflict
from patron.models import Customer, IdempotencyKey
from tests.conftest import DatabaseFactory

URL = "/api/v1/customers/batch"
BODY = {"records": [{"email": "once@shop.example"}, {"email": "twice@shop.example"}]}


def customer_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Customer))


def test_same_key_and_body_replays_the_stored_response(admin, session):
    before = customer_count(session)
    first = admin.post(URL, json=BODY, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    assert customer_count(session) == before + 2
    # Without the key the same body is simply run again (and finds the customers).
    assert [r["status"] for r in admin.post(URL, json=BODY).json()["results"]] == ["unchanged", "unchanged"]
    again = admin.post(URL, json=BODY, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert [r["status"] for r in again.json()["results"]] == ["created", "created"]
    assert customer_count(session) == before + 2


def test_same_key_with_another_body_is_refused(admin, session):
    assert admin.post(URL, json=BODY, headers={"Idempotency-Key": "k-2"}).status_code == 200
    other = {"records": [{"email": "someone-else@shop.example"}]}
    r = admin.post(URL, json=other, headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "field": "Idempotency-Key",
            "message": "was already used with a different request body; send a new key for a new request",
        }
    ]
    assert session.scalar(select(Customer.id).where(Customer.email == "someone-else@shop.example")) is None


def test_keys_are_per_caller_and_per_endpoint(api, admin, session):
    assert admin.post(URL, json=BODY, headers={"Idempotency-Key": "shared"}).status_code == 200
    r = api("marketer").post(URL, json=BODY, headers={"Idempotency-Key": "shared"})
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    orders = {"records": [{"external_id": "X"}]}
    r = admin.post("/api/v1/orders/batch", json=orders, headers={"Idempotency-Key": "shared"})
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers


def test_a_failed_request_stores_no_key(admin, session):
    r = admin.post(URL, json={"records": []}, headers={"Idempotency-Key": "k-3"})
    assert r.status_code == 422
    assert session.scalar(select(IdempotencyKey.id).where(IdempotencyKey.key == "k-3")) is None
    r = admin.post(URL, json=BODY, headers={"Idempotency-Key": "k-3"})
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers


def test_key_length_is_bounded(admin):
    r = admin.post(URL, json=BODY, headers={"Idempotency-Key": "k" * 201})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "Idempotency-Key"


def test_losing_a_race_for_the_key_is_a_409_and_keeps_nothing(admin, session, monkeypatch):
    """The winner's key row is already there, but our look-up ran before it was committed."""
    scope = None

    def stale_lookup(sess, scope_, key):
        nonlocal scope
        scope = scope_
        session.add(IdempotencyKey(scope=scope_, key=key, request_sha256="0" * 64, status_code=200, response={}))
        session.flush()  # the concurrent winner
        return None

    monkeypatch.setattr(idempotency, "_stored", stale_lookup)
    before = customer_count(session)
    r = admin.post(URL, json=BODY, headers={"Idempotency-Key": "raced"})
    assert r.status_code == 409, r.text
    assert "in progress or done" in r.json()["error"] and r.json()["detail"] == {"field": "Idempotency-Key"}
    assert customer_count(session) == before
    assert scope is not None and scope.endswith("POST /api/v1/customers/batch")


@pytest.fixture
def postgresql_engine(tmp_path_factory):
    """A database of its own on PostgreSQL only: SQLite serialises writers with a database
    lock, so it has no row-level wait to race on."""
    factory = DatabaseFactory("postgresql", tmp_path_factory)
    engine = factory.new_engine()
    yield engine
    engine.dispose()
    factory.drop_all()


def test_two_transactions_racing_for_one_key_on_postgresql(postgresql_engine):
    """Real concurrency: the second insert of the key waits for the first transaction, then loses."""
    fresh_engine = postgresql_engine
    claimed, release, outcome = threading.Event(), threading.Event(), {}

    def hold_the_key():
        claimed.set()  # run_once calls the work right after inserting the key row
        release.wait(60)
        return 200, {"n": 1}

    def first():
        with Session(fresh_engine) as s, s.begin():
            idempotency.run_once(s, scope="t", key="k", body=b"{}", work=hold_the_key)

    def second():
        with Session(fresh_engine) as s:
            try:
                idempotency.run_once(s, scope="t", key="k", body=b"{}", work=lambda: (200, {"n": 2}))
                outcome["error"] = None
            except Conflict as exc:
                outcome["error"] = exc
            s.rollback()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert claimed.wait(60)
    threads[1].start()
    try:
        _wait_until_a_backend_waits_for_a_lock(fresh_engine)
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert isinstance(outcome["error"], Conflict) and outcome["error"].status == 409
    with Session(fresh_engine) as s:
        assert s.scalars(select(IdempotencyKey.response)).all() == [{"n": 1}]


def _wait_until_a_backend_waits_for_a_lock(engine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(6000):
        with engine.connect() as conn:  # a new transaction each time: pg_stat_activity is snapshotted per transaction
            if conn.scalar(query):
                return
        time.sleep(0.01)
    pytest.fail("the second transaction never waited for the first one's key")


def test_purge_deletes_only_old_keys(session):
    now = datetime.now(UTC)
    for key, age in [("old", 40), ("new", 5)]:
        session.add(
            IdempotencyKey(
                scope="s",
                key=key,
                request_sha256="0" * 64,
                status_code=200,
                response={},
                created_at=now - timedelta(days=age),
            )
        )
    session.flush()
    assert idempotency.purge(session, older_than=timedelta(days=30), now=now) == 1
    assert session.scalars(select(IdempotencyKey.key).where(IdempotencyKey.scope == "s")).all() == ["new"]


def test_a_response_echoing_a_nul_is_stored_and_replayed(admin, session):
    """Found by the fuzzer: PostgreSQL's JSONB cannot hold NUL, which an error's field path can echo."""
    body = {"records": [{"email": "nul@shop.example", "attributes": {"a\x00b": 1}}]}
    first = admin.post(URL, json=body, headers={"Idempotency-Key": "nul"})
    assert first.status_code == 200, first.text
    assert first.json()["results"][0]["errors"][0]["field"] == "attributes.a\\x00b"
    again = admin.post(URL, json=body, headers={"Idempotency-Key": "nul"})
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
