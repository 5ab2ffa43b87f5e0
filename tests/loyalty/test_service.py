"""The programme's rules at work: points per order, expiry, tiers, birthdays, rule validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from patron.errors import Conflict, InvalidInput, ValidationFailed
from patron.loyalty import cards, service
from patron.loyalty.config import ProgrammeConfig, RewardConfig
from patron.models.enums import MemberStatus
from patron.orders.schemas import PointsLine, PointsOrder
from patron.validation import error_list
from tests.factories import create_customer, create_order, create_product

NOW = datetime.now(UTC).replace(microsecond=0)


def _config(**changes) -> ProgrammeConfig:
    base = {
        "earn": {"points_per_unit": "1", "bonuses": {"signup": 0, "birthday": 25}},
        "expiry": {"policy": "rolling", "months": 12},
        "tiers": {
            "basis": "points",
            "window_months": 12,
            "levels": [
                {"name": "Member", "threshold": 0},
                {"name": "Silver", "threshold": 100, "earn_multiplier": "2"},
                {"name": "Gold", "threshold": 1000, "earn_multiplier": "3"},
            ],
        },
    }
    base.update(changes)
    return ProgrammeConfig.model_validate(base)


def _order(lines, *, channel="online", placed_at=None, discount="0", subtotal=None) -> PointsOrder:
    points_lines = [
        PointsLine(quantity=q, unit_price=Decimal(p), discount=Decimal(d), sku=sku, category_path=cat)
        for q, p, d, sku, cat in lines
    ]
    sub = (
        Decimal(subtotal)
        if subtotal is not None
        else sum((ln.quantity * ln.unit_price for ln in points_lines), Decimal(0))
    )
    return PointsOrder(
        id=1,
        customer_id=1,
        placed_at=placed_at or NOW,
        channel=channel,
        status="placed",
        subtotal=sub,
        discount=Decimal(discount),
        total=sub - Decimal(discount),
        lines=points_lines,
    )


def _balance(session, member) -> int:
    return service.summary(session, member_id=member.id).balance


def _member(session, config: ProgrammeConfig | None = None, **customer):
    service.configure(session, config=config or _config(), by="test")
    c = create_customer(session, **customer)
    return c, service.enrol(session, customer_id=c.id, by="test", now=NOW - timedelta(days=400))


# --- points for an order --------------------------------------------------------------------


def test_points_follow_the_most_specific_multiplier_bonus_period_channel_and_tier():
    config = _config(
        earn={
            "points_per_unit": "2",
            "multipliers": {
                "categories": {"Baby": "2", "Baby/Toys": "3"},
                "products": {"SKU-X": "5"},
                "channels": {"in_store": "1.5"},
            },
            "bonus_periods": [
                {
                    "name": "Toy week",
                    "start": "2026-12-01",
                    "end": "2026-12-07",
                    "multiplier": "2",
                    "categories": ["Baby/Toys"],
                }
            ],
        }
    )
    order = _order(
        [
            (1, "10.00", "0", "SKU-A", "Baby/Toys/Blocks"),  # Baby/Toys (3) beats Baby (2); toy week doubles: 60
            (2, "5.00", "0", "SKU-B", "Baby/Food"),  # Baby (2): 20
            (1, "4.00", "0", "SKU-X", "Garden"),  # product multiplier 5: 20
            (1, "7.00", "0", "SKU-C", "Babyish"),  # not in "Baby": 7
        ],
        channel="in_store",
        placed_at=datetime(2026, 12, 3, 10, tzinfo=UTC),
    )
    points, how = service.points_for_order(config, order, Decimal("1.25"))
    # (60 + 20 + 20 + 7) x 2 points per unit x 1.5 store x 1.25 tier = 401.25 -> 401
    assert points == 401
    assert how["bonus_periods"] == ["Toy week"]
    outside = order.model_copy(update={"placed_at": datetime(2026, 12, 8, tzinfo=UTC)})
    # Without the toy week: (30 + 20 + 20 + 7) x 2 x 1.5 x 1.25 = 288.75 -> 288
    assert service.points_for_order(config, outside, Decimal("1.25"))[0] == 288


def test_points_spread_the_order_discount_and_round_down():
    config = _config()
    order = _order([(1, "30.00", "0", "A", ""), (1, "10.00", "5.00", "B", "")], discount="7.00")
    # lines net 30 + 5 = 35; order discount 7 -> 28 of 35 count; 28 x 1 = 28
    assert service.points_for_order(config, order, Decimal(1))[0] == 28
    assert service.points_for_order(config, _order([(1, "0.99", "0", "A", "")]), Decimal(1))[0] == 0


def test_an_order_without_lines_earns_on_its_subtotal_less_discount():
    order = _order([], subtotal="80.00", discount="10.00")
    assert service.points_for_order(_config(), order, Decimal(1))[0] == 70


# --- earning through orders, tiers -----------------------------------------------------------


def test_earning_upgrades_at_once_and_the_tier_multiplier_applies_to_later_orders(session):
    c, member = _member(session)
    product = create_product(session, price=Decimal("60.00"))
    # Creating an order earns its points in the same transaction (orders.service calls sync_orders).
    first = create_order(session, c, lines=[(product, 2, Decimal("60.00"))], placed_at=NOW - timedelta(days=3))
    assert _balance(session, member) == 120
    assert member.tier == "Silver"  # 120 qualifying points >= 100
    assert service.sync_orders(session, order_ids=[first.id]).earned == 0  # never twice
    create_order(session, c, lines=[(product, 1, Decimal("60.00"))], placed_at=NOW - timedelta(days=1))
    assert _balance(session, member) == 240  # 60 x Silver's 2
    summary = service.summary(session, member_id=member.id, now=NOW)
    assert (summary.balance, summary.qualifying_value, summary.next_tier.name, summary.to_next_tier) == (
        240,
        Decimal(240),
        "Gold",
        Decimal(760),
    )


def test_bonuses_do_not_qualify_for_tiers(session):
    _, member = _member(session)
    service.award_bonus(session, member_id=member.id, reason="goodwill", points=500, key="g1")
    assert service.summary(session, member_id=member.id, now=NOW).qualifying_value == 0
    assert member.tier == "Member"


def test_the_review_keeps_a_tier_still_earned_and_downgrades_one_that_is_not(session):
    c, member = _member(session)
    product = create_product(session, price=Decimal("150.00"))
    create_order(session, c, lines=[(product, 1, Decimal("150.00"))], placed_at=NOW - timedelta(days=2))
    assert member.tier == "Silver"
    review_at = member.tier_review_at
    # To keep a tier, a member earns its threshold again in the window before the review:
    # 60 x 2 = 120 points since the upgrade keep Silver.
    create_order(session, c, lines=[(product, 1, Decimal("60.00"))], placed_at=NOW - timedelta(days=1))
    result = service.review_tiers(session, now=review_at)
    assert (result.reviewed, result.kept, result.downgraded) == (1, 1, 0)
    assert member.tier == "Silver" and member.tier_review_at > review_at
    # A window later nothing was earned in it: down to Member.
    later = member.tier_review_at
    result = service.review_tiers(session, now=later)
    assert (result.reviewed, result.downgraded) == (1, 1)
    assert member.tier == "Member"


def test_spend_basis_qualifies_on_order_totals_less_refunds(session):
    config = _config(
        tiers={
            "basis": "spend",
            "levels": [{"name": "Member", "threshold": 0}, {"name": "Silver", "threshold": "100.00"}],
        }
    )
    c, member = _member(session, config)
    product = create_product(session, price=Decimal("99.00"))
    create_order(session, c, lines=[(product, 1, Decimal("99.00"))], placed_at=NOW - timedelta(days=1))
    assert member.tier == "Member"
    create_order(session, c, lines=[(product, 1, Decimal("2.00"))], placed_at=NOW - timedelta(hours=1))
    assert member.tier == "Silver"
    assert service.summary(session, member_id=member.id, now=NOW).qualifying_value == Decimal("101.00")


# --- expiry ----------------------------------------------------------------------------------


def test_expiry_takes_spending_from_the_soonest_expiring_points(session):
    _, member = _member(session)
    t0 = NOW - timedelta(days=300)
    service.adjust(session, member_id=member.id, points=100, reason="lot A", key="a")
    # Lots are dated by when they were earned; backdate A to t0 so it lapses first.
    session.execute(
        text("UPDATE loyalty_entries SET expires_at = :e WHERE expires_at IS NOT NULL"), {"e": t0 + timedelta(days=365)}
    )
    service.adjust(session, member_id=member.id, points=100, reason="lot B", key="b")
    service.adjust(session, member_id=member.id, points=-150, reason="spent", key="c")
    # Spending 150 used all of A and 50 of B: A's lapse takes nothing.
    assert service.expire(session, now=t0 + timedelta(days=366)).points == 0
    assert [points for _, points in service.expiring(session, member=member, until=NOW + timedelta(days=400))] == [50]
    assert service.expiring(session, member=member, until=NOW + timedelta(days=300)) == []
    # When B lapses, its 50 unspent points go.
    result = service.expire(session, now=NOW + timedelta(days=400))
    assert (result.members, result.points) == (1, 50)
    assert service.summary(session, member_id=member.id).balance == 0
    assert service.expire(session, now=NOW + timedelta(days=401)).points == 0
    assert service.check_books(session) == []


def test_fixed_date_expiry_and_no_expiry(session):
    fixed = _config(expiry={"policy": "fixed", "fixed_date": (NOW + timedelta(days=10)).date().isoformat()})
    _, member = _member(session, fixed)
    service.adjust(session, member_id=member.id, points=70, reason="credit", key="f")
    assert service.expire(session, now=NOW + timedelta(days=10)).points == 0  # the whole day still counts
    assert service.expire(session, now=NOW + timedelta(days=12)).points == 70
    service.configure(session, config=_config(expiry={"policy": "none"}), by="test")
    service.adjust(session, member_id=member.id, points=30, reason="credit", key="n")
    assert service.expire(session, now=NOW + timedelta(days=36500)).points == 0
    assert service.summary(session, member_id=member.id).balance == 30


def test_a_return_after_the_points_lapsed_takes_nothing_more(session):
    c, member = _member(session)
    product = create_product(session, price=Decimal("40.00"))
    # Points expire 12 months after the purchase: these lapsed five days ago.
    order = create_order(session, c, lines=[(product, 1, Decimal("40.00"))], placed_at=NOW - timedelta(days=370))
    assert _balance(session, member) == 40
    assert service.expire(session, now=NOW).points == 40
    from patron.orders import service as orders
    from patron.orders.schemas import OrderReturnCreate

    orders.record_return(session, order.id, data=OrderReturnCreate(kind="refund", amount=Decimal("40.00")))
    assert _balance(session, member) == 0
    assert [line.kind for line in service.statement(session, member_id=member.id).items] == ["expire", "earn"]
    assert service.check_books(session) == []


# --- bonuses, reversals, closing -------------------------------------------------------------


def test_birthday_bonus_once_a_year(session):
    _, member = _member(session, birthday=date(1990, 6, 15))
    _, leap = _member(session, birthday=date(1992, 2, 29))
    assert service.birthday_bonuses(session, today=date(2026, 6, 14)) == 0
    assert service.birthday_bonuses(session, today=date(2026, 6, 15)) == 1
    assert service.birthday_bonuses(session, today=date(2026, 6, 15)) == 0
    assert service.birthday_bonuses(session, today=date(2027, 6, 15)) == 1
    assert service.summary(session, member_id=member.id).balance == 50
    assert service.birthday_bonuses(session, today=date(2026, 2, 28)) == 1  # no 29 February in 2026
    assert service.summary(session, member_id=leap.id).balance == 25


def test_reversing_an_earning_already_spent_is_refused_and_posts_nothing(session):
    c, member = _member(session)
    product = create_product(session, price=Decimal("50.00"))
    create_order(session, c, lines=[(product, 1, Decimal("50.00"))], placed_at=NOW - timedelta(days=1))
    (earn_id,) = [line.id for line in service.statement(session, member_id=member.id).items if line.kind == "earn"]
    service.adjust(session, member_id=member.id, points=-30, reason="spent", key="s")
    with pytest.raises(Conflict, match="the balance is 20 and this needs 50"):
        service.reverse(session, transaction_id=earn_id, reason="mistake", key="r")
    assert service.summary(session, member_id=member.id).balance == 20
    reversal = service.reverse(
        session,
        transaction_id=service.adjust(session, member_id=member.id, points=40, reason="goodwill", key="g").id,
        reason="wrong member",
        key="r2",
    )
    assert reversal.kind == "reversal" and service.summary(session, member_id=member.id).balance == 20
    with pytest.raises(Conflict, match="already reversed"):
        service.reverse(session, transaction_id=reversal.reverses_id, reason="again", key="r3")
    assert service.check_books(session) == []


def test_reversing_a_redemption_cancels_the_voucher_and_restores_stock(session):
    _, member = _member(session)
    service.adjust(session, member_id=member.id, points=500, reason="credit", key="c")
    reward = service.save_reward(
        session, data=RewardConfig(code="SHIP", name="Free shipping", kind="free_shipping", points_cost=200, stock=1)
    )
    voucher = service.redeem(session, member_id=member.id, reward_id=reward.id, key="x")
    session.refresh(reward)
    assert reward.stock == 0
    with pytest.raises(Conflict, match="out of stock"):
        service.redeem(session, member_id=member.id, reward_id=reward.id, key="y")
    service.reverse(session, transaction_id=voucher.transaction_id, reason="changed mind", key="z")
    session.refresh(voucher)
    session.refresh(reward)
    assert (voucher.status, reward.stock) == ("cancelled", 1)
    assert service.summary(session, member_id=member.id).balance == 500
    with pytest.raises(Conflict, match="cancelled"):
        service.consume_voucher(session, code=voucher.code, by="till")


def test_expired_vouchers_and_members_only_rewards_are_refused(session):
    _, member = _member(session)
    service.adjust(session, member_id=member.id, points=500, reason="credit", key="c")
    gold = service.save_reward(
        session,
        data=RewardConfig(code="GOLD", name="Lounge", kind="free_shipping", points_cost=10, min_tier="Gold"),
    )
    with pytest.raises(Conflict, match="for Gold members and above"):
        service.redeem(session, member_id=member.id, reward_id=gold.id, key="g")
    reward = service.save_reward(
        session,
        data=RewardConfig(
            code="V", name="5 off", kind="voucher", points_cost=10, amount=Decimal(5), voucher_valid_days=1
        ),
    )
    voucher = service.redeem(session, member_id=member.id, reward_id=reward.id, key="v")
    with pytest.raises(Conflict, match="expired on"):
        service.consume_voucher(session, code=voucher.code, by="till", now=NOW + timedelta(days=3))
    used = service.consume_voucher(session, code=voucher.code.lower().replace("-", ""), by="till", reference="R-1")
    assert (used.status, used.consumed_reference) == ("consumed", "R-1")


def test_close_forfeits_the_balance_and_keeps_the_statement(session):
    _, member = _member(session)
    service.adjust(session, member_id=member.id, points=80, reason="credit", key="c")
    service.close_member(session, member_id=member.id, by="agent")
    assert member.status == MemberStatus.closed
    lines = service.statement(session, member_id=member.id).items
    assert [(ln.kind, ln.points, ln.balance) for ln in lines] == [("expire", -80, 0), ("adjust", 80, 80)]
    with pytest.raises(Conflict, match="closed"):
        service.adjust(session, member_id=member.id, points=5, reason="x", key="d")


def test_bad_movements_are_refused(session):
    _, member = _member(session)
    with pytest.raises(InvalidInput, match="must move points"):
        service.adjust(session, member_id=member.id, points=0, reason="x", key="a")
    with pytest.raises(InvalidInput, match="positive"):
        service.award_bonus(session, member_id=member.id, reason="goodwill", points=-5, key="b")
    with pytest.raises(InvalidInput, match="unknown bonus reason"):
        service.award_bonus(session, member_id=member.id, reason="lottery", key="c")
    with pytest.raises(Conflict, match="balance is 0 and this needs 10"):
        service.adjust(session, member_id=member.id, points=-10, reason="x", key="d")
    service.adjust(session, member_id=member.id, points=10, reason="x", key="e")
    with pytest.raises(ValidationFailed):
        service.adjust(session, member_id=member.id, points=11, reason="x", key="e")  # same key, other request
    assert service.summary(session, member_id=member.id).balance == 10
    assert service.check_books(session) == []


# --- rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"tiers": {"levels": [{"name": "A", "threshold": 5}]}}, "tiers.levels.0.threshold", "must start at 0"),
        (
            {"tiers": {"levels": [{"name": "A", "threshold": 0}, {"name": "B", "threshold": 0}]}},
            "tiers.levels.1.threshold",
            "overlaps",
        ),
        (
            {"tiers": {"levels": [{"name": "A", "threshold": 0}, {"name": "a", "threshold": 9}]}},
            "tiers.levels.1.name",
            "named twice",
        ),
        ({"expiry": {"policy": "fixed"}}, "expiry.fixed_date", "required"),
        ({"earn": {"multipliers": {"channels": {"online": 0}}}}, "earn.multipliers.channels.online", "greater than 0"),
        (
            {"earn": {"bonus_periods": [{"name": "x", "start": "2026-02-01", "end": "2026-01-01", "multiplier": 2}]}},
            "earn.bonus_periods.0.end",
            "before start",
        ),
        ({"point_value": "-1"}, "point_value", "greater than 0"),
    ],
)
def test_rules_that_cannot_work_are_refused_with_the_field(change, field, words):
    with pytest.raises(ValidationError) as caught:
        ProgrammeConfig.model_validate(change)
    errors = error_list(caught.value)
    assert any(e["field"] == field and words in e["message"] for e in errors), errors


def test_card_numbers_carry_a_check_digit():
    number = cards.new_card_number("2900")
    assert len(number) == 16 and number.startswith("2900") and cards.is_card_number(number)
    assert not cards.is_card_number(number[:-1] + str((int(number[-1]) + 1) % 10))
    # The Luhn digit of 290012345678901 is 2; one wrong digit or two swapped neighbours are caught.
    assert cards.is_card_number("2900123456789012")
    assert not cards.is_card_number("2900123456789013")
    assert not cards.is_card_number("2900213456789012")
    assert not cards.is_card_number("290012345678901")


def test_reversing_an_earning_takes_back_only_what_returns_left(session):
    from patron.orders import service as orders
    from patron.orders.schemas import OrderReturnCreate

    c, member = _member(session)
    product = create_product(session, price=Decimal("80.00"))
    order = create_order(session, c, lines=[(product, 1, Decimal("80.00"))], placed_at=NOW - timedelta(days=1))
    orders.record_return(session, order.id, data=OrderReturnCreate(kind="refund", amount=Decimal("20.00")))
    assert _balance(session, member) == 60  # 80 earned, 20 taken back
    (earn_id,) = [line.id for line in service.statement(session, member_id=member.id).items if line.kind == "earn"]
    reversal = service.reverse(session, transaction_id=earn_id, reason="order was a test", key="r")
    assert (reversal.points, _balance(session, member)) == (60, 0)
    assert service.summary(session, member_id=member.id, now=NOW).qualifying_value == 0
    # The rest of the order returned later takes nothing more: the reversal took it all.
    orders.record_return(session, order.id, data=OrderReturnCreate(kind="refund", amount=Decimal("60.00")))
    assert _balance(session, member) == 0
    assert service.check_books(session) == []
