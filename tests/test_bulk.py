"""patron.bulk.write_frame: a frame goes in whole, every value as SQLAlchemy would have stored it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg
import pytest
from sqlalchemy import Boolean, Column, Date, Integer, MetaData, SmallInteger, String, Table, select

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


def test_columns_with_one_value_in_every_row_arrive_in_every_row(probe):
    # SQLite binds such columns once per statement: every row must still get them.
    rows = 2 * bulk.SQLITE_ROWS_PER_STATEMENT + 7
    frame = _frame(rows).with_columns(
        pl.lit("same").alias("name"),
        pl.lit(2.5).alias("amount"),
        pl.lit(date(2026, 5, 4)).alias("day"),
        pl.lit(datetime(2026, 5, 4, 8, 0, 0, 1, tzinfo=UTC)).alias("at"),
        pl.lit(True).alias("flag"),
    )
    with probe.begin() as conn:
        bulk.write_frame(conn, "bulk_probe", frame)
    with probe.connect() as conn:
        stored = conn.execute(select(PROBE).order_by(PROBE.c.id)).all()
    assert [tuple(row) for row in stored] == [
        (i, "same", Decimal("2.50"), date(2026, 5, 4), datetime(2026, 5, 4, 8, 0, 0, 1, tzinfo=UTC), True)
        for i in range(1, rows + 1)
    ]


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


# --------------------------------------------------------------------------- PostgreSQL's binary COPY

CASTS = Table(
    "bulk_casts",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("small", SmallInteger),
    Column("amount", Money),
    Column("at", UTCDateTime),
    Column("code", String(3)),
)


@pytest.fixture
def casts(postgres_engine):
    CASTS.create(postgres_engine)
    yield postgres_engine
    CASTS.drop(postgres_engine)


def test_postgresql_columns_are_cast_to_their_table_types(casts):
    # Int64 ids into integer and smallint, floats into NUMERIC(12, 2) (to the nearest cent of
    # the float's value), a naive datetime taken as UTC, an all-null column of no type.
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "small": [7, None, -3],
            "amount": [12.35, 0.1 + 0.2, -2.5],
            "at": [datetime(2026, 3, 1, 9, 30, 15, 123456), None, datetime(2026, 12, 31, 23, 59, 59)],
            "code": [None, None, None],
        }
    )
    with casts.begin() as conn:
        bulk.write_frame(conn, "bulk_casts", frame)
    with casts.connect() as conn:
        stored = conn.execute(select(CASTS).order_by(CASTS.c.id)).all()
    assert [tuple(row) for row in stored] == [
        (1, 7, Decimal("12.35"), datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC), None),
        (2, None, Decimal("0.30"), None, None),
        (3, -3, Decimal("-2.50"), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), None),
    ]


def test_postgresql_checks_what_text_input_would(casts):
    # The binary format skips the text parser, not the column's own checks.
    frame = pl.DataFrame({"id": [1, 2], "code": ["abc", "abcd"]})
    with pytest.raises(psycopg.errors.StringDataRightTruncation), casts.begin() as conn:
        bulk.write_frame(conn, "bulk_casts", frame)
    with casts.connect() as conn:
        assert conn.execute(select(CASTS)).all() == []


def test_postgresql_refuses_what_it_cannot_encode(casts):
    with casts.begin() as conn:
        with pytest.raises(ValueError, match="bulk_casts has no column 'colour'"):
            bulk.write_frame(conn, "bulk_casts", pl.DataFrame({"id": [1], "colour": ["red"]}))
        conn.exec_driver_sql("ALTER TABLE bulk_casts ADD COLUMN span interval")
        with pytest.raises(TypeError, match=r"cannot COPY into bulk_casts\.span of type interval"):
            bulk.write_frame(conn, "bulk_casts", pl.DataFrame({"id": [1], "span": ["1 day"]}))
        conn.exec_driver_sql("ALTER TABLE bulk_casts DROP COLUMN span")
    # A value that does not fit its column's type fails the write (and its transaction) whole.
    frame = pl.DataFrame({"id": list(range(1, bulk.CHUNK_ROWS + 2)), "small": [1] * bulk.CHUNK_ROWS + [70_000]})
    with pytest.raises(pl.exceptions.InvalidOperationError), casts.begin() as conn:
        bulk.write_frame(conn, "bulk_casts", frame)
    with casts.connect() as conn:
        assert conn.execute(select(CASTS)).all() == []
