"""`patron analyze` end to end on 1M customers / ~3M orders, and the models against lifetimes 0.11.3.

    uv run --with lifetimes==0.11.3 python benchmarks/bench_analyze.py              # 1,000,000 customers, both backends
    uv run python benchmarks/bench_analyze.py --customers 100000 --backends sqlite  # smaller, no lifetimes

For each backend a fresh database is migrated and filled directly (vectorised numpy and
polars; PostgreSQL COPY, SQLite one executemany per table): customers whose first
purchases are spread over two years before AS_OF, repeat purchases from a BG/NBD process
in days (purchase rate Gamma(r, alpha), drop-out after each repeat purchase with
probability Beta(a, b)), order values from the Gamma-Gamma model, one order line each
over 2,000 products with categories, brands, tiers and unit costs; ~2% of orders
cancelled. Filling is not timed.

Then `analyze()` (the code behind `patron analyze`, default options: --model auto with
the holdout check, CLV over 365 days) runs in a child process and commits: DuckDB
summaries, RFM, validation (two calibration fits, tracking plot), the refit, scores for
every customer, insights, and the write-back; `--runs` times (default 2) on the same
database, each after the database has settled (see settle()). The child reports its
wall time, the run's per-step timings and its peak memory: that of its process tree
(itself and, on SQLite, the process analyze() reads the database in, which lives on
while the models are fitted), sampled every 20 ms, and each process's own. Imports are done before the
clock starts; the reader process on SQLite pays its imports inside the timed run. So
that those are the imports of an installed system, which has its modules' bytecode
cached, the benchmark first compiles the bytecode of the environment when
PYTHONDONTWRITEBYTECODE keeps Python from caching it (as in this sandbox: the reader's
imports then took 5.2 s instead of 1.7 s).

Last, on the summaries of the first backend's database, the fit + scoring step of
patron and of lifetimes (BetaGeoFitter + GammaGammaFitter) is timed by
benchmarks/bench_models.py's run_patron and run_lifetimes, and the parameters compared.
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
from machine_info import machine  # benchmarks/ is on sys.path when a script runs
from sqlalchemy import text
from sqlalchemy.engine import make_url

from patron import migrate
from patron.db import make_engine

AS_OF = date(2026, 9, 30)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TRUE_BGNBD = {"r": 0.3, "alpha": 25.0, "a": 0.8, "b": 2.5}  # days
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
PRODUCTS = 2_000
CATEGORIES = [
    "Home/Decor", "Home/Kitchen", "Kids/Toys", "Baby/Care", "Electronics/Audio", "Electronics/Phones",
    "Fashion/Women", "Fashion/Men", "Beauty/Skin", "Sports/Outdoor", "Books/Fiction", "Garden/Tools",
]  # fmt: skip
BRANDS = [f"Brand {i}" for i in range(60)]
CHANNELS = ["online", "in_store", "mobile", "phone"]
TARGET_SECONDS = 15.0
TARGET_MB = 2048


# --------------------------------------------------------------------------- data


def generate(customers: int, seed: int) -> dict[str, pl.DataFrame]:
    """Customers, products, orders and order lines as polars frames (ids from 1)."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = TRUE_BGNBD.values()
    first_offset = rng.integers(0, 730, size=customers)  # days before AS_OF
    age = first_offset.astype(float)
    lam = rng.gamma(r, 1.0 / alpha, size=customers)
    p = rng.beta(a, b, size=customers)
    possible = rng.poisson(lam * age)
    repeats = np.minimum(possible, rng.geometric(p))
    # The repeat purchases are the first `repeats` of `possible` uniform times in (0, T).
    owner = np.repeat(np.arange(customers), possible)
    times = rng.random(owner.size) * age[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    starts = np.repeat(np.cumsum(possible) - possible, possible)
    keep = (np.arange(owner.size) - starts) < repeats[owner]
    owner, times = owner[keep], times[keep]
    # Orders: each customer's first purchase, then the repeats (whole days after it).
    cust = np.concatenate([np.arange(customers), owner])
    day_offset = np.concatenate([np.zeros(customers), np.ceil(times)]).astype(np.int64)
    first_day = np.datetime64(AS_OF) - first_offset.astype("timedelta64[D]")
    placed_day = first_day[cust] + day_offset.astype("timedelta64[D]")
    seconds = rng.integers(8 * 3600, 22 * 3600, size=cust.size).astype("timedelta64[s]")
    placed_at = placed_day.astype("datetime64[s]") + seconds
    sort = np.argsort(placed_at, kind="stable")  # ids in time order, as a shop's would be
    cust, placed_at = cust[sort], placed_at[sort]
    n_orders = cust.size
    gp, gq, gg = TRUE_GG.values()
    nu = rng.gamma(gq, 1.0 / gg, size=customers)
    total = np.maximum(np.round(rng.gamma(gp, 1.0 / nu[cust]), 2), 0.01)
    status = np.where(rng.random(n_orders) < 0.02, "cancelled", "fulfilled")
    channel = np.array(CHANNELS)[rng.choice(4, size=n_orders, p=[0.55, 0.25, 0.15, 0.05])]
    created = datetime(2024, 1, 1, tzinfo=UTC)

    product_category = np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), PRODUCTS)]
    product_price = np.round(rng.gamma(3.0, 12.0, PRODUCTS) + 1, 2)
    products = pl.DataFrame(
        {
            "id": np.arange(1, PRODUCTS + 1),
            "sku": [f"BENCH-{i}" for i in range(1, PRODUCTS + 1)],
            "name": [f"Product {i}" for i in range(1, PRODUCTS + 1)],
            "category_path": product_category,
            "brand": np.array(BRANDS)[rng.integers(0, len(BRANDS), PRODUCTS)],
            "tier": np.array(["value", "standard", "premium"])[rng.integers(0, 3, PRODUCTS)],
            "price": product_price,
            "unit_cost": np.round(product_price * 0.6, 2),
            "is_active": np.ones(PRODUCTS, dtype=bool),
            "attributes": ["{}"] * PRODUCTS,
            "created_at": [created] * PRODUCTS,
            "updated_at": [created] * PRODUCTS,
        }
    )
    customers_frame = pl.DataFrame(
        {
            "id": np.arange(1, customers + 1),
            "first_name": [""] * customers,
            "last_name": [""] * customers,
            "interests": ["[]"] * customers,
            "attributes": ["{}"] * customers,
            "created_at": [created] * customers,
            "updated_at": [created] * customers,
        }
    )
    placed = pl.Series(placed_at.astype("datetime64[us]")).dt.replace_time_zone("UTC")
    orders = pl.DataFrame(
        {
            "id": np.arange(1, n_orders + 1),
            "customer_id": cust + 1,
            "placed_at": placed,
            "channel": channel,
            "status": status,
            "currency": ["EUR"] * n_orders,
            "subtotal": total,
            "discount": np.zeros(n_orders),
            "shipping_fee": np.zeros(n_orders),
            "tax": np.zeros(n_orders),
            "total": total,
            "created_at": placed,
            "updated_at": placed,
        }
    )
    lines = pl.DataFrame(
        {
            "id": np.arange(1, n_orders + 1),
            "order_id": np.arange(1, n_orders + 1),
            "line_no": np.ones(n_orders, dtype=np.int64),
            "product_id": rng.integers(1, PRODUCTS + 1, n_orders),
            "quantity": np.ones(n_orders, dtype=np.int64),
            "unit_price": total,
            "discount": np.where(rng.random(n_orders) < 0.15, np.round(total * 0.1, 2), 0.0),
        }
    )
    return {"customers": customers_frame, "products": products, "orders": orders, "order_lines": lines}


def fill_sqlite(engine, frames: dict[str, pl.DataFrame]) -> None:
    raw = engine.raw_connection()
    try:
        sqlite = raw.driver_connection
        cur = sqlite.cursor()
        cur.execute("BEGIN")
        for table, frame in frames.items():
            frame = frame.with_columns(
                [pl.col(n).dt.strftime("%Y-%m-%d %H:%M:%S.%6f") for n, t in frame.schema.items() if t != pl.Date and
                 isinstance(t, pl.Datetime)]
            )  # fmt: skip
            sql = f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES ({', '.join('?' * frame.width)})"
            for offset in range(0, frame.height, 500_000):
                chunk = frame.slice(offset, 500_000)
                cur.executemany(sql, zip(*(chunk[c].to_list() for c in chunk.columns), strict=True))
        cur.execute("COMMIT")
        cur.execute("ANALYZE")
        # One big transaction leaves a WAL as large as the data; a live database is
        # checkpointed as it goes, so start from there.
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def fill_postgresql(engine, frames: dict[str, pl.DataFrame]) -> None:
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        with pg.cursor() as cur:
            for table, frame in frames.items():
                columns = ", ".join(frame.columns)
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                    for offset in range(0, frame.height, 500_000):
                        buffer = io.BytesIO()
                        frame.slice(offset, 500_000).write_csv(
                            buffer, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S+00:00"
                        )
                        copy.write(buffer.getbuffer())
            for table in frames:
                # Keep the id sequences past the ids written directly.
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def settle(engine) -> None:
    """Bring the database to where it would be a while after its last writes, before a timed run.

    Right after a fill (or a run), the kernel and PostgreSQL's checkpointer still have
    gigabytes of dirty pages to write, and autovacuum has the new rows to visit: done during
    the next timed run, that added 2 to 6 s to a run of about 15 here. A business runs
    analyze daily, long after that work is over.
    """
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            pg = raw.driver_connection
            pg.autocommit = True
            pg.execute("VACUUM ANALYZE")
            pg.execute("CHECKPOINT")
        else:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    os.sync()


# --------------------------------------------------------------------------- the timed child


class TreeMemory:
    """The peak of this process's resident memory plus its child processes', sampled every 20 ms.

    On SQLite analyze() reads in a child process that lives on while the parent fits the
    models, so the two peaks can coincide: what the machine must have is their sum. Resident
    sizes count shared library pages in each process, so the sum errs on the high side.
    """

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _rss_mb(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended between listing and reading
        return 0.0

    @staticmethod
    def _children(pid: int) -> list[int]:
        found = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    found += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
        return found

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.02):
            total = self._rss_mb(me) + sum(self._rss_mb(c) for c in self._children(me))
            self.peak_mb = max(self.peak_mb, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def child(url: str, model: str) -> int:
    """Run analyze() once on url and print a JSON line with its wall time, step timings and peak memory."""
    import matplotlib.figure  # noqa: F401  (warm imports: see the module docstring)

    from patron.analytics import service
    from patron.db import session_scope

    engine = make_engine(url)
    memory = TreeMemory()
    t0 = time.perf_counter()
    with session_scope(engine) as session:
        run = service.analyze(session, as_of=AS_OF, model=model, actor="bench")
        result = {
            "status": run.status.value,
            "model": run.model,
            "customers": run.customers,
            "buyers": run.buyers,
            "timings": run.timings,
            "message": run.message,
            "params": (run.fits.get(run.model) or {}).get("params"),
            "validation": {
                name: m.get("metrics", {}).get("rmse") for name, m in (run.validation.get("models") or {}).items()
            },
            "equity": (run.fits.get("clv") or {}).get("equity"),
        }
    result["seconds"] = time.perf_counter() - t0
    result["tree_peak_mb"] = memory.stop()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so this process would
    # report the benchmark's own peak (the generated data) as its own.
    with open("/proc/self/status") as status:
        result["max_rss_mb"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    # On SQLite analyze() reads through DuckDB in a child process (see patron.analytics.reader).
    result["reader_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    engine.dispose()
    print("RESULT " + json.dumps(result))
    return 0


def timed_analyze(url: str, model: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", url, "--model", model],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"the analyze child failed:\n{proc.stdout}\n{proc.stderr}")


# --------------------------------------------------------------------------- main


class Scratch:
    """A fresh migrated database of one backend, removed by close()."""

    def __init__(self, backend: str, pg_url: str):
        self.backend = backend
        self.folder = None
        self.server = None
        if backend == "sqlite":
            self.folder = Path(tempfile.mkdtemp(prefix="patron-bench-analyze-"))
            self.url = f"sqlite:///{self.folder / 'analyze.db'}"
        else:
            self.name = f"patron_bench_{uuid.uuid4().hex[:10]}"
            self.server = make_engine(pg_url, isolation_level="AUTOCOMMIT")
            with self.server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = make_url(pg_url).set(database=self.name).render_as_string(hide_password=False)
        self.engine = make_engine(self.url)
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
        if self.server is not None:
            with self.server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.server.dispose()
        if self.folder is not None:
            for p in self.folder.iterdir():
                p.unlink()
            self.folder.rmdir()


def summaries_for_models(engine) -> dict[str, np.ndarray]:
    """(frequency, recency, T, monetary_value) of every buyer, read as analyze() reads them."""
    from patron.analytics.reader import read_inputs

    with read_inputs(engine, as_of=AS_OF, holdout_days=0, cost_margin=False, insights=False) as inputs:
        df = inputs.summaries
    df = df.filter(pl.col("first_purchase").is_not_null())
    return {
        "frequency": df["frequency"].to_numpy().astype(float),
        "recency": df["recency"].to_numpy(),
        "T": df["T"].to_numpy(),
        "monetary_value": df["monetary_value"].to_numpy(),
    }


def compile_bytecode() -> None:
    """Cache the bytecode of this environment and of patron, as an installed system has it."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return  # Python caches it on first import
    import patron

    t0 = time.perf_counter()
    for folder in {*(p for p in sys.path if p.endswith("site-packages")), str(Path(patron.__file__).parent)}:
        compileall.compile_dir(folder, quiet=2, workers=0)
    print(f"Bytecode compiled in {time.perf_counter() - t0:.1f} s (PYTHONDONTWRITEBYTECODE is set here)")


def report(backend: str, number: int, result: dict) -> None:
    label = f"[{backend} run {number}]"
    steps = ", ".join(f"{k} {v:.2f}" for k, v in result["timings"].items() if k != "total")
    reader = f", reader process {result['reader_rss_mb']:,.0f} MB" if result["reader_rss_mb"] else ""
    print(
        f"{label} analyze: {result['seconds']:.2f} s wall (target {TARGET_SECONDS:g} s), peak memory of the "
        f"process tree {result['tree_peak_mb']:,.0f} MB (target < {TARGET_MB:,} MB; this process "
        f"{result['max_rss_mb']:,.0f} MB{reader}); status {result['status']}, model {result['model']}"
    )
    print(f"{label} steps (s): {steps}")
    if number == 1:
        print(
            f"{label} {result['customers']:,} customers, {result['buyers']:,} buyers; holdout RMSE "
            + ", ".join(f"{k} {v:.4f}" for k, v in result["validation"].items() if v is not None)
            + f"; params {result['params']}; equity {result['equity']:,.0f}"
        )
        if result["message"]:
            print(f"{label} message: {result['message']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--backends", default="sqlite,postgresql", help="Comma-separated: sqlite, postgresql.")
    parser.add_argument("--database-url", default=PG_URL, help="PostgreSQL server; a scratch database is made on it.")
    parser.add_argument("--model", default="auto", choices=["auto", "bgnbd", "pareto"])
    parser.add_argument("--runs", type=int, default=2, help="analyze() runs per backend (each adds a run's scores).")
    parser.add_argument("--no-peer", action="store_true", help="Skip the lifetimes comparison.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.model)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgresql"}:
        parser.error("--backends takes sqlite and/or postgresql")

    print(f"Machine: {machine()}")
    compile_bytecode()
    t0 = time.perf_counter()
    frames = generate(args.customers, args.seed)
    orders = frames["orders"]
    print(
        f"Data: {args.customers:,} customers, {orders.height:,} orders "
        f"({int((orders['status'] == 'cancelled').sum()):,} cancelled), {frames['order_lines'].height:,} lines, "
        f"{PRODUCTS:,} products; generated in {time.perf_counter() - t0:.1f} s; as_of {AS_OF}"
    )
    results = {}
    model_data = None
    for backend in backends:
        scratch = Scratch(backend, args.database_url)
        try:
            t0 = time.perf_counter()
            (fill_sqlite if backend == "sqlite" else fill_postgresql)(scratch.engine, frames)
            print(f"\n[{backend}] filled in {time.perf_counter() - t0:.1f} s (not timed below)")
            runs = []
            for number in range(1, args.runs + 1):
                settle(scratch.engine)
                result = timed_analyze(scratch.url, args.model)
                runs.append(result)
                report(backend, number, result)
            results[backend] = runs
            if model_data is None:
                model_data = summaries_for_models(scratch.engine)
        finally:
            scratch.close()

    print()
    print(f"{'backend':<12}{'run':>4}{'analyze s':>10}{'target/actual':>15}{'tree peak MB':>14}{'process MB':>12}"
          f"{'reader MB':>11}")  # fmt: skip
    for backend, runs in results.items():
        for number, result in enumerate(runs, 1):
            print(
                f"{backend:<12}{number:>4}{result['seconds']:>10.2f}{TARGET_SECONDS / result['seconds']:>14.2f}x"
                f"{result['tree_peak_mb']:>14,.0f}{result['max_rss_mb']:>12,.0f}{result['reader_rss_mb']:>11,.0f}"
            )

    if args.no_peer or model_data is None:
        return 0
    import bench_models

    print(f"\nModels on the same summaries ({model_data['frequency'].size:,} buyers), fit + scoring:")
    ours_seconds, ours_params, ours_scores = bench_models.run_patron(model_data)
    peer = bench_models.run_lifetimes(model_data)
    if peer is None:
        return 0
    peer_seconds, peer_params, peer_scores = peer
    param_diff = max(abs(ours_params[k] - peer_params[k]) / abs(peer_params[k]) for k in ours_params)
    print(f"{'':<12}{'patron s':>10}{'lifetimes s':>13}{'ratio':>8}")
    print(f"{'fit+score':<12}{ours_seconds:>10.2f}{peer_seconds:>13.2f}{peer_seconds / ours_seconds:>7.1f}x")
    print(f"max relative parameter difference: {param_diff:.2e} (target 1e-4)")
    for name, ours in ours_scores.items():
        theirs = peer_scores[name]
        ok = np.isfinite(theirs)
        rel = np.abs(ours[ok] - theirs[ok]) / np.maximum(np.abs(theirs[ok]), 1e-12)
        print(f"  {name:<10} max relative difference {rel.max():.2e}; lifetimes non-finite: {int((~ok).sum()):,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
