"""The duplicates page: pairs side by side, merge with CSRF, notice, recent merges, undo, errors."""

from __future__ import annotations

import re

from sqlalchemy import select

from patron.identity import service
from patron.models import CustomerMerge
from tests.factories import create_customer, create_order


def two_anns(session):
    ann = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example", postal_code="LS1 5HD")
    dup = create_customer(session, first_name="ANN", last_name="LEE", email="ann+x@shop.example", phone="+442079460958")
    create_order(session, dup)
    return ann, dup


def pair_html(html: str, a: int, b: int) -> str:
    match = re.search(rf'<article class="card pair" data-pair="{a}-{b}".*?</article>', html, re.S)
    assert match, f"no pair {a}-{b} on the page"
    return match.group(0)


def test_page_lists_pairs_side_by_side_with_the_suggested_survivor_checked(admin_web, session):
    ann, dup = two_anns(session)
    r = admin_web.get("/duplicates")
    assert r.status_code == 200
    pair = pair_html(r.text, ann.id, dup.id)
    for text in ("ann@shop.example", "ann+x@shop.example", "+442079460958", "LS1 5HD", "same email (canonical)"):
        assert text in pair
    assert re.search(rf'name="keep" value="{dup.id}" checked', pair)  # more orders
    assert 'name="csrf_token"' in pair and ">Merge</button>" in pair
    assert "No merges yet." in r.text


def test_merge_shows_a_notice_then_undo_brings_the_pair_back(admin_web, session):
    ann, dup = two_anns(session)
    r = admin_web.submit("/duplicates/merge", {"a": ann.id, "b": dup.id, "keep": ann.id, "back": "/duplicates"})
    assert r.status_code == 303 and r.headers["location"] == "/duplicates"
    assert dup.merged_into_id == ann.id
    page = admin_web.get("/duplicates").text
    assert f"Merged Ann Lee (#{dup.id}) into Ann Lee (#{ann.id}): moved 1 order; filled phone." in page
    assert f'data-pair="{ann.id}-{dup.id}"' not in page
    record = session.scalars(select(CustomerMerge)).one()
    assert record.merged_by_id == admin_web.user.id
    assert f'action="/duplicates/merges/{record.id}/undo"' in page
    assert "Merged Ann Lee" not in admin_web.get("/duplicates").text  # the notice shows once

    r = admin_web.submit(f"/duplicates/merges/{record.id}/undo", {"back": "/duplicates?min_score=0.4"})
    assert r.status_code == 303 and r.headers["location"] == "/duplicates?min_score=0.4"
    page = admin_web.get(r.headers["location"]).text
    assert f"Undid merge {record.id}" in page
    pair_html(page, ann.id, dup.id)
    assert "Undone" in page and dup.merged_into_id is None


def test_errors_show_on_the_page(admin_web, session):
    ann, dup = two_anns(session)
    other = create_customer(session)
    record = service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    r = admin_web.submit("/duplicates/merge", {"a": other.id, "b": dup.id, "keep": other.id})
    assert r.status_code == 409
    assert re.search(r'role="alert">customer \d+ was already merged into customer \d+<', r.text)
    assert admin_web.submit("/duplicates/merge", {"a": ann.id, "b": dup.id, "keep": other.id}).status_code == 422
    assert admin_web.submit("/duplicates/merge", {"a": "x", "b": dup.id, "keep": dup.id}).status_code == 422
    assert admin_web.submit(f"/duplicates/merges/{record.id}/undo").status_code == 303
    r = admin_web.submit(f"/duplicates/merges/{record.id}/undo")
    assert r.status_code == 409 and "already undone" in r.text
    assert admin_web.get("/duplicates?min_score=abc").status_code == 422


def test_merging_needs_the_permission_and_a_csrf_token(web, session):
    ann, dup = two_anns(session)
    viewer = web("viewer")
    page = viewer.get("/duplicates")
    assert page.status_code == 200 and f'data-pair="{ann.id}-{dup.id}"' in page.text
    assert ">Merge</button>" not in page.text and 'name="keep"' not in page.text
    assert viewer.submit("/duplicates/merge", {"a": ann.id, "b": dup.id, "keep": ann.id}).status_code == 403
    agent = web("agent")
    r = agent.submit("/duplicates/merge", {"a": ann.id, "b": dup.id, "keep": ann.id}, token="forged")
    assert r.status_code == 403
    assert dup.merged_into_id is None


def test_a_merged_customers_pages_lead_to_the_survivor(admin_web, session):
    ann, dup = two_anns(session)
    service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    r = admin_web.get(f"/customers/{dup.id}")
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{ann.id}"
    r = admin_web.get(f"/customers/{dup.id}/edit")
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{ann.id}/edit"
    page = admin_web.get(f"/customers/{ann.id}").text
    assert 'id="merged-records"' in page and f"#{dup.id}" in page
    r = admin_web.submit(f"/customers/{dup.id}/notes", {"body": "Asked about returns"})
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{ann.id}#timeline"
    assert "Asked about returns" in admin_web.get(f"/customers/{ann.id}").text
    listed = admin_web.get("/customers?q=ann").text
    assert f'href="/customers/{ann.id}"' in listed and f'href="/customers/{dup.id}"' not in listed
