"""Enum columns are checked by the database; on SQLite the check is an OR chain (migration 0007).

SQLite re-creates an IN list for every row it checks, so patron.models.enums writes
enum checks as `col = 'a' OR col = 'b'` there, and migration 0007 rewrites databases
made before. Either form must accept exactly the enum's values and NULL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from patron import migrate
from patron.db import make_engine
from patron.models.enums import ChurnBand, OrderStatus

IN_LIST = re.compile(r"CHECK \(\w+ IN \(")


def _check_sql(engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%CHECK%'"))
        return dict(rows.all())


def _insert_score(conn, customer_id: int, churn_band: str | None) -> None:
    conn.execute(
        text(
            "INSERT INTO customer_scores (run_id, customer_id, as_of, orders, frequency, revenue, churn_band) "
            "VALUES (1, :customer_id, '2026-01-01', 1, 0, 10, :band)"
        ),
        {"customer_id": customer_id, "band": churn_band},
    )


def _assert_checked(engine) -> None:
    """Every churn band and NULL go in; anything else is refused by the database."""
    with engine.begin() as conn:
        for i, band in enumerate([*ChurnBand, None], start=1):
            _insert_score(conn, i, band)
    for wrong in ("LOW", "lost ", ""):
        with pytest.raises(IntegrityError, match="ck_customer_scores_churnband"), engine.begin() as conn:
            _insert_score(conn, 99, wrong)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM customer_scores"))


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'checks.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_a_new_sqlite_database_writes_enum_checks_as_or_chains(sqlite_engine):
    tables = _check_sql(sqlite_engine)
    assert not [name for name, sql in tables.items() if IN_LIST.search(sql)]
    statuses = " OR ".join(f"status = '{s.value}'" for s in OrderStatus)
    assert f"CONSTRAINT ck_orders_orderstatus CHECK ({statuses})" in tables["orders"]
    _assert_checked(sqlite_engine)


def test_enum_checks_refuse_unknown_values_on_every_backend(fresh_engine):
    _assert_checked(fresh_engine)


def test_migration_0007_rewrites_the_in_lists_of_an_older_database_and_back(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (id, first_name, last_name, interests, attributes, created_at, updated_at) "
                "VALUES (1, 'Ada', 'Byron', '[]', '{}', :now, :now)"
            ),
            {"now": datetime(2026, 1, 1, tzinfo=UTC).isoformat(" ")},
        )
    fresh = _check_sql(sqlite_engine)
    migrate.downgrade(sqlite_engine, "0006")
    older = _check_sql(sqlite_engine)
    # As SQLAlchemy wrote them before: IN lists, a quote inside a value doubled.
    assert "CHECK (churn_band IN ('low', 'medium', 'high', 'lost'))" in older["customer_scores"]
    assert "'Can''t lose them'" in older["customer_scores"]
    _assert_checked(sqlite_engine)

    migrate.upgrade(sqlite_engine)
    assert migrate.current_revision(sqlite_engine) == migrate.head_revision()
    upgraded = _check_sql(sqlite_engine)
    assert not [name for name, sql in upgraded.items() if IN_LIST.search(sql)]
    assert (
        "CHECK (churn_band = 'low' OR churn_band = 'medium' OR churn_band = 'high' OR churn_band = 'lost')"
        in (upgraded["customer_scores"])
    )
    assert "rfm_segment = 'Can''t lose them'" in upgraded["customer_scores"]
    # Down and up again gives back, byte for byte, what a new database is made with.
    assert upgraded == fresh
    _assert_checked(sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT first_name FROM customers")).scalar_one() == "Ada"
        assert conn.execute(text("PRAGMA quick_check")).scalar_one() == "ok"
