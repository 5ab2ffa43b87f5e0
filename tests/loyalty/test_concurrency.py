"""50 parallel redemptions of a member's whole balance on PostgreSQL: exactly one succeeds.

Each thread has its own connection and transaction, as concurrent API requests would;
the guarded balance UPDATE makes the others wait for the winner's commit and then see
too few points. SQLite serialises writers, so there is nothing to race there.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from patron.db import make_engine
from patron.errors import Conflict
from patron.loyalty import service
from patron.loyalty.config import RewardConfig
from patron.models import LoyaltyTransaction, LoyaltyVoucher
from patron.models.enums import LoyaltyTransactionKind
from tests.factories import create_customer

THREADS = 50


@pytest.fixture
def pg_engine(postgres_engine):
    """A fresh PostgreSQL database (SQLite serialises writers: redemptions cannot race
    there), through an engine without a pool limit: every thread holds its own connection
    while it waits for the others."""
    engine = make_engine(postgres_engine.url.render_as_string(hide_password=False), poolclass=NullPool)
    with engine.connect() as conn:
        max_connections = int(conn.execute(text("SHOW max_connections")).scalar_one())
        in_use = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar_one())
    assert max_connections - in_use > THREADS, f"PostgreSQL allows {max_connections} connections, {in_use} in use"
    yield engine
    engine.dispose()


def test_fifty_parallel_redemptions_of_the_whole_balance(pg_engine):
    with Session(pg_engine) as session:
        customer = create_customer(session)
        member = service.enrol(session, customer_id=customer.id, by="test")  # the sign-up bonus: 100
        reward = service.save_reward(
            session,
            data=RewardConfig(code="ALL", name="Everything", kind="voucher", points_cost=100, amount=Decimal(1)),
        )
        session.commit()
        member_id, reward_id = member.id, reward.id
        assert service.summary(session, member_id=member_id).balance == 100

    start = threading.Barrier(THREADS)

    def attempt(i: int):
        with Session(pg_engine) as session:
            session.connection()  # connect before the barrier, so all start together
            start.wait(timeout=60)
            try:
                voucher = service.redeem(session, member_id=member_id, reward_id=reward_id, key=f"race:{i}", by="t")
                session.commit()
                return ("ok", voucher.code)
            except Conflict as exc:
                session.rollback()
                return (exc.status, exc.message)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(attempt, range(THREADS)))

    wins = [r for r in results if r[0] == "ok"]
    refusals = [r for r in results if r[0] != "ok"]
    assert len(wins) == 1, results
    assert len(refusals) == THREADS - 1
    assert {status for status, _ in refusals} == {409}
    assert {message for _, message in refusals} == {"not enough points: the balance is 0 and this needs 100"}

    with Session(pg_engine) as session:
        assert service.summary(session, member_id=member_id).balance == 0
        assert session.scalars(select(LoyaltyVoucher.code)).all() == [wins[0][1]]
        redemptions = session.scalar(
            select(func.count()).where(LoyaltyTransaction.kind == LoyaltyTransactionKind.redeem)
        )
        assert redemptions == 1
        assert service.check_books(session) == []
