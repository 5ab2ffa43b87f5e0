"""Every API route denies by default: no token -> 401, wrong role -> 403."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from patron.api.app import API_PREFIX, api_routers
from patron.models.enums import Role
from patron.users.permissions import allows
from tests.routes import required_permission


def api_routes():
    for router in api_routers():
        for route in router.routes:
            if isinstance(route, APIRoute):
                for method in route.methods:
                    yield method, route


ROUTES = sorted(((m, API_PREFIX + r.path, r) for m, r in api_routes()), key=lambda x: (x[1], x[0]))


def signed(route: APIRoute) -> bool:
    """Webhooks authenticate by a signature of the body, not by a token and its role."""
    return any(getattr(dep.call, "authenticates_by", None) == "signature" for dep in route.dependant.dependencies)


TOKEN_ROUTES = [r for r in ROUTES if not signed(r[2])]


def test_there_are_routes_to_check():
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(("method", "path", "route"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_route_names_a_permission_and_refuses_anonymous_callers(method, path, route, app):
    url = re.sub(r"\{[^}]+\}", "1", path)
    if signed(route):
        app.state.settings = app.state.settings.model_copy(update={"webhook_secret": "a-secret"})
        r = TestClient(app).request(method, url, json={})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Patron-Signature", r.text
        return
    assert required_permission(route) is not None, f"{method} {path} has no require(...) dependency"
    r = TestClient(app).request(method, url, json={})
    assert r.status_code == 401, (method, path, r.status_code, r.text)
    assert r.headers["www-authenticate"] == "Bearer"
    assert set(r.json()) == {"error", "detail"}


@pytest.mark.parametrize(("method", "path", "route"), TOKEN_ROUTES, ids=[f"{m} {p}" for m, p, _ in TOKEN_ROUTES])
def test_roles_without_the_permission_get_403(method, path, route, api):
    permission = required_permission(route)
    url = re.sub(r"\{[^}]+\}", "1", path)
    for role in Role:
        if not allows(role, permission):
            r = api(role.value).request(method, url, json={})
            assert r.status_code == 403, (role, method, path, r.text)
            assert permission in r.json()["error"]


def test_bad_and_malformed_tokens(app):
    for header in ["Bearer ptn_nope", "Basic dXNlcjpwYXNz", "Bearer", "ptn_x"]:
        r = TestClient(app).get("/api/v1/customers", headers={"Authorization": header})
        assert r.status_code == 401, header


def test_oversized_body_is_refused(admin):
    body = b'{"first_name": "' + b"x" * 1_100_000 + b'"}'
    r = admin.post("/api/v1/customers", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert set(r.json()) == {"error", "detail"}


def test_oversized_streamed_body_is_refused(admin):
    """Without Content-Length (chunked), the limit is enforced while reading."""

    def chunks():
        yield b'{"first_name": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    r = admin.post("/api/v1/customers", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_unknown_api_path_is_json_404(admin):
    r = admin.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "Not Found"
