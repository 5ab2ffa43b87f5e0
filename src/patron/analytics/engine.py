"""Where the analytics queries run: DuckDB over the operational database, or Spark.

DuckDB attaches the operational database read-only through its SQLite or PostgreSQL
scanner and puts typed views in front of the tables the queries read (`orders`,
`order_lines`, `order_returns`, `customers`, `products`), so a query never sees a
backend difference: timestamps are naive UTC TIMESTAMPs, money is DECIMAL(18,2), ids
are BIGINT, booleans are BOOLEAN, JSON is text. Spark reads a Parquet snapshot of
those views (`export_parquet`, then `register_spark_views`) as temp views of the same
names, so one query text runs on both engines. `source_of` turns a SQLAlchemy engine
into a `Source`, plain data from which `duckdb_connection` builds all that.

The scanners come from the `duckdb-extension-sqlite` and
`duckdb-extension-postgres-scanner` wheels and are loaded from their package
directories: DuckDB never downloads anything.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from patron.errors import PatronError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from sqlalchemy.engine import URL, Engine

ATTACHED = "operational"
TABLES = ("customers", "orders", "order_lines", "order_returns", "products")

# backend: (wheel package, file name stem in the wheel, the extension's own name).
_EXTENSIONS = {
    "sqlite": ("duckdb_extension_sqlite", "sqlite", "sqlite_scanner"),
    "postgresql": ("duckdb_extension_postgres_scanner", "postgres_scanner", "postgres_scanner"),
}
_link_lock = threading.Lock()


class AnalyticsUnavailable(PatronError):
    """The analytics engine cannot read this database (missing scanner, unsupported backend)."""

    status = 500


def extension_path(backend: str) -> Path:
    """The scanner extension file shipped by its wheel for this DuckDB version, ready to LOAD."""
    try:
        package, file_stem, ext_name = _EXTENSIONS[backend]
    except KeyError:
        raise AnalyticsUnavailable(f"analytics supports SQLite and PostgreSQL, not {backend}") from None
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AnalyticsUnavailable(f"the {package} package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}"
    shipped = folder / f"{file_stem}.duckdb_extension"
    if not shipped.is_file():
        raise AnalyticsUnavailable(
            f"{package} has no extension for DuckDB {duckdb.__version__} (looked for {shipped}); "
            "its version must match duckdb's"
        )
    if file_stem == ext_name:
        return shipped
    return _linked_as(shipped, ext_name)


@cache
def _linked_as(shipped: Path, ext_name: str) -> Path:
    # The SQLite wheel names its file sqlite.duckdb_extension, but LOAD looks for the init
    # function of the extension named like the file (sqlite_duckdb_cpp_init) while the
    # binary exports sqlite_scanner_duckdb_cpp_init. A correctly named link in a private
    # folder fixes that without writing into site-packages or ~/.duckdb.
    with _link_lock:
        folder = Path(tempfile.mkdtemp(prefix="patron-duckdb-ext-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        link = folder / f"{ext_name}.duckdb_extension"
        try:
            link.symlink_to(shipped)
        except OSError:
            shutil.copyfile(shipped, link)
        return link


def libpq_conninfo(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL (any driver)."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, str | int] = {}
    if url.host:
        params["host"] = url.host
    if url.port:
        params["port"] = url.port
    if url.username:
        params["user"] = url.username
    if url.password is not None:
        params["password"] = url.password
    if url.database:
        params["dbname"] = url.database
    for key, value in url.query.items():
        # Multi-host URLs come as tuples; libpq takes them comma-separated.
        params[key] = ",".join(value) if isinstance(value, tuple) else value
    return make_conninfo("", **params)


@dataclass(frozen=True)
class Source:
    """What DuckDB needs to read an operational database, as plain data.

    No SQLAlchemy in it: the SQLite reader process (patron.analytics.reader) gets one as
    JSON and starts without importing SQLAlchemy or the models, about a second sooner.
    """

    backend: str  # "sqlite" or "postgresql"
    location: str  # the SQLite file, or a libpq connection string
    # Per table, (column, DuckDB expression reading it with the type every query expects).
    columns: dict[str, list[tuple[str, str]]]

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "location": self.location, "columns": self.columns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        columns = {table: [(name, expr) for name, expr in pairs] for table, pairs in data["columns"].items()}
        return cls(backend=data["backend"], location=data["location"], columns=columns)


def source_of(engine: Engine) -> Source:
    """The Source of the database behind a SQLAlchemy engine (SQLite file or PostgreSQL)."""
    from patron.models import Customer, Order, OrderLine, OrderReturn, Product

    backend = engine.dialect.name
    if backend == "sqlite":
        location = engine.url.database
        if not location or location == ":memory:" or location.startswith("file:"):
            raise AnalyticsUnavailable("analytics needs a SQLite database file, not an in-memory database")
    elif backend == "postgresql":
        location = libpq_conninfo(engine.url)
    else:
        raise AnalyticsUnavailable(f"analytics supports SQLite and PostgreSQL, not {backend}")
    models = {model.__tablename__: model for model in (Customer, Order, OrderLine, OrderReturn, Product)}
    columns = {
        table: [
            (column.name, _column_expr(backend, column.name, column.type)) for column in models[table].__table__.columns
        ]
        for table in TABLES
    }
    return Source(backend=backend, location=location, columns=columns)


def duckdb_connection(source: Engine | Source) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the operational database attached read-only behind typed views."""
    if not isinstance(source, Source):
        source = source_of(source)
    path = extension_path(source.backend)
    conn = duckdb.connect(
        ":memory:",
        config={
            # Never reach for the network: an unknown function must fail, not download.
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    try:
        # Dates are UTC dates whatever the machine's zone (timestamptz -> date uses it).
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"LOAD '{_quote(str(path))}'")
        kind = "sqlite" if source.backend == "sqlite" else "postgres"
        conn.execute(f"ATTACH '{_quote(source.location)}' AS {ATTACHED} (TYPE {kind}, READ_ONLY)")
        _create_views(conn, source)
    except BaseException:
        conn.close()
        raise
    return conn


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _create_views(conn: duckdb.DuckDBPyConnection, source: Source) -> None:
    for table, columns in source.columns.items():
        present = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_name = ?",
                [ATTACHED, table],
            ).fetchall()
        }
        if not present:
            raise AnalyticsUnavailable(f"the operational database has no {table} table (run `patron db upgrade`)")
        select_list = ", ".join(f'{expr} AS "{name}"' for name, expr in columns if name in present)
        conn.execute(f'CREATE VIEW "{table}" AS SELECT {select_list} FROM {ATTACHED}."{table}"')


def _column_expr(backend: str, name: str, type_) -> str:
    from sqlalchemy import JSON, Boolean, Date, Integer

    from patron.models.base import Money, UTCDateTime

    col = f'"{name}"'
    if isinstance(type_, UTCDateTime):
        # SQLite holds naive UTC text (read as TIMESTAMP); PostgreSQL holds timestamptz,
        # whose conversion to TIMESTAMP must not depend on the session's zone.
        return f"CAST({col} AS TIMESTAMP)" if backend == "sqlite" else f"timezone('UTC', {col})"
    if isinstance(type_, Money):
        # SQLite keeps NUMERIC as REAL: round to cents before the exact type.
        return f"CAST(ROUND({col}, 2) AS DECIMAL(18, 2))" if backend == "sqlite" else f"CAST({col} AS DECIMAL(18, 2))"
    if isinstance(type_, Boolean):
        return f"CAST({col} AS BOOLEAN)"
    if isinstance(type_, Date):
        return f"CAST({col} AS DATE)"
    if isinstance(type_, Integer):
        return f"CAST({col} AS BIGINT)"
    if isinstance(type_, JSON):
        return f"CAST({col} AS VARCHAR)"
    return col


# --------------------------------------------------------------------------- Spark

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


@cache
def _log4j2_file() -> Path:
    fd, name = tempfile.mkstemp(prefix="patron-spark-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as fh:
        fh.write(_LOG4J2)
    return Path(name)


def spark_session(app_name: str = "patron-analytics", *, master: str = "local[2]", memory: str = "1g") -> SparkSession:
    """A local Spark session for the analytics queries: small, quiet, UTC."""
    from pyspark.sql import SparkSession

    # Both the JVM and SQL sessions in UTC: dates of timestamps are UTC dates, as in DuckDB.
    java_opts = f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{_log4j2_file()}"
    spark = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.memory", memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # The default 200 shuffle partitions cost more than the work on one machine.
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def export_parquet(source: duckdb.DuckDBPyConnection | Engine, directory: str | Path) -> dict[str, Path]:
    """Write the typed views (orders, order_lines, ...) as one Parquet file each into directory."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    conn = source if isinstance(source, duckdb.DuckDBPyConnection) else duckdb_connection(source)
    files = {}
    try:
        for table in TABLES:
            path = folder / f"{table}.parquet"
            conn.execute(f"COPY (SELECT * FROM \"{table}\") TO '{_quote(str(path))}' (FORMAT parquet)")
            files[table] = path
    finally:
        if conn is not source:
            conn.close()
    return files


def register_spark_views(spark: SparkSession, directory: str | Path) -> None:
    """Register the Parquet files written by export_parquet as Spark temp views of the same names."""
    # Parquet rather than in-memory DataFrames: Spark plans file scans with real sizes
    # (a local DataFrame lives in the driver's plan and was broadcast until memory ran
    # out), and it is how a cluster would read a snapshot of the operational data.
    folder = Path(directory)
    for table in TABLES:
        path = folder / f"{table}.parquet"
        if not path.is_file():
            raise AnalyticsUnavailable(f"{path} is missing; write the snapshot with export_parquet() first")
        spark.read.parquet(str(path)).createOrReplaceTempView(table)
