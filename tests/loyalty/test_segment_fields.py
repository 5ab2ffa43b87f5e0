"""Segment rules on loyalty membership: tier, points balance and enrolment date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from patron.loyalty import service
from patron.segments.rules import RuleContext, members
from tests.factories import create_customer

CTX = RuleContext(today=date.today())


def _ids(session, rule) -> set[int]:
    return set(session.scalars(members(rule, CTX)))


def test_rules_select_members_by_tier_points_and_enrolment(session):
    gold, silver, closed, outsider = (create_customer(session) for _ in range(4))
    now = datetime.now(UTC)
    g = service.enrol(session, customer_id=gold.id, now=now - timedelta(days=200))
    s = service.enrol(session, customer_id=silver.id, now=now - timedelta(days=10))
    c = service.enrol(session, customer_id=closed.id)
    service.adjust(session, member_id=g.id, points=900, reason="test", key="g")
    g.tier, s.tier = "Gold", "Silver"
    service.close_member(session, member_id=c.id, by="test")
    mine = {gold.id, silver.id, closed.id, outsider.id}

    assert _ids(session, {"field": "loyalty_tier", "op": "eq", "value": "Gold"}) & mine == {gold.id}
    assert _ids(session, {"field": "loyalty_tier", "op": "in", "value": ["Gold", "Silver"]}) & mine == {
        gold.id,
        silver.id,
    }
    # The sign-up bonus (100 in the installed rules) plus 900.
    assert _ids(session, {"field": "loyalty_points", "op": "gte", "value": 1000}) & mine == {gold.id}
    assert _ids(session, {"field": "loyalty_points", "op": "lt", "value": 1000}) & mine == {silver.id}
    # Not a member (never, or no longer): no tier.
    assert _ids(session, {"field": "loyalty_tier", "op": "is_empty"}) & mine == {closed.id, outsider.id}
    assert _ids(session, {"field": "loyalty_enrolled_at", "op": "in_last_days", "value": 30}) & mine == {silver.id}
