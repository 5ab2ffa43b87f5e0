"""A stateful property test of the points ledger (issue 6, "Done when").

Hypothesis drives random sequences of earn (an order), redeem, return or refund, expire
(on a simulated clock), adjust and reverse over two or three members. The machine keeps
its own model of every member's entries, worked out from the programme's rules, and
after every step checks that

- each member's stored balance equals the sum of its ledger entries and is never negative,
- every transaction's entries sum to zero (service.check_books),
- the model's balance matches, and each step posted exactly the movements the model expected
  (a refused step raised Conflict and posted nothing).

Each example runs in a savepoint of the test's session, rolled back at its end.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from patron.customers import service as customers
from patron.errors import Conflict
from patron.loyalty import service
from patron.loyalty.config import RewardConfig
from patron.models import LoyaltyEntry
from patron.orders import service as orders
from patron.orders.schemas import OrderReturnCreate
from tests.factories import create_customer, create_order, create_product

REAL_NOW = datetime.now(UTC).replace(microsecond=0)
# Points expire 6 months after they are earned (the run configures that). Members join
# 170 days ago, so everything they earn expires after the real clock (the service never
# claws back points it considers lapsed by the real clock); the simulated clock of the
# expiry job runs on past the real one.
EXPIRY_MONTHS = 6
START = REAL_NOW - timedelta(days=170)
LAST_ORDER = REAL_NOW - timedelta(minutes=1)  # orders must be placed in the past
# Adjustments expire 6 months after the real now: never within the run, whose simulated
# clock stops 170 days past the real now.
FAR = datetime(9999, 1, 1, tzinfo=UTC)
CLOCK_END = REAL_NOW + timedelta(days=170)
MULTIPLIERS = {"Member": Decimal(1), "Silver": Decimal("1.25"), "Gold": Decimal("1.5"), "VIP": Decimal(2)}
COSTS = (50, 120, 300)
REVERSIBLE = {"enrol", "earn", "bonus", "adjust", "redeem"}

Entry = tuple[int, bool, datetime | None]  # (amount on the member's account, lot, expires_at)


def add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@dataclass
class ModelOrder:
    id: int
    member: int
    total: Decimal
    points: int
    expires_at: datetime
    earn_tx: int | None = None
    refunds: list[Decimal] = field(default_factory=list)  # cumulative refunded after each return
    posted: set[int] = field(default_factory=set)  # returns whose clawback was posted
    clawed: int = 0
    reversed: bool = False


@dataclass
class ModelTx:
    id: int
    member: int
    kind: str
    entries: list[Entry]
    order: ModelOrder | None = None
    reversed: bool = False


@dataclass
class ModelMember:
    id: int
    customer_id: int
    entries: list[Entry] = field(default_factory=list)
    seen: int = 0  # newest transaction id already matched against the model

    @property
    def balance(self) -> int:
        return sum(amount for amount, _, _ in self.entries)

    def due_at(self, now: datetime) -> int:
        """What the expiry job takes at `now`: lapsed lots less everything spent so far."""
        lapsed = sum(a for a, lot, exp in self.entries if lot and exp is not None and exp <= now)
        spent = -sum(a for a, lot, _ in self.entries if not lot)
        return max(lapsed - spent, 0)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, session):
        super().__init__()
        self.session = session
        self.savepoint = session.begin_nested()
        self.members: list[ModelMember] = []
        self.orders: list[ModelOrder] = []
        self.txs: list[ModelTx] = []
        self.clock = START
        self.keys = 0
        self.product = None
        self.rewards: dict[int, int] = {}

    def teardown(self):
        if self.savepoint.is_active:
            self.savepoint.rollback()

    # --- helpers --------------------------------------------------------------------------

    def key(self, what: str) -> str:
        self.keys += 1
        return f"prop:{what}:{self.keys}"

    def member(self, i: int) -> ModelMember:
        return self.members[i % len(self.members)]

    def expect(self, m: ModelMember, postings: list[tuple[str, list[Entry]]], order: ModelOrder | None = None):
        """The step posted exactly these movements for the member, in this order."""
        page = service.statement(self.session, member_id=m.id, limit=20)
        new = [ln for ln in reversed(page.items) if ln.id > m.seen]
        assert [(str(ln.kind), ln.points) for ln in new] == [(k, sum(a for a, _, _ in e)) for k, e in postings]
        for ln, (kind, entries) in zip(new, postings, strict=True):
            m.entries += entries
            self.txs.append(ModelTx(ln.id, self.members.index(m), kind, entries, order))
            m.seen = ln.id
        return [ln.id for ln in new]

    # --- steps ----------------------------------------------------------------------------

    @initialize(n=st.integers(2, 3))
    def enrol(self, n):
        _, config = service.current_config(self.session)
        expiry = config.expiry.model_copy(update={"months": EXPIRY_MONTHS})
        service.configure(self.session, config=config.model_copy(update={"expiry": expiry}), by="prop")
        self.product = create_product(self.session)
        for cost in COSTS:
            reward = service.save_reward(
                self.session,
                data=RewardConfig(code=f"PROP-{cost}", name=f"{cost} points", kind="free_shipping", points_cost=cost),
            )
            self.rewards[cost] = reward.id
        for _ in range(n):
            customer = create_customer(self.session)
            member = service.enrol(self.session, customer_id=customer.id, by="prop", now=START)
            m = ModelMember(member.id, customer.id)
            self.members.append(m)
            self.expect(m, [("enrol", [(100, True, add_months(START, EXPIRY_MONTHS))])])

    @rule(i=st.integers(0, 2), quantity=st.integers(1, 3), cents=st.integers(100, 25_000), days=st.integers(0, 40))
    def earn(self, i, quantity, cents, days):
        m = self.member(i)
        placed = min(self.clock + timedelta(days=days), LAST_ORDER)
        price = Decimal(cents) / 100
        tier = service.get_member(self.session, m.id).tier
        event(f"earn at tier {tier}")
        points = int((quantity * price * MULTIPLIERS[tier]).to_integral_value(rounding=ROUND_FLOOR))
        customer = customers.get_customer(self.session, m.customer_id)
        order = create_order(self.session, customer, lines=[(self.product, quantity, price)], placed_at=placed)
        model = ModelOrder(order.id, self.members.index(m), quantity * price, points, add_months(placed, EXPIRY_MONTHS))
        self.orders.append(model)
        [model.earn_tx] = self.expect(m, [("earn", [(points, True, model.expires_at)])], order=model)
        again = service.sync_orders(self.session, order_ids=[order.id])
        assert (again.earned, again.clawed_back) == (0, 0)

    @rule(i=st.integers(0, 2), c=st.sampled_from(COSTS))
    def redeem(self, i, c):
        m = self.member(i)
        if m.balance < c:
            try:
                service.redeem(self.session, member_id=m.id, reward_id=self.rewards[c], key=self.key("redeem"))
            except Conflict as exc:
                assert f"balance is {m.balance}" in exc.message
            else:
                raise AssertionError(f"redeeming {c} with a balance of {m.balance} was not refused")
            self.expect(m, [])
            event("redeem refused")
            return
        service.redeem(self.session, member_id=m.id, reward_id=self.rewards[c], key=self.key("redeem"))
        self.expect(m, [("redeem", [(-c, False, None)])])

    @rule(pick=st.integers(0, 10_000), part=st.integers(1, 100), kind=st.sampled_from(["return", "refund"]))
    def give_back(self, pick, part, kind):
        open_orders = [o for o in self.orders if (o.refunds[-1] if o.refunds else 0) < o.total]
        if not open_orders:
            return
        o = open_orders[pick % len(open_orders)]
        left = o.total - (o.refunds[-1] if o.refunds else 0)
        amount = max((left * part / 100).quantize(Decimal("0.01"), rounding=ROUND_FLOOR), Decimal("0.01"))
        orders.record_return(self.session, o.id, data=OrderReturnCreate(kind=kind, amount=amount))
        o.refunds.append((o.refunds[-1] if o.refunds else 0) + amount)
        m = self.members[o.member]
        postings = []
        if o.points and not o.reversed:
            held = m.balance
            for n, cumulative in enumerate(o.refunds):
                if n in o.posted:
                    continue
                share = min(Decimal(1), cumulative / o.total)
                due = int((o.points * share).to_integral_value(rounding=ROUND_FLOOR)) - o.clawed
                take = min(due, held)
                if due <= 0 or take <= 0:
                    continue
                postings.append(("clawback", [(-take, True, o.expires_at)]))
                o.posted.add(n)
                o.clawed += take
                held -= take
        self.expect(m, postings)
        event(f"return clawed back {len(postings)}")
        again = service.sync_orders(self.session, order_ids=[o.id])
        assert (again.earned, again.clawed_back) == (0, 0)

    @rule(days=st.integers(1, 60))
    def expire(self, days):
        self.clock = min(self.clock + timedelta(days=days), CLOCK_END)
        self.keys += 1
        now = self.clock + timedelta(seconds=self.keys)  # a new expiry key every run
        dues = [(m, m.due_at(now)) for m in self.members]
        result = service.expire(self.session, now=now)
        assert (result.members, result.points) == (sum(1 for _, d in dues if d), sum(d for _, d in dues))
        for m, due in dues:
            self.expect(m, [("expire", [(-due, False, None)])] if due else [])
        event(f"expiry posted: {result.members > 0}")

    @rule(i=st.integers(0, 2), points=st.integers(1, 300), credit=st.booleans())
    def adjust(self, i, points, credit):
        m = self.member(i)
        if credit:
            service.adjust(self.session, member_id=m.id, points=points, reason="goodwill", key=self.key("adjust"))
            self.expect(m, [("adjust", [(points, True, FAR)])])
        elif m.balance < points:
            try:
                service.adjust(self.session, member_id=m.id, points=-points, reason="fix", key=self.key("adjust"))
            except Conflict as exc:
                assert f"balance is {m.balance}" in exc.message
            else:
                raise AssertionError(f"a debit of {points} with a balance of {m.balance} was not refused")
            self.expect(m, [])
        else:
            service.adjust(self.session, member_id=m.id, points=-points, reason="fix", key=self.key("adjust"))
            self.expect(m, [("adjust", [(-points, False, None)])])

    @rule(pick=st.integers(0, 10_000), anything=st.booleans())
    def reverse(self, pick, anything):
        # Mostly a transaction that may be reversed; sometimes any (expiries, clawbacks, reversals).
        candidates = self.txs if anything else [t for t in self.txs if t.kind in REVERSIBLE and not t.reversed]
        if not candidates:
            return
        tx = candidates[pick % len(candidates)]
        m = self.members[tx.member]
        undo = [(-a, lot, exp) for a, lot, exp in tx.entries]
        all_taken = False
        if tx.kind == "earn" and tx.order is not None and tx.order.clawed:
            # An earning's reversal undoes only what the order's returns have not taken back.
            points = tx.order.points
            all_taken = tx.order.clawed >= points
            undo = [(a * (points - tx.order.clawed) // points, lot, exp) for a, lot, exp in undo]
        refused = tx.kind not in REVERSIBLE or tx.reversed or all_taken or m.balance + sum(a for a, _, _ in undo) < 0
        try:
            service.reverse(self.session, transaction_id=tx.id, reason="property test", key=self.key("reverse"))
        except Conflict:
            assert refused, f"reversing {tx.kind} #{tx.id} was refused"
            event(f"reversal of {tx.kind} refused")
            self.expect(m, [])
            return
        assert not refused, f"reversing {tx.kind} #{tx.id} (reversed: {tx.reversed}) was not refused"
        tx.reversed = True
        event(f"reversal of {tx.kind}")
        if tx.order is not None and tx.kind == "earn":
            tx.order.reversed = True
        self.expect(m, [("reversal", undo)])

    # --- after every step -----------------------------------------------------------------

    @invariant()
    def books_balance(self):
        if not self.members:
            return
        assert service.check_books(self.session) == []
        for m in self.members:
            member = service.get_member(self.session, m.id)
            stored = service.summary(self.session, member_id=m.id, now=REAL_NOW).balance
            entries = self.session.scalar(
                select(func.coalesce(func.sum(LoyaltyEntry.amount), 0)).where(
                    LoyaltyEntry.account_id == member.account_id
                )
            )
            assert stored == entries == m.balance
            assert stored >= 0


def test_the_ledger_stays_balanced_under_random_movements(session):
    run_state_machine_as_test(
        lambda: LedgerMachine(session),
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
