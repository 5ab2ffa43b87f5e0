"""merge, unmerge and auto_merge: what moves, what is filled, what an undo puts back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from patron.customers import service as customers
from patron.customers.schemas import ConsentChange, CustomerUpdate
from patron.errors import Conflict, InvalidInput, NotFound
from patron.identity import service
from patron.models import ConsentEvent, Customer, CustomerMerge, Interaction, Order
from tests.factories import create_customer, create_interaction, create_order, create_user


def owners(session, model) -> dict[int, int]:
    return dict(session.execute(select(model.id, model.customer_id)).all())


def columns(session, customer_id: int) -> dict:
    customer = session.get(Customer, customer_id)
    session.refresh(customer)
    values = {c.key: getattr(customer, c.key) for c in Customer.__table__.columns if c.key != "updated_at"}
    values["external_ids"] = {x.source: x.external_id for x in customer.external_ids}
    return values


def snapshot(session, *ids: int) -> dict:
    session.flush()
    return {
        "orders": owners(session, Order),
        "interactions": owners(session, Interaction),
        "consents": owners(session, ConsentEvent),
        "customers": {i: columns(session, i) for i in ids},
    }


@pytest.fixture
def pair(session):
    """Ann (the survivor: few fields) and her duplicate with history and more fields."""
    ann = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example", city="Leeds")
    dup = create_customer(
        session,
        first_name="Ann",
        last_name="Lee",
        email="ann+shop@shop.example",
        phone="+442079460958",
        birthday=date(1990, 5, 1),
        birth_year=1990,
        address_line="1 Park Row",
        postal_code="LS1 5HD",
        country="GB",
        acquisition_cost=Decimal("12.50"),
        interests=["yoga"],
        external_ids={"shop": "S-1"},
        consents=[ConsentChange(channel="email", status="granted")],
    )
    create_order(session, ann)
    orders = [create_order(session, dup), create_order(session, dup)]
    note = create_interaction(session, dup, kind="note", body="Called about a refund")
    return ann, dup, orders, note


def test_merge_moves_history_fills_blanks_and_keeps_the_duplicate(session, pair):
    ann, dup, orders, note = pair
    user = create_user(session, "agent")
    record = service.merge(session, survivor_id=ann.id, merged_id=dup.id, user_id=user.id)

    assert {o.customer_id for o in orders} == {ann.id}
    assert session.get(Interaction, note.id).customer_id == ann.id
    assert [c.channel for c in customers.current_consents(session, ann.id)] == ["email"]
    # Blank fields filled from the duplicate; the survivor's own values kept.
    assert (ann.phone, ann.birthday, ann.birth_year, ann.interests) == (
        "+442079460958",
        date(1990, 5, 1),
        1990,
        ["yoga"],
    )
    assert ann.email == "ann@shop.example" and ann.city == "Leeds"
    assert ann.postal_code is None  # the address is filled whole or not at all, and Ann has a city
    assert ann.acquisition_cost == Decimal("12.50")
    # The duplicate stays, hidden, with its external ids, pointing at the survivor.
    assert dup.merged_into_id == ann.id
    assert customers.list_customers(session, external_source="shop", external_id="S-1").items == [ann]
    assert customers.resolve_customer_id(session, dup.id) == ann.id

    assert record.survivor_id == ann.id and record.merged_id == dup.id
    assert record.merged_by_id == user.id and record.merged_at is not None and record.undone_at is None
    assert record.reasons[0] == "same email (canonical)" and record.score > 0.9
    assert sorted(record.moved["orders"]) == sorted(o.id for o in orders)
    assert record.moved["interactions"] == [note.id]
    assert len(record.moved["consent_events"]) == 1
    assert record.moved["fields"]["phone"] == {"was": None, "now": "+442079460958"}
    assert record.moved["fields"]["acquisition_cost"] == {"was": None, "now": "12.50"}
    assert service.describe(record).startswith("moved 2 orders, 1 interaction, 1 consent event; filled ")


def test_unmerge_restores_exactly(session, pair):
    ann, dup, _, _ = pair
    before = snapshot(session, ann.id, dup.id)
    record = service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    assert snapshot(session, ann.id, dup.id) != before
    user = create_user(session, "agent")
    undone = service.unmerge(session, merge_id=record.id, user_id=user.id)
    assert snapshot(session, ann.id, dup.id) == before
    assert undone.undone_by_id == user.id and undone.undone_at is not None
    assert customers.list_customers(session, external_source="shop", external_id="S-1").items == [dup]


def test_email_moves_to_a_survivor_without_one_and_comes_back(session):
    keep = create_customer(session, first_name="Bo", last_name="Ek", email=None, phone="+442079460001")
    dup = create_customer(session, first_name="Bo", last_name="Ek", email="bo@shop.example", phone="+442079460001")
    record = service.merge(session, survivor_id=keep.id, merged_id=dup.id)
    assert (keep.email, dup.email) == ("bo@shop.example", None)
    assert customers.list_customers(session, email="bo@shop.example").items == [keep]
    service.unmerge(session, merge_id=record.id)
    assert (keep.email, dup.email) == (None, "bo@shop.example")


def test_unmerge_keeps_edits_made_after_the_merge(session, pair):
    ann, dup, _, _ = pair
    record = service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    customers.update_customer(session, ann.id, data=CustomerUpdate(phone="+442079460999"))
    service.unmerge(session, merge_id=record.id)
    assert ann.phone == "+442079460999"  # edited since: not rolled back
    assert ann.birthday is None  # untouched since: put back


def test_orders_interactions_and_consents_for_a_merged_id_land_on_the_survivor(session, pair):
    ann, dup, _, _ = pair
    service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    assert create_order(session, dup).customer_id == ann.id
    assert create_interaction(session, dup).customer_id == ann.id
    event = customers.record_consent(session, dup.id, change=ConsentChange(channel="sms", status="granted"))
    assert event.customer_id == ann.id


def test_merged_customers_leave_lists_and_counts_and_cannot_be_edited(session, pair):
    ann, dup, _, _ = pair
    count = customers.count_customers(session)
    service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    assert customers.count_customers(session) == count - 1
    assert [c.id for c in customers.list_customers(session, q="ann").items] == [ann.id]
    assert customers.list_customers(session, email="ann+shop@shop.example").items == [ann]
    with pytest.raises(Conflict, match=f"merged into customer {ann.id}"):
        customers.update_customer(session, dup.id, data=CustomerUpdate(city="York"))
    with pytest.raises(Conflict):
        customers.delete_customer(session, dup.id)


def test_chained_merges_never_chain_and_undo_in_reverse_order(session, pair):
    ann, dup, _, _ = pair
    carl = create_customer(session, first_name="Ann", last_name="Lee", email="ann.lee@work.example")
    before = snapshot(session, ann.id, dup.id, carl.id)
    first = service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    second = service.merge(session, survivor_id=carl.id, merged_id=ann.id)
    assert dup.merged_into_id == carl.id  # repointed at the live survivor
    assert second.moved["customers"] == [dup.id]
    assert {o.customer_id for o in session.scalars(select(Order))} == {carl.id}

    with pytest.raises(Conflict, match=f"merge {second.id}") as refused:
        service.unmerge(session, merge_id=first.id)
    assert refused.value.detail["blocking_merge_id"] == second.id

    service.unmerge(session, merge_id=second.id)
    assert dup.merged_into_id == ann.id
    service.unmerge(session, merge_id=first.id)
    assert snapshot(session, ann.id, dup.id, carl.id) == before


def test_undo_twice_is_refused(session, pair):
    ann, dup, _, _ = pair
    record = service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    service.unmerge(session, merge_id=record.id)
    with pytest.raises(Conflict, match="already undone"):
        service.unmerge(session, merge_id=record.id)
    with pytest.raises(NotFound):
        service.unmerge(session, merge_id=record.id + 1000)


def test_bad_merges_are_refused_with_clear_errors(session, pair):
    ann, dup, _, _ = pair
    other = create_customer(session)
    with pytest.raises(InvalidInput, match="itself"):
        service.merge(session, survivor_id=ann.id, merged_id=ann.id)
    with pytest.raises(NotFound, match="customer 999999 not found") as missing:
        service.merge(session, survivor_id=ann.id, merged_id=999999)
    assert missing.value.detail == {"field": "merged_id"}
    service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    for survivor_id, merged_id in ((other.id, dup.id), (dup.id, other.id)):
        with pytest.raises(Conflict, match=f"customer {dup.id} was already merged into customer {ann.id}"):
            service.merge(session, survivor_id=survivor_id, merged_id=merged_id)
    assert session.scalars(select(CustomerMerge)).all() and other.merged_into_id is None


def test_auto_merge_merges_only_exact_matches(session):
    ann = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
    ann2 = create_customer(session, first_name="Ann", last_name="Lee", email="ann+x@shop.example", phone="+14155552671")
    ann3 = create_customer(session, first_name="Ann", last_name="Lee", email=None, phone="+14155552671")
    kath = create_customer(session, first_name="Katherine", last_name="Johnson", postal_code="SW1A 1AA")
    kath2 = create_customer(session, first_name="Katharine", last_name="Johnson", postal_code="SW1A 1AA")
    mum = create_customer(session, first_name="Maria", last_name="Garcia", phone="+14155550000")
    son = create_customer(session, first_name="Tom", last_name="Wu", phone="+14155550000")
    john = create_customer(session, first_name="John", last_name="Smith", phone="+14155550001")
    jane = create_customer(session, first_name="Jane", last_name="Smith", phone="+14155550001")
    till = create_customer(session, first_name="Bo", last_name="Ek", phone="+14155550002", email=None)
    stub = create_customer(session, first_name="", last_name="", phone="+14155550002", email=None)
    user = create_user(session, "admin")

    merges = service.auto_merge(session, user_id=user.id)
    assert {(m.survivor_id, m.merged_id) for m in merges} == {(ann.id, ann2.id), (ann.id, ann3.id), (till.id, stub.id)}
    assert all(m.merged_by_id == user.id for m in merges)
    assert all(c.merged_into_id is None for c in (kath, kath2, mum, son, john, jane))
    assert service.auto_merge(session) == []
    left = {(p.a.id, p.b.id) for p in service.find_duplicates(session, min_score=0)}
    assert left == {(kath.id, kath2.id), (mum.id, son.id), (john.id, jane.id)}


def test_list_merges_newest_first_by_customer_and_state(session, pair):
    ann, dup, _, _ = pair
    other = create_customer(session, first_name="Ann", last_name="Lee", email="ann+2@shop.example")
    first = service.merge(session, survivor_id=ann.id, merged_id=dup.id)
    second = service.merge(session, survivor_id=ann.id, merged_id=other.id)
    service.unmerge(session, merge_id=first.id)
    assert [m.id for m in service.list_merges(session).items] == [second.id, first.id]
    assert [m.id for m in service.list_merges(session, customer_id=dup.id).items] == [first.id]
    assert [m.id for m in service.list_merges(session, active=True).items] == [second.id]
    page = service.list_merges(session, limit=1)
    assert [m.id for m in service.list_merges(session, limit=1, cursor=page.next_cursor).items] == [first.id]
    views = service.recent_merges(session)
    assert [(v.survivor_name, v.merged_name) for v in views] == [("Ann Lee", "Ann Lee")] * 2


def test_a_merged_id_leads_to_its_survivor_in_one_step_after_a_second_merge(session):
    """Customer.survivor_id is the one rule for "which customer is this id now"; merging the
    survivor again re-points the earlier duplicate, so one step is always enough."""
    from patron.segments import repository as segments_repository

    a, b, c = (create_customer(session) for _ in range(3))
    service.merge(session, survivor_id=b.id, merged_id=a.id)
    service.merge(session, survivor_id=c.id, merged_id=b.id)
    session.flush()
    in_sql = dict(
        session.execute(select(Customer.id, Customer.survivor_id).where(Customer.id.in_([a.id, b.id, c.id]))).all()
    )
    assert in_sql == {a.id: c.id, b.id: c.id, c.id: c.id}
    assert {x.id: x.survivor_id for x in (a, b, c)} == in_sql
    assert segments_repository.live_ids(session, [a.id, b.id, c.id]) == in_sql
