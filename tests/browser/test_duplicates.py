"""The duplicates screen in a real Chromium: review a pair, merge it, undo the merge."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from patron.customers import service as customers
from patron.customers.schemas import CustomerCreate
from patron.db import session_scope

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def duplicate(live_server) -> dict[str, int]:
    """A second record of Ada Lovelace, typed in capitals with a tagged email and a phone."""
    with session_scope(live_server.engine) as session:
        again = customers.create_customer(
            session,
            data=CustomerCreate(
                first_name="ADA", last_name="LOVELACE", email="ada+shop@engine.example", phone="+442079460958"
            ),
        )
        return {"survivor": live_server.ids["lovelace"], "merged": again.id}


def test_merge_a_pair_and_undo_it(signed_in, duplicate):
    page = signed_in
    survivor, merged = duplicate["survivor"], duplicate["merged"]
    page.get_by_role("link", name="Duplicates").click()
    expect(page).to_have_url(re.compile(r"/duplicates$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Duplicates")

    pair = page.get_by_role("article", name="Ada Lovelace and Ada Lovelace")
    expect(pair).to_contain_text("same email (canonical)")
    expect(pair).to_contain_text("ada+shop@engine.example")
    expect(pair.get_by_label(f"Keep #{survivor}")).to_be_checked()  # she has the orders
    pair.get_by_role("button", name="Merge").click()

    notice = page.get_by_role("status")
    expect(notice).to_contain_text(f"Merged Ada Lovelace (#{merged}) into Ada Lovelace (#{survivor})")
    expect(notice).to_contain_text("filled phone")
    expect(page.get_by_role("article", name="Ada Lovelace and Ada Lovelace")).to_have_count(0)
    merges = page.locator("#merges tbody tr")
    expect(merges).to_have_count(1)
    expect(merges.first).to_contain_text(f"#{merged}")

    # The merged record's page is now the survivor's, with the phone it brought.
    page.goto(f"/customers/{merged}")
    expect(page).to_have_url(re.compile(rf"/customers/{survivor}$"))
    expect(page.locator(".profile-id")).to_contain_text("+442079460958")
    expect(page.locator("#merged-records")).to_contain_text(f"#{merged}")

    page.get_by_role("link", name="Duplicates").click()
    page.locator("#merges tbody tr").first.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text("is a customer of their own again")
    expect(page.get_by_role("article", name="Ada Lovelace and Ada Lovelace")).to_be_visible()
    expect(page.locator("#merges tbody tr").first).to_contain_text("Undone")
    page.goto(f"/customers/{merged}")
    expect(page).to_have_url(re.compile(rf"/customers/{merged}$"))
    assert page.js_errors == []
