"""Throughput of the demo data generator (`patron generate`) into an empty database.

    uv run python benchmarks/bench_generate.py                       # 100k customers, temporary SQLite file
    uv run python benchmarks/bench_generate.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

With --database-url, a scratch database named patron_bench_<random> is created on that
server, filled and dropped again; the URL's own database is only used to connect.
Prints rows per table, seconds, rows/s and the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from machine_info import machine  # benchmarks/ is on sys.path when a script runs
from sqlalchemy import text
from sqlalchemy.engine import make_url

from patron import migrate
from patron.db import make_engine
from patron.demo.generator import generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", help="PostgreSQL server URL; a scratch database is created on it.")
    args = parser.parse_args()
    print(f"Machine: {machine()}")

    server = None
    scratch = None
    if args.database_url:
        scratch = f"patron_bench_{uuid.uuid4().hex[:10]}"
        server = make_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = make_url(args.database_url).set(database=scratch).render_as_string(hide_password=False)
        folder = None
    else:
        folder = Path(tempfile.mkdtemp(prefix="patron-bench-"))
        url = f"sqlite:///{folder / 'generate.db'}"
    engine = make_engine(url)
    try:
        t0 = time.perf_counter()
        migrate.upgrade(engine)
        migrated = time.perf_counter() - t0
        summary = generate(engine, customers=args.customers, seed=args.seed)
        total = sum(summary.rows.values())
        print(f"Backend: {engine.dialect.name}; migration {migrated:.1f} s")
        for table, count in summary.rows.items():
            print(f"  {table:<24}{count:>12,}")
        print(f"  {'total':<24}{total:>12,}")
        print(
            f"Generated {args.customers:,} customers ({summary.rows['orders']:,} orders, "
            f"{summary.rows['order_lines']:,} lines) in {summary.seconds:.1f} s = {total / summary.seconds:,.0f} rows/s"
        )
        if folder:
            size = sum(p.stat().st_size for p in folder.iterdir())
            print(f"SQLite file size: {size / 1e6:,.0f} MB")
    finally:
        engine.dispose()
        if server is not None:
            with server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            server.dispose()
        if folder:
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
