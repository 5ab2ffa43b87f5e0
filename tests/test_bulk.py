"""patron.bulk.write_frame: a frame goes in whole, every value as SQLAlchemy would have stored it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg
import pytest
from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table, select

from patron import bulk
from patron.models.base import Money, UTCDateTime

PROBE = Table(
    "bulk_probe",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("amount", Money),
    Column("day", Date),
    Column("at", UTCDateTime),
    Column("flag", Boolean),
)


@pytest.fixture
def probe(fresh_engine):
    PROBE.create(fresh_engine)
    yield fresh_engine
    PROBE.drop(fresh_engine)


def _frame(n: int) -> pl.DataFrame:
    start = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    names = ["plain", "", None, 'comma, and "quotes"', "line\nbreak", "O'Brien", "ünïcødé"]
    return pl.DataFrame(
        {
            "id": list(range(1, n + 1)),
            "name": [names[i % len(names)] for i in range(n)],
            "amount": [None if i % 11 == 0 else round(i * 1.25, 2) for i in range(n)],
            "day": [date(2026, 1, 1) + timedelta(days=i % 400) for i in range(n)],
            "at": [start + timedelta(seconds=i) for i in range(n)],
            "flag": [None if i % 5 == 0 else i % 2 == 0 for i in range(n)],
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )


@pytest.mark.parametrize("rows", [1, bulk.SQLITE_ROWS_PER_STATEMENT, 2 * bulk.SQLITE_ROWS_PER_STATEMENT + 234])
def test_every_row_arrives_with_its_values(probe, rows):
    frame = _frame(rows)
    with probe.begin() as conn:
        bulk.write_frame(conn, "bulk_probe", frame)
    with probe.connect() as conn:
        stored = conn.execute(select(PROBE).order_by(PROBE.c.id)).all()
    assert len(stored) == rows
    for row, expected in zip(stored, frame.iter_rows(named=True), strict=True):
        assert row.id == expected["id"]
        assert row.name == expected["name"]  # '' stays '', None stays NULL
        assert row.amount == (None if expected["amount"] is None else Decimal(str(expected["amount"])))
        assert row.day == expected["day"]
        assert row.at == expected["at"]  # microseconds and UTC kept
        assert row.flag == expected["flag"]


def test_an_empty_frame_writes_nothing(probe):
    with probe.begin() as conn:
        bulk.write_frame(conn, "bulk_probe", _frame(0))
    with probe.connect() as conn:
        assert conn.execute(select(PROBE)).all() == []


def test_a_failing_row_takes_the_whole_write_back(probe):
    frame = _frame(1200)
    frame = frame.with_columns(pl.when(pl.col("id") == 1100).then(7).otherwise(pl.col("id")).alias("id"))
    # The raw driver's error: write_frame works on the DBAPI connection under SQLAlchemy's.
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)), probe.begin() as conn:
        bulk.write_frame(conn, "bulk_probe", frame)
    with probe.connect() as conn:
        assert conn.execute(select(PROBE)).all() == []
