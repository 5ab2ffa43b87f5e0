"""Earning is automatic however an order arrives (single-order API, batch API, webhook,
import), never twice for the same order; returns, refunds and cancellations claw back;
customer merges carry the membership or the points, and unmerges put them back."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from patron.db import session_scope
from patron.identity import service as identity
from patron.imports import service as imports
from patron.imports.mapping import Mapping
from patron.ingest import service as ingest
from patron.loyalty import service
from patron.loyalty.config import RewardConfig
from patron.models import LoyaltyMergeMove
from patron.models.enums import ImportKind, MemberStatus
from patron.orders import service as orders
from patron.orders.schemas import OrderReturnCreate, OrderUpdate
from tests.factories import create_customer, create_order, create_product

NOW = datetime.now(UTC).replace(microsecond=0)
ENROLLED = NOW - timedelta(days=30)
PLACED = NOW - timedelta(days=10)
SECRET = "whsec-loyalty-0123456789"


def enrolled(session, **fields):
    customer = create_customer(session, **fields)
    return customer, service.enrol(session, customer_id=customer.id, by="test", now=ENROLLED)


def balance(session, member) -> int:
    return service.summary(session, member_id=member.id).balance


def lines(session, member) -> list[tuple[str, int]]:
    """The member's statement, oldest first, as (kind, points)."""
    return [(str(ln.kind), ln.points) for ln in reversed(service.statement(session, member_id=member.id).items)]


def books_balance(session) -> None:
    assert service.check_books(session) == []


def order_body(external_id: str, **over) -> dict:
    body = {
        "external_id": external_id,
        "placed_at": PLACED.isoformat(),
        "channel": "online",
        "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "9.50"}],
    }
    return body | over


def sign(body: bytes) -> str:
    t = int(time.time())
    return f"t={t},v1={hmac.new(SECRET.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


@pytest.fixture
def shop(app) -> TestClient:
    """An unauthenticated client with order webhooks enabled."""
    app.state.settings = app.state.settings.model_copy(update={"webhook_secret": SECRET})
    return TestClient(app)


# --- every way an order arrives -------------------------------------------------------------


def test_an_order_earns_once_through_the_api_batch_and_webhook(admin, shop, session):
    customer, member = enrolled(session, external_ids={"shop": "C-1"})
    create_product(session, sku="MUG-1")

    r = admin.post("/api/v1/orders", json=order_body("W-1", customer_id=customer.id))
    assert r.status_code == 201, r.text
    assert balance(session, member) == 119  # 100 for joining, 19 for 2 x 9.50

    r = admin.post("/api/v1/orders/batch", json={"records": [order_body("W-1", customer_id=customer.id)]})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["unchanged"]

    body = json.dumps(order_body("W-1", customer={"source": "shop", "external_id": "C-1"})).encode()
    r = shop.post(
        "/api/v1/webhooks/orders",
        content=body,
        headers={"content-type": "application/json", "X-Patron-Signature": sign(body)},
    )
    assert r.status_code == 200, r.text
    assert balance(session, member) == 119
    assert lines(session, member) == [("enrol", 100), ("earn", 19)]
    books_balance(session)


def test_a_batch_order_for_a_member_earns_and_a_rejected_record_does_not(admin, session):
    customer, member = enrolled(session)
    create_product(session, sku="MUG-1")
    r = admin.post(
        "/api/v1/orders/batch",
        json={
            "records": [
                order_body(
                    "B-1", customer_id=customer.id, lines=[{"sku": "MUG-1", "quantity": 3, "unit_price": "7.30"}]
                ),
                order_body("B-2", customer_id=customer.id, total="1.00"),  # refused: the total does not add up
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["created", "rejected"]
    assert balance(session, member) == 121  # 3 x 7.30 = 21.90: 21 points
    assert lines(session, member) == [("enrol", 100), ("earn", 21)]
    books_balance(session)


def test_the_webhook_earns_for_a_new_order(shop, session):
    _, member = enrolled(session, external_ids={"shop": "C-9"})
    create_product(session, sku="MUG-1")
    body = json.dumps(order_body("H-1", customer={"source": "shop", "external_id": "C-9"})).encode()
    headers = {"content-type": "application/json", "X-Patron-Signature": sign(body)}
    assert shop.post("/api/v1/webhooks/orders", content=body, headers=headers).status_code == 201
    assert shop.post("/api/v1/webhooks/orders", content=body, headers=headers).status_code == 200
    assert lines(session, member) == [("enrol", 100), ("earn", 19)]
    books_balance(session)


def test_orders_before_enrolment_and_orders_of_non_members_earn_nothing(session):
    customer, member = enrolled(session)
    stranger = create_customer(session)
    product = create_product(session)
    create_order(session, customer, lines=[(product, 1, Decimal("80.00"))], placed_at=ENROLLED - timedelta(days=1))
    other = create_order(session, stranger, lines=[(product, 1, Decimal("80.00"))], placed_at=PLACED)
    assert balance(session, member) == 100
    assert service.sync_orders(session, order_ids=[other.id]).earned == 0
    assert service.member_for_customer(session, stranger.id) is None
    assert lines(session, member) == [("enrol", 100)]
    books_balance(session)


def test_the_batch_api_does_not_earn_for_a_non_member(admin, session):
    stranger = create_customer(session)
    create_product(session, sku="MUG-1")
    enrolled(session)  # the programme has members, just not this customer
    r = admin.post("/api/v1/orders/batch", json={"records": [order_body("N-1", customer_id=stranger.id)]})
    assert [x["status"] for x in r.json()["results"]] == ["created"]
    assert service.report(session).earned_total == 100  # the member's joining bonus, nothing for the order
    books_balance(session)


# --- returns, refunds, cancellations ----------------------------------------------------------


def test_a_partial_refund_claws_back_its_share_and_a_full_return_the_rest(admin, session):
    customer, member = enrolled(session)
    product = create_product(session)
    order = create_order(session, customer, lines=[(product, 2, Decimal("40.00"))], placed_at=PLACED)
    assert balance(session, member) == 180

    r = admin.post(f"/api/v1/orders/{order.id}/returns", json={"kind": "refund", "amount": "20.00"})
    assert r.status_code == 201, r.text
    assert balance(session, member) == 160  # a quarter of 80
    orders.record_return(session, order.id, data=OrderReturnCreate(kind="return", amount=Decimal("60.00")))
    assert balance(session, member) == 100
    assert lines(session, member) == [("enrol", 100), ("earn", 80), ("clawback", -20), ("clawback", -60)]
    assert service.sync_orders(session, order_ids=[order.id]).clawed_back == 0  # each return once
    books_balance(session)


def test_a_cancellation_claws_back_through_the_api_and_through_a_batch(admin, session):
    customer, member = enrolled(session)
    create_product(session, sku="MUG-1")
    product = create_product(session)
    first = create_order(session, customer, lines=[(product, 1, Decimal("30.00"))], placed_at=PLACED)
    r = admin.post("/api/v1/orders/batch", json={"records": [order_body("X-1", customer_id=customer.id)]})
    second_id = r.json()["results"][0]["id"]
    assert balance(session, member) == 149  # 100 + 30 + 19

    r = admin.patch(f"/api/v1/orders/{first.id}", json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    assert balance(session, member) == 119
    r = admin.post(
        "/api/v1/orders/batch", json={"records": [order_body("X-1", customer_id=customer.id, status="cancelled")]}
    )
    assert [x["status"] for x in r.json()["results"]] == ["updated"]
    assert balance(session, member) == 100
    assert lines(session, member) == [("enrol", 100), ("earn", 30), ("earn", 19), ("clawback", -30), ("clawback", -19)]
    orders.update_order(session, second_id, data=OrderUpdate(status="cancelled"))  # again: nothing more
    assert balance(session, member) == 100
    books_balance(session)


def test_a_cancelled_new_order_earns_nothing(session):
    customer, member = enrolled(session)
    product = create_product(session)
    create_order(session, customer, lines=[(product, 1, Decimal("30.00"))], placed_at=PLACED, status="cancelled")
    assert lines(session, member) == [("enrol", 100)]


def test_a_return_after_the_points_were_spent_takes_back_only_what_is_held(session):
    customer, member = enrolled(session)
    product = create_product(session)
    order = create_order(session, customer, lines=[(product, 1, Decimal("90.00"))], placed_at=PLACED)
    reward = service.save_reward(
        session, data=RewardConfig(code="V10", name="10 off", kind="voucher", points_cost=150, amount=Decimal(10))
    )
    service.redeem(session, member_id=member.id, reward_id=reward.id, key="spend")
    assert balance(session, member) == 40

    orders.record_return(session, order.id, data=OrderReturnCreate(kind="refund", amount=Decimal("90.00")))
    assert balance(session, member) == 0
    (clawback,) = [ln for ln in service.statement(session, member_id=member.id).items if ln.kind == "clawback"]
    assert (clawback.points, clawback.transaction.details) == (-40, {"due": 90, "unrecovered": 50})
    books_balance(session)


# --- imports --------------------------------------------------------------------------------

HEADER = "order_id,customer_id,placed_at,sku,product_name,quantity,unit_price\n"


def run_import(engine, tmp_path, content: str, name: str, **mapping):
    path = tmp_path / name
    path.write_text(content)
    with session_scope(engine) as s:
        run = imports.start(
            s, kind=ImportKind.orders, path=path, mapping=Mapping.model_validate(mapping) if mapping else None
        )
        run_id = run.id
    run = imports.execute(engine, run_id)
    assert run.status == "completed", run.message
    return run


def test_an_imported_order_earns_once_and_an_imported_return_claws_back(fresh_engine, tmp_path):
    with session_scope(fresh_engine) as s:
        _, member = enrolled(s, external_ids={"import": "c1"})
        member_id = member.id
        stranger_id = create_customer(s, external_ids={"import": "c2"}).id
        create_product(s, sku="MUG", price=Decimal("5.00"))
        create_product(s, sku="TEA", price=Decimal("3.50"))
    placed = f"{PLACED:%Y-%m-%d %H:%M:%S}"
    content = (
        f"{HEADER}A1,c1,{placed},MUG,Mug,2,5.00\nA1,c1,{placed},TEA,Tea,1,3.50\n"
        f"B2,c2,{placed},TEA,Tea,4,3.50\nC3,c1,{ENROLLED - timedelta(days=2):%Y-%m-%d %H:%M:%S},TEA,Tea,1,3.50\n"
    )
    run = run_import(fresh_engine, tmp_path, content, "orders.csv")
    assert (run.inserted, run.rejected) == (4, 0)

    def statement():
        with session_scope(fresh_engine) as s:
            member = service.get_member(s, member_id)
            assert service.check_books(s) == []
            assert service.member_for_customer(s, stranger_id) is None
            return balance(s, member), lines(s, member)

    # A1 is 13.50 (13 points); B2 is a non-member's and C3 was placed before enrolment.
    assert statement() == (113, [("enrol", 100), ("earn", 13)])

    again = run_import(fresh_engine, tmp_path, content, "orders.csv")
    assert (again.inserted, again.unchanged) == (0, 4)
    assert statement() == (113, [("enrol", 100), ("earn", 13)])

    returned = f"{PLACED + timedelta(days=1):%Y-%m-%d %H:%M:%S}"
    returns = f"{HEADER}R1,c1,{returned},MUG,Mug,-1,5.00\n"
    run = run_import(fresh_engine, tmp_path, returns, "returns.csv", returns_prefix="R")
    assert run.inserted == 1
    # 5.00 of 13.50 returned: floor(13 x 5 / 13.5) = 4 points back.
    assert statement() == (109, [("enrol", 100), ("earn", 13), ("clawback", -4)])
    run_import(fresh_engine, tmp_path, returns, "returns.csv", returns_prefix="R")
    assert statement() == (109, [("enrol", 100), ("earn", 13), ("clawback", -4)])


# --- merges ---------------------------------------------------------------------------------


def moved_in_loyalty(session, record):
    """What the loyalty programme stored about a merge, for its undo (None: nothing)."""
    move = session.get(LoyaltyMergeMove, record.id)
    return move.undo if move is not None else None


def test_merging_a_member_into_a_non_member_moves_the_membership_and_unmerge_moves_it_back(session):
    survivor = create_customer(session)
    dup, member = enrolled(session)
    record = identity.merge(session, survivor_id=survivor.id, merged_id=dup.id, reasons=["test"])
    assert "loyalty" not in record.moved  # the programme keeps its own undo data
    assert moved_in_loyalty(session, record) == {"moved_member": member.id, "customer_id": dup.id}
    assert service.member_for_customer(session, survivor.id).id == member.id
    assert member.customer_id == survivor.id

    product = create_product(session)
    create_order(session, survivor, lines=[(product, 1, Decimal("25.00"))], placed_at=PLACED)
    assert balance(session, member) == 125  # the survivor's orders now earn for the membership

    identity.unmerge(session, merge_id=record.id)
    assert moved_in_loyalty(session, record) is None
    assert member.customer_id == dup.id
    assert service.member_for_customer(session, survivor.id) is None
    assert balance(session, member) == 125
    books_balance(session)


def test_merging_two_members_moves_the_points_and_unmerge_returns_them(session):
    a_customer, a = enrolled(session)
    b_customer, b = enrolled(session)
    product = create_product(session)
    create_order(session, a_customer, lines=[(product, 1, Decimal("40.00"))], placed_at=PLACED)
    create_order(session, b_customer, lines=[(product, 1, Decimal("25.00"))], placed_at=PLACED)
    assert (balance(session, a), balance(session, b)) == (140, 125)

    record = identity.merge(session, survivor_id=a_customer.id, merged_id=b_customer.id, reasons=["test"])
    transfer = moved_in_loyalty(session, record)["transfer"]
    assert moved_in_loyalty(session, record) == {"merged_member": b.id, "into_member": a.id, "transfer": transfer}
    assert (balance(session, a), balance(session, b)) == (265, 0)
    assert lines(session, a)[-1] == ("transfer", 125)
    assert lines(session, b)[-1] == ("transfer", -125)
    assert service.get_member(session, b.id).status == MemberStatus.merged
    books_balance(session)

    identity.unmerge(session, merge_id=record.id)
    assert (balance(session, a), balance(session, b)) == (140, 125)
    assert lines(session, a)[-1] == ("reversal", -125)
    assert lines(session, b)[-1] == ("reversal", 125)
    member_b = service.get_member(session, b.id)
    assert (member_b.status, member_b.merged_into_id, member_b.customer_id) == (
        MemberStatus.active,
        None,
        b_customer.id,
    )
    books_balance(session)


def test_a_merge_of_non_members_records_nothing_for_loyalty(session):
    survivor, dup = create_customer(session), create_customer(session)
    record = identity.merge(session, survivor_id=survivor.id, merged_id=dup.id, reasons=["test"])
    assert "loyalty" not in record.moved and moved_in_loyalty(session, record) is None
    identity.unmerge(session, merge_id=record.id)
    books_balance(session)


def test_ingest_service_syncs_once_per_batch(session):
    customer, member = enrolled(session)
    create_product(session, sku="MUG-1")
    result = ingest.upsert_orders(
        session, records=[order_body("S-1", customer_id=customer.id), order_body("S-2", customer_id=customer.id)]
    )
    assert [r.status for r in result.results] == ["created", "created"]
    assert lines(session, member) == [("enrol", 100), ("earn", 19), ("earn", 19)]
    books_balance(session)
