"""Property: the compiled SQL selects exactly the customers a plain-Python evaluator selects.

Random small datasets (customers, products, orders and lines, two analysis runs,
insights, consent history) and random nested rules; the reference evaluator below is
written from the rule semantics in `patron.segments.rules`, not from its SQL. Money
amounts are whole numbers and ratios quarters, so float sums and divisions are exact on
both backends and boundary comparisons cannot differ by rounding.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.models import (
    AnalysisRun,
    ConsentEvent,
    Customer,
    CustomerInsight,
    CustomerScore,
    Order,
    OrderLine,
    Product,
)
from patron.segments.rules import RuleContext, members

TODAY = date(2026, 11, 20)
CATEGORIES = ["Kids", "Kids/Shoes", "Kidswear", "Home", ""]
BRANDS = ["Acme", "Zeta", None]
SALES_CHANNELS = ["online", "in_store", "mobile"]
CITIES = [None, "", "Leeds", "London", "Paris"]
DAYS = [1, 7, 30, 90]
SEGMENT_MEMBERS = {1: (0, 2, 4), 2: (1, 3)}  # positions in the dataset's customer list
_sku = itertools.count(1)

# --------------------------------------------------------------------------- data

quarters = st.integers(0, 4).map(lambda n: n / 4)
# Days before TODAY, bunched around the edges of the 1/7/30/90-day windows.
days_ago = st.sampled_from([-1, 0, 1, 7, 8, 30, 31, 90, 91])
stamps = st.tuples(days_ago, st.sampled_from([0, 12, 23])).map(
    lambda t: datetime.combine(TODAY - timedelta(days=t[0]), datetime.min.time(), UTC).replace(hour=t[1])
)
dates = days_ago.map(lambda n: TODAY - timedelta(days=n))

products_st = st.lists(
    st.fixed_dictionaries(
        {
            "category": st.sampled_from(CATEGORIES),
            "brand": st.sampled_from(BRANDS),
            "launched_on": st.none() | dates,
        }
    ),
    min_size=1,
    max_size=4,
)
lines_st = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(1, 50), st.sampled_from([0, 0, 1])),
    min_size=0,  # an order recorded by its total only (as the CDNOW preset imports them)
    max_size=2,
)
order_st = st.fixed_dictionaries(
    {
        "placed_at": stamps,
        "channel": st.sampled_from(SALES_CHANNELS),
        "cancelled": st.booleans(),
        "lines": lines_st,
    }
)
score_st = st.none() | st.fixed_dictionaries(
    {
        "r_score": st.none() | st.integers(1, 5),
        "rfm_segment": st.none() | st.sampled_from(["Champions", "Lost", "At risk"]),
        "clv": st.none() | st.integers(0, 5).map(lambda n: Decimal(n * 10)),
        "p_alive": st.none() | quarters,
    }
)
insight_st = st.none() | st.fixed_dictionaries(
    {
        "favourite_category": st.sampled_from([*CATEGORIES[:4], None]),
        "brand_loyalty": st.none() | quarters,
        "has_children_signal": st.booleans(),
    }
)
consent_st = st.lists(
    st.tuples(st.sampled_from(["email", "sms"]), st.sampled_from(["granted", "withdrawn"])), max_size=3
)
customer_st = st.fixed_dictionaries(
    {
        "gender": st.sampled_from([None, "female", "male"]),
        "children": st.none() | st.integers(0, 3),
        "city": st.sampled_from(CITIES),
        "birthday": st.none() | st.dates(date(1950, 1, 1), date(2010, 12, 31)),
        "acquired_at": st.none() | dates,
        "created_at": stamps,
        "merged": st.integers(0, 5).map(lambda n: n == 0),
        "orders": st.lists(order_st, max_size=3),
        "score": score_st,
        "previous_score": score_st,
        "insight": insight_st,
        "consents": consent_st,
    }
)
dataset_st = st.fixed_dictionaries(
    {
        "products": products_st,
        "customers": st.lists(customer_st, min_size=2, max_size=8),
        "latest_run": st.booleans(),
        "previous_run": st.booleans(),
    }
)

# --------------------------------------------------------------------------- rules


def _leaf(field: str, ops_values: dict[str, Any]):
    def build(op_value):
        op, value = op_value
        node = {"field": field, "op": op}
        if value is not None:
            node["value"] = value
        return node

    return st.one_of(*(st.tuples(st.just(op), vals) for op, vals in ops_values.items())).map(build)


NONE = st.none()
small = st.integers(0, 3)
money = st.integers(0, 12).map(lambda n: n * 10)
day_values = dates.map(date.isoformat)


def _between(values):
    return st.tuples(values, values).map(sorted).map(list)


def _date_ops():
    return {
        "eq": day_values,
        "ne": day_values,
        "lt": day_values,
        "lte": day_values,
        "gt": day_values,
        "gte": day_values,
        "between": _between(day_values),
        "in_last_days": st.sampled_from(DAYS),
        "not_in_last_days": st.sampled_from(DAYS),
        "is_empty": NONE,
        "is_not_empty": NONE,
    }


def _number_ops(values):
    return {op: values for op in ("eq", "ne", "lt", "lte", "gt", "gte")} | {
        "between": _between(values),
        "is_empty": NONE,
        "is_not_empty": NONE,
    }


def _choice_ops(values):
    return {
        "eq": values,
        "ne": values,
        "in": st.lists(values, min_size=1, max_size=2),
        "not_in": st.lists(values, min_size=1, max_size=2),
        "is_empty": NONE,
        "is_not_empty": NONE,
    }


percent = st.sampled_from([0, 20, 25, 33.25, 50, 60, 100])
attribute_leaves = [
    _leaf("gender", _choice_ops(st.sampled_from(["female", "male", "nonbinary"]))),
    _leaf("children", _number_ops(small) | {"in": st.lists(small, min_size=1), "not_in": st.lists(small, min_size=1)}),
    _leaf(
        "city", _choice_ops(st.sampled_from(["Leeds", "London", ""])) | {"starts_with": st.sampled_from(["L", "Lo"])}
    ),
    _leaf("birthday", _date_ops()),
    _leaf(
        "birthday_month",
        {
            "eq": st.integers(1, 12),
            "in": st.lists(st.integers(1, 12), min_size=1, max_size=4),
            "not_in": st.lists(st.integers(1, 12), min_size=1, max_size=4),
            "is_current_month": NONE,
            "is_empty": NONE,
        },
    ),
    _leaf("acquired_at", _date_ops()),
    _leaf("created_at", _date_ops()),
    _leaf("orders_count", _number_ops(small)),
    _leaf("total_spend", _number_ops(st.integers(0, 30).map(lambda n: n * 10))),
    _leaf("last_purchase_at", _date_ops()),
    _leaf("first_purchase_at", _date_ops()),
    _leaf("rfm_segment", _choice_ops(st.sampled_from(["Champions", "Lost", "New"]))),
    _leaf("r_score", _number_ops(st.integers(0, 5))),
    _leaf("clv", _number_ops(money)),
    _leaf("p_alive", _number_ops(quarters)),
    _leaf("p_alive_change", _number_ops(st.integers(-4, 4).map(lambda n: n / 4))),
    _leaf("clv_percentile", _number_ops(percent)),
    _leaf("favourite_category", _choice_ops(st.sampled_from(["Kids", "Home"])) | {"starts_with": st.just("Kids")}),
    _leaf("brand_loyalty", _number_ops(quarters)),
    _leaf("has_children_signal", {"eq": st.booleans(), "ne": st.booleans()}),
]
purchase_leaf = st.builds(
    lambda filters, metric, op_value: {"purchases": filters, "metric": metric, "op": op_value[0], "value": op_value[1]},
    st.fixed_dictionaries(
        {},
        optional={
            "within_days": st.sampled_from(DAYS),
            "category": st.sampled_from(["Kids", "Kids/Shoes", "Home"]),
            "brand": st.sampled_from(["Acme", "Zeta"]),
            "channel": st.sampled_from(SALES_CHANNELS),
            "new_products_days": st.sampled_from([1, 10, 30]),
        },
    ),
    st.sampled_from(["count", "sum", "avg"]),
    st.one_of(
        st.tuples(st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]), st.sampled_from([0, 1, 2, 20, 40, 75])),
        st.tuples(st.just("between"), _between(st.sampled_from([0, 1, 2, 30, 60, 150]))),
    ),
)
consent_leaf = st.sampled_from(["email", "sms"]).map(lambda c: {"consent": {"channel": c, "purpose": "marketing"}})
segment_leaf = st.sampled_from(sorted(SEGMENT_MEMBERS)).map(lambda s: {"segment": s})
leaves = st.one_of(*attribute_leaves, purchase_leaf, consent_leaf, segment_leaf)


def _extend(children):
    group = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        group.map(lambda c: {"all": c}), group.map(lambda c: {"any": c}), children.map(lambda c: {"not": c})
    )


def _depth(node) -> int:
    for key in ("all", "any"):
        if key in node:
            return 1 + max(_depth(c) for c in node[key])
    return 1 + _depth(node["not"]) if "not" in node else 0


rule_st = st.recursive(leaves, _extend, max_leaves=6).filter(lambda r: _depth(r) <= 3)

# --------------------------------------------------------------------------- the reference evaluator


def _day(value):
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _test(op: str, value: Any, v: Any, kind: str) -> bool:
    """A leaf on a customer's value v (None when missing): exactly True or False."""
    if op == "is_empty":
        return v is None or v == ""
    if op == "is_not_empty":
        return not (v is None or v == "")
    if op == "not_in_last_days":
        return v is None or _day(v) < TODAY - timedelta(days=value)
    if v is None:
        return False
    if kind == "date":
        v = _day(v)
        if op == "in_last_days":
            return TODAY - timedelta(days=value) <= v <= TODAY
        value = [date.fromisoformat(x) for x in value] if isinstance(value, list) else date.fromisoformat(value)
    match op:
        case "eq":
            return v == value
        case "ne":
            return v != value
        case "lt":
            return v < value
        case "lte":
            return v <= value
        case "gt":
            return v > value
        case "gte":
            return v >= value
        case "between":
            return value[0] <= v <= value[1]
        case "in":
            return v in value
        case "not_in":
            return v not in value
        case "starts_with":
            return v.startswith(value)
        case "is_current_month":
            return v == TODAY.month
    raise AssertionError(op)


def _counted(order) -> bool:
    return not order["cancelled"] and _day(order["placed_at"]) <= TODAY


def _amount(line) -> int:
    _, quantity, price, discount = line
    return quantity * price - discount


def _purchases(node, customer, products) -> float | int | None:
    f = node["purchases"]
    count, total = 0, 0
    for order in customer["orders"]:
        placed = _day(order["placed_at"])
        if not _counted(order):
            continue
        if "within_days" in f and placed < TODAY - timedelta(days=f["within_days"]):
            continue
        if "channel" in f and order["channel"] != f["channel"]:
            continue
        if not any(key in f for key in ("category", "brand", "new_products_days")):
            # Without a product filter, whole orders: each counts, with its total.
            count += 1
            total += sum(_amount(line) for line in order["lines"])
            continue
        matching = []
        for line in order["lines"]:
            product = products[line[0] % len(products)]
            path = product["category"]
            if "category" in f and not (path == f["category"] or path.startswith(f["category"] + "/")):
                continue
            if "brand" in f and product["brand"] != f["brand"]:
                continue
            if "new_products_days" in f:
                launched = product["launched_on"]
                if launched is None or not 0 <= (placed - launched).days <= f["new_products_days"]:
                    continue
            matching.append(line)
        if matching:
            count += 1
            total += sum(_amount(line) for line in matching)
    if node["metric"] == "count":
        return count
    if node["metric"] == "sum":
        return float(total)
    return float(total) / float(count) if count else None


class Reference:
    """Every field's value per customer, computed from the generated data."""

    def __init__(self, data, latest: bool, previous: bool):
        self.data = data
        self.latest, self.previous = latest, previous
        clvs = [float(c["score"]["clv"]) for c in data["customers"] if c["score"] and c["score"]["clv"] is not None]
        self.clvs = clvs if latest else []

    def value(self, field: str, customer) -> Any:
        counted = [o for o in customer["orders"] if _counted(o)]
        score, previous, insight = customer["score"], customer["previous_score"], customer["insight"]
        match field:
            case "birthday_month":
                return customer["birthday"].month if customer["birthday"] else None
            case "orders_count":
                return len(counted)
            case "total_spend":
                return float(sum(_amount(line) for o in counted for line in o["lines"]))
            case "last_purchase_at":
                return max((o["placed_at"] for o in counted), default=None)
            case "first_purchase_at":
                return min((o["placed_at"] for o in counted), default=None)
            case "p_alive_change":
                if not (score and previous and self.previous):
                    return None
                if score["p_alive"] is None or previous["p_alive"] is None:
                    return None
                return score["p_alive"] - previous["p_alive"]
            case "clv_percentile":
                if not score or score["clv"] is None:
                    return None
                mine = float(score["clv"])
                return float(sum(1 for c in self.clvs if c < mine)) * 100.0 / float(len(self.clvs))
            case "clv":
                return float(score["clv"]) if score and score["clv"] is not None else None
            case "rfm_segment" | "r_score" | "p_alive":
                return score[field] if score else None
            case "favourite_category" | "brand_loyalty" | "has_children_signal":
                return insight[field] if insight else None
        return customer[field]

    def matches(self, node, position: int) -> bool:
        customer = self.data["customers"][position]
        if "all" in node:
            return all(self.matches(c, position) for c in node["all"])
        if "any" in node:
            return any(self.matches(c, position) for c in node["any"])
        if "not" in node:
            return not self.matches(node["not"], position)
        if "segment" in node:
            return position in SEGMENT_MEMBERS[node["segment"]]
        if "consent" in node:
            latest = None
            for channel, status in customer["consents"]:  # in id order
                if channel == node["consent"]["channel"]:
                    latest = status
            return latest == "granted"
        if "purchases" in node:
            return _test(node["op"], node["value"], _purchases(node, customer, self.data["products"]), "number")
        field = node["field"]
        if (
            field in ("rfm_segment", "r_score", "clv", "p_alive", "p_alive_change", "clv_percentile")
            and not self.latest
        ):
            return False
        kind = (
            "date"
            if field in ("birthday", "acquired_at", "created_at", "last_purchase_at", "first_purchase_at")
            else ""
        )
        return _test(node["op"], node.get("value"), self.value(field, customer), kind)


# --------------------------------------------------------------------------- writing the data


def _write(session, data) -> tuple[list[int], list[bool], RuleContext]:
    """Insert the dataset; the customers' ids, which of them are live, and the rule context."""
    products = []
    for p in data["products"]:
        n = next(_sku)
        products.append(
            Product(
                sku=f"P-{n}",
                name=f"Product {n}",
                category_path=p["category"],
                brand=p["brand"],
                price=Decimal("1"),
                launched_on=p["launched_on"],
            )
        )
    session.add_all(products)
    runs = [AnalysisRun(as_of=TODAY, status="completed", requested_model="auto") for _ in range(2)]
    session.add_all(runs)
    session.flush()
    previous_run, latest_run = runs
    customers = []
    for c in data["customers"]:
        customer = Customer(
            gender=c["gender"],
            children=c["children"],
            city=c["city"],
            birthday=c["birthday"],
            acquired_at=c["acquired_at"],
            created_at=c["created_at"],
            merged_into_id=customers[0].id if c["merged"] and customers else None,
        )
        session.add(customer)
        session.flush()
        customers.append(customer)
        for o in c["orders"]:
            total = sum(_amount(line) for line in o["lines"])
            session.add(
                Order(
                    customer_id=customer.id,
                    placed_at=o["placed_at"],
                    channel=o["channel"],
                    status="cancelled" if o["cancelled"] else "paid",
                    currency="USD",
                    subtotal=Decimal(total),
                    total=Decimal(total),
                    lines=[
                        OrderLine(
                            line_no=i,
                            product_id=products[p % len(products)].id,
                            quantity=q,
                            unit_price=Decimal(price),
                            discount=Decimal(discount),
                        )
                        for i, (p, q, price, discount) in enumerate(o["lines"], start=1)
                    ],
                )
            )
        for run, score in ((latest_run, c["score"]), (previous_run, c["previous_score"])):
            if score is not None:
                session.add(
                    CustomerScore(
                        run_id=run.id, customer_id=customer.id, as_of=TODAY, orders=0, frequency=0, revenue=0, **score
                    )
                )
        if c["insight"] is not None:
            session.add(CustomerInsight(customer_id=customer.id, as_of=TODAY, **c["insight"]))
        for channel, status in c["consents"]:
            session.add(
                ConsentEvent(customer_id=customer.id, channel=channel, purpose="marketing", status=status, source="api")
            )
            session.flush()  # ids in the order of the history
    session.flush()
    ids = [c.id for c in customers]

    def resolve(segment_id: int):
        return Customer.id.in_([ids[i] for i in SEGMENT_MEMBERS[segment_id] if i < len(ids)])

    context = RuleContext(
        today=TODAY,
        latest_run_id=latest_run.id if data["latest_run"] else None,
        previous_run_id=previous_run.id if data["previous_run"] else None,
        resolve_segment=resolve,
    )
    return ids, [c.merged_into_id is None for c in customers], context


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=dataset_st, rules=st.lists(rule_st, min_size=3, max_size=10))
def test_members_equal_the_reference_evaluator(session, data, rules):
    savepoint = session.begin_nested()
    try:
        ids, live, context = _write(session, data)
        reference = Reference(data, latest=data["latest_run"], previous=data["previous_run"])
        for rule in rules:
            got = sorted(session.scalars(members(rule, context)))
            expected = [ids[i] for i in range(len(ids)) if live[i] and reference.matches(rule, i)]
            assert got == expected, f"rule {rule}"
    finally:
        savepoint.rollback()
