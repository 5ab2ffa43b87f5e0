"""POST /customers/batch: per-record results, upserts by external id or email, merges followed."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from patron.models import ConsentEvent, Customer
from tests.factories import create_customer

URL = "/api/v1/customers/batch"


def send(client, records, **kw):
    r = client.post(URL, json={"records": records}, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def statuses(body) -> list[str]:
    return [r["status"] for r in body["results"]]


def customer_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Customer))


def test_each_record_gets_its_own_result_and_bad_ones_spoil_nothing(admin, session):
    before = customer_count(session)
    body = send(
        admin,
        [
            {"email": "ann@shop.example", "first_name": "Ann"},
            {"email": "not-an-email", "first_name": "Bob"},
            {"first_name": "Nobody", "phone": "+14155550100"},
            5,
            {"external_ids": {"shop": "C-2"}, "last_name": "Okafor", "household_size": 2, "children": 3},
            {"external_ids": {"shop": "C-3"}, "city": "Leeds"},
        ],
    )
    assert statuses(body) == ["created", "rejected", "rejected", "rejected", "rejected", "created"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4, 5]
    assert body["summary"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 4}
    errors = [{e["field"] for e in r["errors"]} for r in body["results"]]
    assert errors == [set(), {"email"}, {"record"}, {"record"}, {"children"}, set()]
    assert "email or an external id" in body["results"][2]["errors"][0]["message"]
    assert body["results"][1]["id"] is None
    assert customer_count(session) == before + 2
    assert session.get(Customer, body["results"][5]["id"]).city == "Leeds"


def test_resending_changes_nothing_and_an_update_changes_only_what_differs(admin, session):
    records = [
        {"external_ids": {"shop": "S-1"}, "email": "kim@shop.example", "phone": "+44 20 7946 0018", "city": "York"},
        {"external_ids": {"shop": "S-2"}, "first_name": "Lee", "interests": ["Tea", "books"]},
    ]
    first = send(admin, records)
    assert statuses(first) == ["created", "created"]
    again = send(admin, records)
    assert statuses(again) == ["unchanged", "unchanged"]
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]

    body = send(admin, [{"external_ids": {"shop": "S-1"}, "city": "Leeds"}, records[1]])
    assert statuses(body) == ["updated", "unchanged"]
    assert body["summary"] == {"created": 0, "updated": 1, "unchanged": 1, "rejected": 0}
    kim = session.get(Customer, first["results"][0]["id"])
    session.refresh(kim)
    assert (kim.city, kim.phone, kim.email) == ("Leeds", "+442079460018", "kim@shop.example")


def test_matches_by_email_and_adds_external_ids_without_removing_any(admin, session):
    existing = create_customer(session, email="ida@shop.example", external_ids={"pos": "P-9"})
    body = send(admin, [{"email": "IDA@shop.example", "external_ids": {"shop": "W-9"}}])
    assert statuses(body) == ["updated"] and body["results"][0]["id"] == existing.id
    session.refresh(existing)
    assert {x.source: x.external_id for x in existing.external_ids} == {"pos": "P-9", "shop": "W-9"}
    # Now the shop id alone finds her.
    assert statuses(send(admin, [{"external_ids": {"shop": "W-9"}, "email": "ida@shop.example"}])) == ["unchanged"]


def test_external_ids_are_never_replaced_nor_split_across_customers(admin, session):
    a = create_customer(session, external_ids={"shop": "A-1"})
    b = create_customer(session, external_ids={"pos": "B-1"})
    body = send(
        admin,
        [
            {"external_ids": {"shop": "A-1", "pos": "B-1"}},
            {"email": a.email, "external_ids": {"shop": "OTHER"}},
            {"external_ids": {"shop": "A-1"}, "email": b.email},
        ],
    )
    assert statuses(body) == ["rejected"] * 3
    first, second, third = (r["errors"] for r in body["results"])
    assert first[0]["field"] == "external_ids" and f"({a.id}, {b.id})" in first[0]["message"]
    assert second[0]["field"] == "external_ids.shop" and "'A-1'" in second[0]["message"]
    assert third[0]["field"] == "email" and str(b.id) in third[0]["message"]


def test_merged_customers_lead_to_the_survivor(admin, session):
    survivor = create_customer(session, email="main@shop.example", city="Bath")
    merged = create_customer(session, email="old@shop.example", external_ids={"shop": "OLD-1"})
    merged.merged_into_id = survivor.id
    session.flush()

    body = send(admin, [{"external_ids": {"shop": "OLD-1"}, "city": "Bristol"}])
    assert statuses(body) == ["updated"] and body["results"][0]["id"] == survivor.id
    assert f"customer {merged.id} was merged into {survivor.id}" in body["results"][0]["notes"]
    session.refresh(survivor)
    session.refresh(merged)
    assert survivor.city == "Bristol" and merged.city is None

    # By email too; the merged record keeps its address (the survivor cannot take it).
    body = send(admin, [{"email": "old@shop.example", "city": "Bristol"}])
    assert statuses(body) == ["unchanged"] and body["results"][0]["id"] == survivor.id
    assert any("stays with merged customer" in n for n in body["results"][0]["notes"])


def test_a_record_refused_while_writing_is_rolled_back_alone(admin, session):
    """birth_year vs the stored birthday is only known once the record meets the customer."""
    c = create_customer(session, external_ids={"shop": "BD-1"}, birthday=date(1990, 5, 1))
    body = send(
        admin,
        [
            {"external_ids": {"shop": "BD-1"}, "birth_year": 1985, "city": "Hull"},
            {"external_ids": {"shop": "BD-2"}, "email": "new@shop.example"},
        ],
    )
    assert statuses(body) == ["rejected", "created"]
    assert body["results"][0]["errors"][0]["field"] == "birth_year"
    session.refresh(c)
    assert c.city is None and c.birth_year is None


def test_duplicates_inside_one_batch_meet_the_customer_created_before_them(admin, session):
    body = send(
        admin,
        [
            {"email": "twin@shop.example", "first_name": "Tam"},
            {"email": "twin@shop.example", "first_name": "Tam"},
            {"email": "twin@shop.example", "external_ids": {"shop": "T-1"}},
            {"external_ids": {"shop": "T-1"}, "last_name": "Lin"},
        ],
    )
    assert statuses(body) == ["created", "unchanged", "updated", "updated"]
    assert len({r["id"] for r in body["results"]}) == 1


def test_consents_are_appended_only_when_they_change(admin, session):
    record = {"email": "opt@shop.example", "consents": [{"channel": "email", "status": "granted"}]}
    first = send(admin, [record])
    cid = first["results"][0]["id"]
    assert statuses(send(admin, [record])) == ["unchanged"]
    withdrawn = {"email": "opt@shop.example", "consents": [{"channel": "email", "status": "withdrawn"}]}
    assert statuses(send(admin, [withdrawn])) == ["updated"]
    events = session.scalars(select(ConsentEvent.status).where(ConsentEvent.customer_id == cid)).all()
    assert sorted(events) == ["granted", "withdrawn"]


def test_nul_in_one_record_rejects_only_that_record(admin, session):
    body = send(admin, [{"email": "a@shop.example", "city": "x\x00y"}, {"email": "b@shop.example"}])
    assert statuses(body) == ["rejected", "created"]
    assert body["results"][0]["errors"][0]["field"] == "city"


def test_needs_the_import_permission(api):
    r = api("agent").post(URL, json={"records": [{"email": "a@shop.example"}]})
    assert r.status_code == 403 and "import_data" in r.json()["error"]
    assert api("marketer").post(URL, json={"records": [{"email": "m@shop.example"}]}).status_code == 200
