"""Web UI test helpers: a TestClient signed in through the real /login form."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient

from patron.users import service as users

PASSWORD = "correct horse battery"
_seq = itertools.count(1)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token rendered into a page's forms."""
    match = _TOKEN.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


class WebClient(TestClient):
    """A browser-like client: keeps cookies, does not follow redirects, knows its CSRF token."""

    csrf: str = ""
    user = None

    def refresh_csrf(self, path: str = "/") -> str:
        self.csrf = csrf_from(self.get(path).text)
        return self.csrf

    def submit(self, path: str, data: dict | None = None, *, token: str | None = None):
        """POST a form with the session's CSRF token (or `token` when given)."""
        return self.post(path, data={**(data or {}), "csrf_token": self.csrf if token is None else token})


@pytest.fixture
def anonymous(app) -> WebClient:
    """A signed-out client holding a pre-login CSRF token (from the login page)."""
    client = WebClient(app, follow_redirects=False)
    client.refresh_csrf("/login")
    return client


@pytest.fixture
def web(app, session):
    """web(role) -> a client signed in as a new user with that role."""

    def make(role: str = "admin") -> WebClient:
        n = next(_seq)
        user = users.create_user(
            session, email=f"staff{n}@patron.example", password=PASSWORD, role=role, name=f"Staff {role} {n}"
        )
        client = WebClient(app, follow_redirects=False)
        client.refresh_csrf("/login")
        r = client.submit("/login", {"email": user.email, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        client.user = user
        client.refresh_csrf("/customers")
        return client

    return make


@pytest.fixture
def admin_web(web) -> WebClient:
    return web("admin")
