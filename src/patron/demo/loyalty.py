"""The demo's loyalty programme: the example rules, members and a year of history.

Everything goes through the loyalty service, as a live shop's would: the programme is
configured, customers enrol at a checkout, their orders earn with `sync_orders`, some
members redeem rewards and use the vouchers, and the daily jobs expire points and
review tiers. The history is replayed month by month (`service.replaying`) so the
statements and the monthly report show when each thing happened.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from patron.db import session_scope
from patron.errors import Conflict
from patron.loyalty.config import ConfigFile

# The programme started this many months before the demo data ends.
LAUNCH_MONTHS = 12
# Share of the customers buying since the launch who join, at their first order after it.
MEMBER_SHARE = 0.3
# A month's enrolments and earnings are posted together, but each redemption and clawback
# is a posting of its own (2-4 ms), so the demo bounds its members to keep `patron demo`
# within seconds at any size: at 10,000 customers, ~2,000 members and their ~15,000 orders
# take about 9 s on SQLite (2-core machine, busy).
MAX_MEMBERS = 3000
SYNC_CHUNK = 500  # orders per sync_orders call
REDEEM_SHARE = 0.04  # members who try to redeem something each month
USE_SHARE = 0.8  # vouchers used soon after they are issued


def demo_programme(end: datetime) -> ConfigFile:
    """examples/loyalty.yaml's rules and rewards, its promotions moved into the demo's last year."""
    day = end.date()
    return ConfigFile.model_validate(
        {
            "currency": "USD",
            "point_value": "0.01",
            "earn": {
                "points_per_unit": 1,
                "multipliers": {
                    "categories": {"Beauty": 2, "Baby": 1.5, "Baby/Strollers & Car Seats": 1, "Food & Drink": 2},
                    "products": {"FOO-42000": 3, "BOO-45000": 2},
                    "channels": {"mobile": 1.25, "in_store": 1},
                },
                "bonus_periods": [
                    {
                        "name": "Back to school",
                        "start": day - timedelta(days=110),
                        "end": day - timedelta(days=87),
                        "multiplier": 3,
                        "categories": ["Kids/School", "Kids/Books"],
                    },
                    {
                        "name": "Double points weekend",
                        "start": day - timedelta(days=10),
                        "end": day - timedelta(days=7),
                        "multiplier": 2,
                    },
                ],
                "bonuses": {"signup": 100, "birthday": 200, "review": 50, "survey": 25},
            },
            "expiry": {"policy": "rolling", "months": 18},
            "tiers": {
                "basis": "points",
                "window_months": 12,
                "levels": [
                    {"name": "Member", "threshold": 0},
                    {"name": "Silver", "threshold": 500, "earn_multiplier": 1.1, "members_only": ["early_access"]},
                    {
                        "name": "Gold",
                        "threshold": 1500,
                        "earn_multiplier": 1.25,
                        "free_shipping": True,
                        "members_only": ["early_access", "birthday_gift"],
                    },
                    {
                        "name": "VIP",
                        "threshold": 5000,
                        "earn_multiplier": 1.5,
                        "free_shipping": True,
                        "members_only": ["early_access", "birthday_gift", "vip_events", "personal_shopper"],
                    },
                ],
            },
            "card": {"prefix": "2900"},
            "rewards": [
                {"code": "VOUCHER-5", "name": "$5 off your next order", "kind": "voucher", "amount": 5,
                 "points_cost": 500},
                {"code": "VOUCHER-10", "name": "$10 off your next order", "kind": "voucher", "amount": 10,
                 "points_cost": 1000},
                {"code": "VOUCHER-25", "name": "$25 off your next order", "description": "For Gold and VIP members.",
                 "kind": "voucher", "amount": 25, "points_cost": 2500, "min_tier": "Gold", "voucher_valid_days": 60},
                {"code": "FREE-HOUSE-BLEND", "name": "A free pack of our house blend", "kind": "free_product",
                 "product_sku": "FOO-42000", "points_cost": 2000, "stock": 250},
                {"code": "FREE-SHIPPING", "name": "Free shipping on one order", "kind": "free_shipping",
                 "points_cost": 300, "voucher_valid_days": 30},
            ],
        }
    )  # fmt: skip


@dataclass
class LoyaltySummary:
    members: int = 0
    orders_synced: int = 0
    points_earned: int = 0
    vouchers: int = 0
    vouchers_used: int = 0
    points_expired: int = 0
    seconds: float = 0.0


def build_programme(engine: Engine, *, seed: int = 42, end: datetime | None = None) -> LoyaltySummary:
    """Configure the programme and replay its last LAUNCH_MONTHS months over the demo's orders."""
    from patron.loyalty import service
    from patron.orders import service as orders

    started = time.perf_counter()
    now = end or datetime.now(UTC)
    # The first day of the month LAUNCH_MONTHS ago: the replay goes by calendar months.
    launch = service.add_months(datetime(now.year, now.month, 1, tzinfo=UTC), -LAUNCH_MONTHS)
    rng = random.Random(seed)
    summary = LoyaltySummary()

    with session_scope(engine) as session:
        service.configure_from_file(session, data=demo_programme(now), by="patron demo")
        rewards = sorted(service.list_rewards(session, active_only=True), key=lambda r: r.points_cost)
        reward_ids = [(r.id, r.points_cost) for r in rewards]
        placed = _orders_since(session, orders, launch)

    # Customers who bought since the launch; a share of them joined at their first such order.
    by_customer: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for order_id, customer_id, placed_at in placed:
        by_customer[customer_id].append((placed_at, order_id))
    buyers = sorted(by_customer)
    chosen = rng.sample(buyers, min(MAX_MEMBERS, round(len(buyers) * MEMBER_SHARE)))
    months: dict[int, dict] = defaultdict(lambda: {"enrol": [], "orders": []})
    for customer_id in chosen:
        history = sorted(by_customer[customer_id])
        joined = history[0][0] - timedelta(minutes=2)  # at the till, just before paying
        months[_month_index(launch, joined)]["enrol"].append((joined, customer_id))
        for placed_at, order_id in history:
            months[_month_index(launch, placed_at)]["orders"].append(order_id)

    member_ids: list[int] = []
    for index in range(LAUNCH_MONTHS + 1):
        # Each month's earnings and redemptions are dated at its last second (now, for this month).
        at = min(service.add_months(launch, index + 1) - timedelta(seconds=1), now)
        work = months.get(index, {"enrol": [], "orders": []})
        with session_scope(engine) as session, service.replaying(at):
            joining = [service.Enrolment(c, enrolled_at=joined) for joined, c in sorted(work["enrol"])]
            member_ids += [m.id for m in service.enrol_many(session, enrolments=joining, via="demo")]
            ids = sorted(work["orders"])
            for start in range(0, len(ids), SYNC_CHUNK):
                result = service.sync_orders(session, order_ids=ids[start : start + SYNC_CHUNK], by="patron demo")
                summary.points_earned += result.earned
            summary.orders_synced += len(ids)
            _redeem_some(session, service, rng, member_ids, reward_ids, at, summary)
            summary.points_expired += service.run_jobs(session, now=at).expired.points
    with session_scope(engine) as session:
        summary.points_expired += service.run_jobs(session, now=now).expired.points
    summary.members = len(member_ids)
    summary.seconds = time.perf_counter() - started
    return summary


def _orders_since(session, orders, since: datetime) -> list[tuple[int, int, datetime]]:
    out: list[tuple[int, int, datetime]] = []
    after = 0
    while True:
        ids = orders.order_ids_placed_since(session, since=since, after_id=after, limit=5000)
        if not ids:
            return out
        out += orders.order_customers(session, order_ids=ids)
        after = ids[-1]


def _month_index(launch: datetime, moment: datetime) -> int:
    return max(0, (moment.year - launch.year) * 12 + moment.month - launch.month)


def _redeem_some(session, service, rng, member_ids, reward_ids, at: datetime, summary: LoyaltySummary) -> None:
    """A few members spend points on a reward they can afford; most use the voucher soon after."""
    if not member_ids:
        return
    for member_id in rng.sample(member_ids, max(1, round(len(member_ids) * REDEEM_SHARE))):
        # One try each, mostly at the cheaper rewards; a member who cannot afford it yet keeps saving.
        reward_id, _cost = reward_ids[min(int(rng.expovariate(1.2)), len(reward_ids) - 1)]
        try:
            voucher = service.redeem(
                session,
                member_id=member_id,
                reward_id=reward_id,
                key=f"demo:redeem:{member_id}:{at.isoformat()}",
                now=at,
            )
        except Conflict:
            continue
        summary.vouchers += 1
        if rng.random() < USE_SHARE:
            used = min(at, voucher.expires_at - timedelta(days=1))
            service.consume_voucher(session, code=voucher.code, by="till", reference="demo order", now=used)
            summary.vouchers_used += 1
