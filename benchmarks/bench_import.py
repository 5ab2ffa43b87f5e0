"""Order import throughput: `patron import` against a naive one-ORM-object-per-row loop.

    uv run python benchmarks/bench_import.py                  # 1M rows, SQLite and PostgreSQL
    uv run python benchmarks/bench_import.py --rows 200000 --backends sqlite

Writes a generated CSV of order lines (order_id, customer_id, placed_at, sku, quantity,
unit_price, channel: about 3 lines per order, 100k customers, 2,000 products, all unknown
to the empty database so the import also creates them as stubs), imports it into an
empty database with the real import path (`imports.service`: read, convert, stage,
set-based upsert, one commit per 50k-row batch), and then, in the same run and on the
same database kind, imports the first `--naive-rows` rows of the same file the way a
hand-written script would: csv.DictReader, one ORM lookup-or-create for customer,
product and order, one OrderLine object per row, one commit at the end. Prints rows/s
for both and their ratio. It also measures the database alone: one INSERT ... SELECT
copying the imported lines within order_lines (same constraints and indexes, no Python),
the ceiling for any importer into this schema on this machine, and the import once more
with no domain event published ("events cost": how much longer the import takes because
it publishes, in the same run). PostgreSQL scratch databases are created and dropped on
--pg-url's server.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
from machine_info import machine  # benchmarks/ is on sys.path when a script runs
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from patron import events, migrate
from patron.db import make_engine, session_scope
from patron.imports import service
from patron.imports.mapping import Mapping
from patron.models import Customer, CustomerExternalId, Order, OrderLine, Product
from patron.models.enums import ImportKind


def write_orders_csv(path: Path, rows: int, seed: int = 7) -> None:
    """About three lines per order, orders in time order, customers drawn at random."""
    rng = np.random.default_rng(seed)
    lines_per_order = rng.integers(1, 6, size=rows // 3 + 10)
    order_of_row = np.repeat(np.arange(lines_per_order.size), lines_per_order)[:rows]
    orders = int(order_of_row.max()) + 1
    customer = rng.integers(1, 100_001, size=orders)
    start = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp())
    placed = np.sort(rng.integers(start, start + 3 * 365 * 86_400, size=orders))
    sku = rng.integers(1, 2_001, size=rows)
    frame = pl.DataFrame(
        {
            "order_id": pl.Series(order_of_row).cast(pl.String).str.zfill(8).str.replace("^", "O", literal=False),
            "customer_id": pl.Series(customer[order_of_row]).cast(pl.String),
            "placed_at": pl.Series(placed[order_of_row] * 1_000_000)
            .cast(pl.Datetime("us", "UTC"))
            .dt.strftime("%Y-%m-%d %H:%M:%S"),
            "sku": pl.Series(sku).cast(pl.String).str.zfill(5).str.replace("^", "SKU-", literal=False),
            "quantity": rng.integers(1, 4, size=rows),
            "unit_price": pl.Series(rng.integers(199, 9_999, size=rows) / 100).round(2),
            "channel": np.where(rng.random(rows) < 0.6, "online", "in_store"),
        }
    )
    frame.write_csv(path)


def naive_import(engine, path: Path, limit: int) -> float:
    """The baseline: one ORM object (and its lookups) per row."""
    t0 = time.perf_counter()
    with Session(engine) as session, path.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i >= limit:
                break
            ext = session.scalars(
                select(CustomerExternalId).where(
                    CustomerExternalId.source == "import", CustomerExternalId.external_id == row["customer_id"]
                )
            ).first()
            if ext is None:
                customer = Customer(external_ids=[CustomerExternalId(source="import", external_id=row["customer_id"])])
                session.add(customer)
                session.flush()
                customer_id = customer.id
            else:
                customer_id = ext.customer_id
            product = session.scalars(select(Product).where(Product.sku == row["sku"])).first()
            if product is None:
                product = Product(sku=row["sku"], name=row["sku"], price=Decimal(row["unit_price"]))
                session.add(product)
                session.flush()
            order = session.scalars(select(Order).where(Order.external_id == row["order_id"])).first()
            price = Decimal(row["unit_price"])
            amount = price * int(row["quantity"])
            if order is None:
                order = Order(
                    external_id=row["order_id"],
                    customer_id=customer_id,
                    placed_at=datetime.fromisoformat(row["placed_at"]).replace(tzinfo=UTC),
                    channel=row["channel"],
                    currency="USD",
                    subtotal=Decimal(0),
                    total=Decimal(0),
                )
                session.add(order)
                session.flush()
            order.subtotal += amount
            order.total += amount
            session.add(
                OrderLine(
                    order_id=order.id,
                    line_no=len(order.lines) + 1,
                    product_id=product.id,
                    quantity=int(row["quantity"]),
                    unit_price=price,
                )
            )
            session.flush()
        session.commit()
    return time.perf_counter() - t0


def fast_import(engine, path: Path) -> tuple[float, object]:
    mapping = Mapping(kind="orders", unknown_customers="stub", unknown_products="stub")
    t0 = time.perf_counter()
    with session_scope(engine) as session:
        run = service.start(session, kind=ImportKind.orders, path=path, mapping=mapping)
        run_id = run.id
    run = service.execute(engine, run_id)
    return time.perf_counter() - t0, run


def database_floor(engine) -> tuple[int, float]:
    """The database alone: copy every stored order line once more with one INSERT ... SELECT
    (same table, constraints, foreign keys and indexes; no Python, no parsing), rolled back.
    No import into this schema can write lines faster than this."""
    with engine.connect() as conn, conn.begin() as tx:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL jit = off")
        t0 = time.perf_counter()
        rows = conn.exec_driver_sql(
            "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price, discount) "
            "SELECT order_id, line_no + 1000, product_id, quantity, unit_price, discount FROM order_lines"
        ).rowcount
        seconds = time.perf_counter() - t0
        tx.rollback()
    return rows, seconds


class Scratch:
    """A fresh, migrated database of one kind; dropped afterwards."""

    def __init__(self, backend: str, pg_url: str, folder: Path):
        self.backend, self.server, self.name = backend, None, None
        if backend == "postgresql":
            self.name = f"patron_bench_{uuid.uuid4().hex[:10]}"
            self.server = make_engine(pg_url, isolation_level="AUTOCOMMIT")
            with self.server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            url = make_url(pg_url).set(database=self.name).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{folder / f'import-{uuid.uuid4().hex[:6]}.db'}"
        self.engine = make_engine(url)
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
        if self.server is not None:
            with self.server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
            self.server.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    folder = Path(tempfile.mkdtemp(prefix="patron-bench-import-"))
    path = folder / "orders.csv"
    t0 = time.perf_counter()
    write_orders_csv(path, args.rows)
    size_mb = path.stat().st_size / 1e6
    print(f"File: {args.rows:,} order lines, {size_mb:,.0f} MB, written in {time.perf_counter() - t0:.1f} s")
    results = []
    for backend in args.backends.split(","):
        db = Scratch(backend, args.pg_url, folder)
        try:
            seconds, run = fast_import(db.engine, path)
            with session_scope(db.engine) as s:
                orders = s.scalar(text("SELECT COUNT(*) FROM orders"))
                lines = s.scalar(text("SELECT COUNT(*) FROM order_lines"))
            assert run.status == "completed" and run.inserted == args.rows, run.message
            rate = args.rows / seconds
            print(f"{backend}: patron import {args.rows:,} rows ({orders:,} orders, {lines:,} lines): {seconds:.1f} s")
            # Re-importing the same file: every row compared, nothing written.
            seconds2, run2 = fast_import(db.engine, path)
            print(f"{backend}: re-import (all unchanged: {run2.unchanged == args.rows}) in {seconds2:.1f} s")
            floor_rows, floor_seconds = database_floor(db.engine)
            floor = floor_rows / floor_seconds
            print(f"{backend}: database alone, INSERT ... SELECT of {floor_rows:,} lines: {floor_seconds:.1f} s")
        finally:
            db.close()
        # The same import with no event published (nobody reacts): what publishing costs.
        db = Scratch(backend, args.pg_url, folder)
        try:
            with events.publishing_off():
                quiet_seconds, _ = fast_import(db.engine, path)
            print(f"{backend}: patron import with publishing off: {quiet_seconds:.1f} s")
        finally:
            db.close()
        db = Scratch(backend, args.pg_url, folder)
        try:
            naive = naive_import(db.engine, path, args.naive_rows)
        finally:
            db.close()
        naive_rate = args.naive_rows / naive
        print(f"{backend}: naive ORM loop {args.naive_rows:,} rows in {naive:.1f} s")
        results.append((backend, rate, args.rows / seconds2, naive_rate, floor, seconds / quiet_seconds - 1))
    print()
    print(
        f"{'backend':<12}{'import rows/s':>15}{'re-import rows/s':>18}{'naive rows/s':>14}{'vs naive':>10}"
        f"{'db alone rows/s':>17}{'vs db alone':>13}{'events cost':>13}"
    )
    for backend, rate, rerate, naive_rate, floor, events_cost in results:
        print(
            f"{backend:<12}{rate:>15,.0f}{rerate:>18,.0f}{naive_rate:>14,.0f}{rate / naive_rate:>9.0f}x"
            f"{floor:>17,.0f}{rate / floor:>12.0%}{events_cost:>+12.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
