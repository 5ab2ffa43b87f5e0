"""Engine, session factory, the request session dependency and session_scope()."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from patron.settings import get_settings


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
            # turn it off and let SQLAlchemy emit BEGIN (the documented recipe), so a
            # transaction really spans every statement of a request.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if parsed.database and parsed.database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            # Temporary tables (imports stage every batch in them) and sorts stay in memory
            # instead of a temporary file.
            cur.execute("PRAGMA temp_store=MEMORY")
            # A 64 MiB page cache (the default is 2 MiB) keeps the indexes of a few million
            # orders in memory: bulk imports spent a fifth of their time re-reading index
            # pages. Pages are allocated only as they are used.
            cur.execute("PRAGMA cache_size=-65536")
            if parsed.database and parsed.database != ":memory:":
                # Read the file through a memory map (address space, not memory) instead of
                # copying each page: on 1M customers a segment count scanning customers took
                # 0.11 s instead of 0.20 s, one aggregating 3M orders 0.7 s instead of 1.0 s.
                cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for PATRON_DATABASE_URL."""
    return make_engine(get_settings().database_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None, *, factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = (factory or session_factory(engine))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_session(request: Request) -> Iterator[Session]:
    """Request dependency: one transaction per request, committed before the response.

    Declared with ``Depends(get_session, scope="function")`` so the commit happens
    before the response is sent; a failed commit therefore becomes an error response
    rather than a 200 for data that was never stored.
    """
    with session_scope(factory=request.app.state.sessionmaker) as session:
        yield session
