"""The operator CLI against a real database file: init, db upgrade, users, tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from patron import migrate
from patron.api.app import create_app
from patron.cli import app
from patron.db import get_engine
from patron.settings import get_settings

runner = CliRunner()


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def invoke(*args, input=None, env=None):
    return runner.invoke(app, list(args), input=input, env=env)


def test_init_creates_schema_and_first_admin_then_is_idempotent(db_url):
    r = invoke("init", "--admin-email", "Boss@Shop.example", "--admin-password", "long-enough-pw")
    assert r.exit_code == 0, r.output
    assert "boss@shop.example" in r.output.lower()
    assert migrate.current_revision(get_engine()) == migrate.head_revision()
    r = invoke("init")
    assert r.exit_code == 0 and "no admin created" in r.output


def test_init_prompts_for_the_admin_when_not_given(db_url):
    r = invoke("init", input="ops@shop.example\nlong-enough-pw\nlong-enough-pw\n")
    assert r.exit_code == 0, r.output
    assert "Admin ops@shop.example created" in r.output


def test_init_reads_admin_from_environment(db_url):
    r = invoke("init", env={"PATRON_ADMIN_EMAIL": "env@shop.example", "PATRON_ADMIN_PASSWORD": "long-enough-pw"})
    assert r.exit_code == 0 and "env@shop.example" in r.output


def test_bad_admin_is_reported_and_nothing_created(db_url):
    r = invoke("init", "--admin-email", "nope", "--admin-password", "short")
    assert r.exit_code == 1 and "email" in r.output and "password" in r.output
    r = invoke("init", "--admin-email", "ok@shop.example", "--admin-password", "long-enough-pw")
    assert r.exit_code == 0 and "created" in r.output


def test_users_and_tokens(db_url):
    invoke("db", "upgrade")
    r = invoke("users", "create", "--email", "till@shop.example", "--role", "marketer", "--password", "long-enough-pw")
    assert r.exit_code == 0, r.output
    r = invoke("users", "create", "--email", "till@shop.example", "--role", "marketer", "--password", "long-enough-pw")
    assert r.exit_code == 1 and "already exists" in r.output
    r = invoke("tokens", "create", "--email", "till@shop.example", "--role", "admin")
    assert r.exit_code == 1 and "more rights" in r.output
    r = invoke("tokens", "create", "--email", "till@shop.example", "--role", "wizard")
    assert r.exit_code == 1 and "--role must be one of" in r.output
    r = invoke("tokens", "create", "--email", "till@shop.example", "--role", "marketer", "--name", "Till 3")
    assert r.exit_code == 0
    token = r.output.strip()
    client = TestClient(create_app(get_engine()))
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}x"}).status_code == 401


def test_db_upgrade_twice_is_harmless(db_url):
    assert invoke("db", "upgrade").exit_code == 0
    r = invoke("db", "upgrade")
    assert r.exit_code == 0 and migrate.head_revision() in r.output


def test_serve_refuses_a_database_without_schema(db_url):
    r = invoke("serve", "--port", "0")
    assert r.exit_code == 1 and "has no schema" in r.output and "patron init" in r.output


def test_tokens_can_be_listed_and_revoked(db_url):
    invoke("db", "upgrade")
    invoke("users", "create", "--email", "pos@shop.example", "--role", "marketer", "--password", "long-enough-pw")
    token = invoke(
        "tokens", "create", "--email", "pos@shop.example", "--role", "viewer", "--name", "Till 9"
    ).output.strip()
    client = TestClient(create_app(get_engine()))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/customers", headers=headers).status_code == 200

    listing = invoke("tokens", "list", "--email", "pos@shop.example")
    assert listing.exit_code == 0 and token[:10] in listing.output and "Till 9" in listing.output
    assert token not in listing.output  # the secret is never shown again

    assert invoke("tokens", "revoke", "ptn_nope").exit_code == 1
    r = invoke("tokens", "revoke", token[:10])
    assert r.exit_code == 0 and "revoked" in r.output
    assert client.get("/api/v1/customers", headers=headers).status_code == 401
