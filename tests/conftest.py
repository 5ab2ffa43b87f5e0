"""Shared fixtures: a real, Alembic-migrated database on SQLite and on PostgreSQL.

Every test that takes `session` runs twice, once per backend, inside a transaction that
is rolled back afterwards. PostgreSQL comes from PATRON_TEST_DATABASE_URL (default: the
local server on 127.0.0.1:5432); each run creates and drops its own database. When it
cannot be reached the PostgreSQL half is skipped locally but fails under CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from patron import migrate
from patron.db import make_engine

PG_URL = os.environ.get("PATRON_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgresql"]


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


class DatabaseFactory:
    """Creates empty, migrated databases of one backend and removes them afterwards."""

    def __init__(self, backend: str, tmp_path_factory: pytest.TempPathFactory):
        self.backend = backend
        self.tmp = tmp_path_factory
        self._created: list[tuple[Engine, str]] = []

    def new_url(self) -> str:
        name = f"patron_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp.mktemp('db') / (name + '.db')}"
        # No pool: an idle server connection kept per created database would use up
        # max_connections in a run with many fresh databases.
        server = make_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            _unavailable(f"PostgreSQL at {PG_URL} is not reachable: {exc.__class__.__name__}")
        self._created.append((server, name))
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    def new_engine(self) -> Engine:
        engine = make_engine(self.new_url())
        migrate.upgrade(engine)
        return engine

    def drop_all(self) -> None:
        for server, name in self._created:
            with server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            server.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_factory(request, tmp_path_factory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(request.param, tmp_path_factory)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgres_factory(tmp_path_factory) -> Iterator[DatabaseFactory]:
    """PostgreSQL alone, for tests of what only it does (row locks under real concurrency,
    advisory locks): they run once, not once per backend."""
    factory = DatabaseFactory("postgresql", tmp_path_factory)
    yield factory
    factory.drop_all()


@pytest.fixture
def postgres_engine(postgres_factory) -> Iterator[Engine]:
    """An empty migrated PostgreSQL database of its own, for tests that must commit."""
    eng = postgres_factory.new_engine()
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def engine(database_factory) -> Iterator[Engine]:
    """One migrated database per backend, shared by the whole run."""
    eng = database_factory.new_engine()
    yield eng
    eng.dispose()


@pytest.fixture
def fresh_engine(database_factory) -> Iterator[Engine]:
    """An empty migrated database of its own, for tests that must commit."""
    eng = database_factory.new_engine()
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test; commits become savepoints."""
    with engine.connect() as conn:
        outer = conn.begin()
        sess = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield sess
        finally:
            sess.close()
            outer.rollback()


# --- API clients ------------------------------------------------------------------------

from fastapi.testclient import TestClient  # noqa: E402

from patron.api.app import create_app  # noqa: E402
from patron.db import get_session  # noqa: E402
from tests.factories import create_token_for  # noqa: E402


@pytest.fixture
def app(engine, session):
    """The application with every request running inside the test's rolled-back session.

    Like the real dependency, a request commits (here: releases its savepoint) on success
    and rolls back (to its savepoint) on error, so 'nothing half-written' is testable.
    """
    application = create_app(engine)

    def _session_override():
        # What the test set up before the request is, for the request, committed data:
        # release it from the savepoint so a failing request cannot roll it back.
        session.commit()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    application.dependency_overrides[get_session] = _session_override
    return application


@pytest.fixture
def api(app, session):
    """api(role) -> a TestClient sending a bearer token of a fresh user with that role."""

    def make(role: str = "admin") -> TestClient:
        token = create_token_for(session, role)
        return TestClient(app, headers={"Authorization": f"Bearer {token}"})

    return make


@pytest.fixture
def admin(api) -> TestClient:
    return api("admin")
