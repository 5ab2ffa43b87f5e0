"""`patron customers duplicates | merge | unmerge` against a real database file."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from patron import migrate
from patron.cli import app
from patron.db import get_engine, session_scope
from patron.models import Customer, CustomerMerge
from patron.settings import get_settings
from tests.factories import create_customer, create_order

runner = CliRunner()


@pytest.fixture
def people(tmp_path, monkeypatch):
    """A migrated SQLite file with two exact duplicates, a fuzzy pair and a stranger."""
    monkeypatch.setenv("PATRON_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")  # a wide table, so names are not wrapped
    get_settings.cache_clear()
    get_engine.cache_clear()
    migrate.upgrade(get_engine())
    with session_scope() as session:
        ann = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
        dup = create_customer(session, first_name="Ann", last_name="Lee", email="ann+x@shop.example")
        create_order(session, dup)
        kath = create_customer(session, first_name="Katherine", last_name="Johnson", postal_code="SW1A 1AA", email=None)
        kath2 = create_customer(session, first_name="Katharine", last_name="Johnson", postal_code="SW1A1AA", email=None)
        create_customer(session, first_name="Zed", last_name="Zulu")
        ids = {"ann": ann.id, "dup": dup.id, "kath": kath.id, "kath2": kath2.id}
    yield ids
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def invoke(*args):
    return runner.invoke(app, ["customers", *args])


def merged_into(customer_id: int) -> int | None:
    with session_scope() as session:
        return session.get(Customer, customer_id).merged_into_id


def test_duplicates_lists_pairs(people):
    r = invoke("duplicates")
    assert r.exit_code == 0, r.output
    assert "2 candidate pair(s)" in r.output
    assert f"{people['ann']} / {people['dup']}" in r.output
    assert "same email (canonical)" in r.output and "yes" in r.output
    assert "similar name" in r.output and "same postcode" in r.output
    assert "Ann Lee (keep)" in r.output and "Zulu" not in r.output
    r = invoke("duplicates", "--min-score", "0.9", "--limit", "1")
    assert "1 candidate pair(s)" in r.output and "Katherine" not in r.output
    assert merged_into(people["ann"]) is None  # listing changes nothing


def test_auto_merge_merges_only_the_exact_pairs(people):
    r = invoke("duplicates", "--auto-merge")
    assert r.exit_code == 0, r.output
    assert f"Merged customer {people['ann']} into {people['dup']}" in r.output  # dup has the order
    assert "Auto-merge: 1 merge(s)" in r.output
    assert merged_into(people["ann"]) == people["dup"]
    assert merged_into(people["kath2"]) is None
    r = invoke("duplicates", "--auto-merge")
    assert "Auto-merge: 0 merge(s)" in r.output


def test_merge_and_unmerge(people):
    r = invoke("merge", str(people["kath"]), str(people["kath2"]))
    assert r.exit_code == 0, r.output
    assert f"Merged customer {people['kath2']} into {people['kath']}" in r.output
    assert merged_into(people["kath2"]) == people["kath"]
    with session_scope() as session:
        merge_id = session.query(CustomerMerge.id).scalar()
    r = invoke("unmerge", str(merge_id))
    assert r.exit_code == 0, r.output
    assert f"Undid merge {merge_id}" in r.output
    assert merged_into(people["kath2"]) is None


def test_errors_exit_1_with_the_reason(people):
    r = invoke("merge", str(people["ann"]), str(people["ann"]))
    assert r.exit_code == 1 and "cannot be merged into itself" in r.output
    r = invoke("merge", str(people["ann"]), "999999")
    assert r.exit_code == 1 and "customer 999999 not found" in r.output
    r = invoke("unmerge", "999999")
    assert r.exit_code == 1 and "merge 999999 not found" in r.output
    invoke("merge", str(people["ann"]), str(people["dup"]))
    r = invoke("merge", str(people["kath"]), str(people["dup"]))
    assert r.exit_code == 1 and "already merged" in r.output
