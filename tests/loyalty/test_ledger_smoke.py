from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from patron.errors import Conflict
from patron.loyalty import service
from patron.loyalty.config import RewardConfig
from patron.orders import service as orders
from patron.orders.schemas import OrderReturnCreate
from tests.factories import create_customer, create_order, create_product


def test_enrol_earn_redeem_return(session):
    c = create_customer(session)
    member = service.enrol(session, customer_id=c.id, by="t")
    assert service.summary(session, member_id=member.id).balance == 100
    p = create_product(session, price=Decimal("50.00"))
    o = create_order(session, c, lines=[(p, 2, Decimal("50.00"))], placed_at=datetime.now(UTC))
    assert service.summary(session, member_id=member.id).balance == 200  # earned on creating the order
    assert service.sync_orders(session, order_ids=[o.id]).earned == 0
    reward = service.save_reward(
        session, data=RewardConfig(code="V5", name="5 off", kind="voucher", points_cost=150, amount=Decimal(5))
    )
    v = service.redeem(session, member_id=member.id, reward_id=reward.id, key="k1")
    assert service.summary(session, member_id=member.id).balance == 50
    v2 = service.redeem(session, member_id=member.id, reward_id=reward.id, key="k1")
    assert v2.id == v.id
    with pytest.raises(Conflict, match="balance is 50"):
        service.redeem(session, member_id=member.id, reward_id=reward.id, key="k2")
    orders.record_return(session, o.id, data=OrderReturnCreate(kind="refund", amount=o.total))
    (clawback,) = [ln for ln in service.statement(session, member_id=member.id).items if ln.kind == "clawback"]
    assert clawback.points == -50 and clawback.transaction.details == {"due": 100, "unrecovered": 50}
    assert service.check_books(session) == []
    page = service.statement(session, member_id=member.id)
    assert [(line.kind, line.points, line.balance) for line in page.items] == [
        ("clawback", -50, 0),
        ("redeem", -150, 50),
        ("earn", 100, 200),
        ("enrol", 100, 100),
    ]
    service.consume_voucher(session, code=v.code, by="till")
    with pytest.raises(Conflict, match="already used"):
        service.consume_voucher(session, code=v.code, by="till")
    rep = service.report(session)
    assert rep.outstanding_points == 0
    assert service.expire(session, now=datetime.now(UTC) + timedelta(days=800)).points == 0
