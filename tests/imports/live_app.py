"""A real application on a database of the test's own, for import tests that run imports.

An import is executed by a background thread on its own connections, so it must see the
run committed; the usual rolled-back test session cannot give it that.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from patron.api.app import create_app
from patron.db import session_scope
from patron.imports import runner
from patron.settings import Settings
from patron.users import service as users
from tests.web.conftest import PASSWORD, WebClient

_seq = itertools.count(1)

# Two orders (three rows) that import, one with an unreadable date and one with a bad quantity.
# Email and Price are not named like fields, so the automatic mapping leaves them out.
ORDERS_CSV = (
    "order_id,customer_id,Email,placed_at,sku,product_name,quantity,Price\n"
    "W-1,c-1,ann@shop.example,2026-01-05 10:00:00,MUG,Mug,2,8.50\n"
    "W-1,c-1,ann@shop.example,2026-01-05 10:00:00,TEA,Tea,1,4.00\n"
    "W-2,c-2,bob@shop.example,2026-01-06 11:30:00,MUG,Mug,1,8.50\n"
    "W-3,c-3,cy@shop.example,last tuesday,MUG,Mug,1,8.50\n"
    "W-4,c-1,ann@shop.example,2026-01-07 09:00:00,TEA,Tea,lots,4.00\n"
)


@dataclass
class LiveApp:
    app: object
    engine: Engine
    settings: Settings

    @property
    def import_dir(self) -> Path:
        return Path(self.settings.import_dir)

    def user(self, role: str = "admin"):
        n = next(_seq)
        with session_scope(self.engine) as session:
            return users.create_user(
                session, email=f"importer{n}@patron.example", password=PASSWORD, role=role, name=f"Importer {n}"
            )

    def web(self, role: str = "admin") -> WebClient:
        """A client signed in through /login as a new user with `role`."""
        user = self.user(role)
        client = WebClient(self.app, follow_redirects=False)
        client.refresh_csrf("/login")
        r = client.submit("/login", {"email": user.email, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        client.user = user
        client.refresh_csrf("/customers")
        return client

    def api(self, role: str = "admin") -> TestClient:
        user = self.user(role)
        with session_scope(self.engine) as session:
            _, secret = users.create_token(session, email=user.email, role=role)
        return TestClient(self.app, headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture(name="live")
def live_fixture(fresh_engine, tmp_path) -> LiveApp:
    """The app on an empty database of the test's own, with a small upload limit (50 KB)."""
    settings = Settings(secret_key="imports-tests", import_dir=tmp_path / "imports", max_upload_bytes=50_000)
    return LiveApp(create_app(fresh_engine, settings), fresh_engine, settings)


def upload(
    client: WebClient, content: bytes | str, *, name: str = "orders.csv", kind: str = "orders", preset: str = ""
):
    """POST the upload form the way a browser does (token and choices before the file)."""
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        "/imports/new",
        data={"csrf_token": client.csrf, "kind": kind, "preset": preset},
        files={"file": (name, data, "text/csv")},
    )


def wait_for(run_id: int) -> None:
    """Wait for the background thread executing the run (in this process) to finish."""
    thread = runner.thread_for(run_id)
    assert thread is not None, f"import {run_id} was not started"
    thread.join(timeout=120)
    assert not thread.is_alive(), f"import {run_id} still running"
