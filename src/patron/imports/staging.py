"""Staging tables: a batch goes into a temporary table in one bulk write (patron.bulk:
COPY on PostgreSQL, multi-row INSERTs on SQLite), and set-based SQL moves it into the
real tables.

Values are staged in the database's storage format: money as integer cents (turned into
NUMERIC/REAL by `money()`), timestamps and dates as `patron.bulk` writes them: on
SQLite as text in the format SQLAlchemy itself stores, on PostgreSQL as TIMESTAMPTZ and
DATE, so a staged value and a stored one compare equal when they mean the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from sqlalchemy import text
from sqlalchemy.engine import Connection

from patron import bulk

SQL_TYPES = {"text": "TEXT", "int": "BIGINT", "ts": "TEXT", "date": "TEXT", "bool": "BOOLEAN", "cents": "BIGINT"}


def is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def create(conn: Connection, name: str, columns: dict[str, str], *, index: tuple[str, ...] = ()) -> None:
    """A temporary table dropped at the end of the transaction (by `drop` on SQLite),
    indexed on the columns the set-based statements look rows up by."""
    cols = ", ".join(f"{col} {_sql_type(conn, kind)}" for col, kind in columns.items())
    _drop_earlier(conn, name)
    if is_pg(conn):
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP")
    else:
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({cols})")
    for col in index:
        conn.exec_driver_sql(f"CREATE INDEX {name}_{col} ON {name} ({col})")
    if is_pg(conn):
        conn.exec_driver_sql(f"ANALYZE {name}")


def create_as(conn: Connection, name: str, select_sql: str, *, index: tuple[str, ...] = ()) -> None:
    """A temporary table holding the result of `select_sql`, indexed on `index`.

    PostgreSQL never analyses temporary tables by itself and plans the joins badly
    without statistics; SQLite's planner does well on the indexes alone."""
    _drop_earlier(conn, name)
    if is_pg(conn):
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select_sql}")
    else:
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} AS {select_sql}")
    for col in index:
        conn.exec_driver_sql(f"CREATE INDEX {name}_{col} ON {name} ({col})")
    if is_pg(conn):
        conn.exec_driver_sql(f"ANALYZE {name}")


def _drop_earlier(conn: Connection, name: str) -> None:
    """Drop an earlier batch's table of this name. SQLite keeps temporary tables for the
    connection; PostgreSQL drops them at commit, but a dry run's batches share one transaction."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {'pg_temp' if is_pg(conn) else 'temp'}.{name}")


def drop(conn: Connection, *names: str) -> None:
    if not is_pg(conn):
        for name in names:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")


def _sql_type(conn: Connection, kind: str) -> str:
    if kind == "ts" and is_pg(conn):
        return "TIMESTAMPTZ"
    if kind == "date" and is_pg(conn):
        return "DATE"
    if kind == "bool" and not is_pg(conn):
        return "INTEGER"
    return SQL_TYPES[kind]


def _storage_frame(conn: Connection, frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    out = []
    for col, kind in columns.items():
        if col not in frame.columns:  # only when no column has a value (see load)
            out.append(pl.lit(None, dtype=pl.String).alias(col))
        elif kind == "ts":
            # In UTC: patron.bulk writes timestamps and dates as SQLAlchemy stores them.
            out.append(pl.col(col).dt.convert_time_zone("UTC"))
        elif kind == "bool" and not is_pg(conn):
            out.append(pl.col(col).cast(pl.Int64))
        else:
            out.append(pl.col(col))
    return frame.select(out)


def load(
    conn: Connection, name: str, frame: pl.DataFrame, columns: dict[str, str], *, index: tuple[str, ...] = ()
) -> None:
    """Create the staging table and bulk-write `frame` into it (missing columns are NULL).

    Indexes are built after the rows are in."""
    create(conn, name, columns)
    if frame.height == 0:
        return
    # Columns with no value in this batch are left to the table's NULL default: binding
    # them row by row is most of the cost of a wide, sparse staging table.
    given = {c: k for c, k in columns.items() if c in frame.columns and frame[c].null_count() < frame.height}
    given = given or dict(list(columns.items())[:1])  # at least one column to name in INSERT
    data = _storage_frame(conn, frame, given)
    bulk.write_frame(conn, name, data)
    for col in index:
        conn.exec_driver_sql(f"CREATE INDEX {name}_{col} ON {name} ({col})")
    if is_pg(conn):
        conn.exec_driver_sql(f"ANALYZE {name}")


def money(column: str, conn: Connection) -> str:
    """SQL turning staged cents into the stored money type."""
    return f"({column} / 100.0)" if not is_pg(conn) else f"({column}::numeric / 100)"


def cents(column: str, conn: Connection) -> str:
    """SQL turning a stored money column into integer cents, for exact comparisons."""
    return f"CAST(ROUND({column} * 100) AS BIGINT)"


def now_sql(conn: Connection) -> str:
    """The current time as a literal in the storage format (one value for the whole batch)."""
    now = datetime.now(UTC)
    if is_pg(conn):
        return f"'{now.isoformat()}'::timestamptz"
    return "'" + now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") + "'"


def distinct(a: str, b: str, conn: Connection) -> str:
    """NULL-safe inequality."""
    return f"({a} IS DISTINCT FROM {b})" if is_pg(conn) else f"({a} IS NOT {b})"


def allocate_ids(conn: Connection, stage: str, id_column: str, table: str, where: str = "TRUE") -> int:
    """Give staged rows new primary keys for `table`, so child rows can refer to them.

    PostgreSQL draws them from the table's sequence (safe with concurrent writers); SQLite
    holds the database write lock for the whole transaction, so max(id) + n is safe.
    Returns how many ids were allocated.
    """
    if is_pg(conn):
        result = conn.exec_driver_sql(
            f"UPDATE {stage} SET {id_column} = nextval(pg_get_serial_sequence('{table}', 'id')) WHERE {where}"
        )
        return result.rowcount
    base = conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar_one()
    conn.exec_driver_sql(
        f"UPDATE {stage} SET {id_column} = {base} + (SELECT n FROM (SELECT rowid AS r, "
        f"ROW_NUMBER() OVER (ORDER BY rowid) AS n FROM {stage} WHERE {where}) AS numbered "
        f"WHERE numbered.r = {stage}.rowid) WHERE {where}"
    )
    return conn.exec_driver_sql(f"SELECT COUNT(*) FROM {stage} WHERE {where}").scalar_one()


def fetch(conn: Connection, sql: str, **params) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(sql), params).fetchall()]
