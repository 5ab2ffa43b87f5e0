"""Segment preview speed on 1M customers / ~3M orders: the compiled rule against a Python filter.

    uv run python benchmarks/bench_segments.py                              # 1M customers, both backends
    uv run python benchmarks/bench_segments.py --customers 100000 --backends sqlite
    uv run python benchmarks/bench_segments.py --use sqlite:///seg.db --use postgresql+psycopg://...

`--use URL` measures a database filled earlier by this script's data (for example kept
from a previous run) instead of generating and filling a scratch one.

For each backend a fresh database is migrated and filled directly (the data of
benchmarks/bench_analyze.py: customers with country, gender, age band, city, postal code
and birthday; orders over two years before AS_OF with one line each over 2,000
products). Filling is not timed.

Then `segments.service.preview()` (what POST /api/v1/segments/preview runs: the member
count, the count of all customers and a sample of 10) is timed `--repeat` times for
two rules, and the median printed against the issue's targets:

- attribute: three conditions on customers' own columns (target 200 ms);
- aggregate: an attribute condition and "two or more orders in the last 90 days"
  (target 1 s).

In the same run, the peer: what a script without a rule compiler does, reading the rows
the rule needs and filtering them in Python (customers' columns; orders in the window,
counted per customer), also the median of `--repeat` runs, and the ratio. Both answers
must agree.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from bench_analyze import AS_OF, PG_URL, Scratch, fill_postgresql, fill_sqlite, generate
from machine_info import machine  # benchmarks/ is on sys.path when a script runs
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.db import make_engine
from patron.models import Customer, Order
from patron.segments import service

TARGETS_MS = {"attribute": 200.0, "aggregate": 1000.0}
COUNTRIES = ["FR", "DE", "GB", "ES", "IT", "NL", "BE", "US"]
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
RULES = {
    "attribute": {
        "all": [
            {"field": "country", "op": "eq", "value": "FR"},
            {"field": "age_band", "op": "in", "value": ["25-34", "35-44"]},
            {"field": "gender", "op": "eq", "value": "female"},
        ]
    },
    "aggregate": {
        "all": [
            {"field": "country", "op": "in", "value": ["FR", "DE"]},
            {"purchases": {"within_days": 90}, "metric": "count", "op": "gte", "value": 2},
        ]
    },
}


def add_profiles(frames: dict[str, pl.DataFrame], seed: int) -> dict[str, pl.DataFrame]:
    """Demographic and geographic columns on the generated customers."""
    customers = frames["customers"]
    n = customers.height
    rng = np.random.default_rng(seed + 1)
    country = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)]
    birthday = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, n).astype("timedelta64[D]")
    frames["customers"] = customers.with_columns(
        country=pl.Series(country),
        gender=pl.Series(np.array(["female", "male", "nonbinary"])[rng.choice(3, n, p=[0.5, 0.47, 0.03])]),
        age_band=pl.Series(np.array(AGE_BANDS)[rng.integers(0, len(AGE_BANDS), n)]),
        city=pl.Series(np.array([f"City {i}" for i in range(500)])[rng.integers(0, 500, n)]),
        postal_code=pl.Series(rng.integers(10000, 99999, n).astype(str)),
        birthday=pl.Series(birthday).cast(pl.Date).dt.strftime("%Y-%m-%d"),
    )
    return frames


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


def naive_attribute(session: Session) -> int:
    rows = session.execute(select(Customer.id, Customer.country, Customer.age_band, Customer.gender)).all()
    return sum(1 for _, c, a, g in rows if c == "FR" and a in ("25-34", "35-44") and g == "female")


def naive_aggregate(session: Session) -> int:
    # As the rules count days: "within 90 days" runs from AS_OF - 90 to AS_OF, both whole days.
    since = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=90)
    wanted = {cid for cid, country in session.execute(select(Customer.id, Customer.country)) if country in ("FR", "DE")}
    counts = Counter(
        cid
        for cid, status in session.execute(select(Order.customer_id, Order.status).where(Order.placed_at >= since))
        if status != "cancelled"
    )
    return sum(1 for cid, n in counts.items() if n >= 2 and cid in wanted)


def measure(engine, backend: str, repeat: int, table: list) -> None:
    """Time the preview of each rule and the Python filter on one filled database."""
    with Session(engine) as session:
        for name, rule in RULES.items():
            service.preview(session, rule=rule, today=AS_OF)  # warm the page cache once
            ms, preview = timed(lambda r=rule: service.preview(session, rule=r, today=AS_OF), repeat)
            naive = naive_attribute if name == "attribute" else naive_aggregate
            peer_ms, peer_count = timed(lambda f=naive: f(session), max(1, repeat // 3))
            agree = "yes" if peer_count == preview.count else f"NO ({peer_count:,})"
            print(
                f"[{backend}] {name}: {preview.count:,} of {preview.total:,} customers; preview median "
                f"{ms:,.0f} ms (target {TARGETS_MS[name]:,.0f} ms); Python filter {peer_ms:,.0f} ms; "
                f"same count: {agree}"
            )
            table.append((backend, name, ms, TARGETS_MS[name], peer_ms))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--use", action="append", default=[], metavar="URL", help="Measure this filled database.")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgresql"}:
        parser.error("--backends takes sqlite and/or postgresql")

    print(f"Machine: {machine()}")
    table = []
    if args.use:
        for url in args.use:
            engine = make_engine(url)
            print(f"\n[{engine.dialect.name}] {engine.url.render_as_string(hide_password=True)}, filled earlier")
            measure(engine, engine.dialect.name, args.repeat, table)
            engine.dispose()
    else:
        t0 = time.perf_counter()
        frames = add_profiles(generate(args.customers, args.seed), args.seed)
        print(
            f"Data: {args.customers:,} customers, {frames['orders'].height:,} orders; generated in "
            f"{time.perf_counter() - t0:.1f} s; rules evaluated as of {AS_OF}"
        )
        for backend in backends:
            scratch = Scratch(backend, args.database_url)
            try:
                t0 = time.perf_counter()
                (fill_sqlite if backend == "sqlite" else fill_postgresql)(scratch.engine, frames)
                print(f"\n[{backend}] filled in {time.perf_counter() - t0:.1f} s (not timed below)")
                measure(scratch.engine, backend, args.repeat, table)
            finally:
                scratch.close()
    print()
    print(
        f"{'backend':<12}{'rule':<11}{'preview ms':>11}{'target ms':>10}{'target/actual':>15}"
        f"{'Python ms':>11}{'vs Python':>11}"
    )
    for backend, name, ms, target, peer_ms in table:
        print(
            f"{backend:<12}{name:<11}{ms:>11,.0f}{target:>10,.0f}{target / ms:>14.2f}x{peer_ms:>11,.0f}"
            f"{peer_ms / ms:>10.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
