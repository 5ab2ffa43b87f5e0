"""Closed vocabularies stored as VARCHAR with a CHECK constraint on every backend.

On SQLite the CHECK is written `col = 'a' OR col = 'b' ...` instead of SQLAlchemy's
`col IN ('a', 'b', ...)`: SQLite sets up an IN list for every row it checks, which cost
about 1.6 microseconds per row per constraint (a million-row score write spent 1.5 s of
its 6 s there; an order import pays it for status and channel), while the OR chain costs
next to nothing. Both accept the same values and NULL. Migration 0007 rewrites the
checks of databases made before.
"""

from __future__ import annotations

import copy
from enum import StrEnum

from sqlalchemy import CheckConstraint, literal, or_
from sqlalchemy import Enum as SAEnum
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter


def db_enum(enum_cls: type[StrEnum]) -> SAEnum:
    """A portable enum column: values (not names) stored, checked by the database."""
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [m.value for m in cls],
        name=enum_cls.__name__.lower(),
        validate_strings=True,
    )


@compiles(CheckConstraint, "sqlite")
def _sqlite_enum_check(constraint: CheckConstraint, compiler, **kw) -> str:
    """An Enum's own CHECK (`col IN (...)`) as an OR chain of equalities; any other CHECK as written."""
    expr = constraint.sqltext
    if (
        getattr(constraint, "_type_bound", False)
        and isinstance(expr, BinaryExpression)
        and expr.operator is operators.in_op
        and isinstance(expr.right, BindParameter)
    ):
        constraint = copy.copy(constraint)
        constraint.sqltext = or_(*(expr.left == literal(value) for value in expr.right.value))
    return compiler.visit_check_constraint(constraint, **kw)


class Role(StrEnum):
    admin = "admin"
    marketer = "marketer"
    agent = "agent"
    analyst = "analyst"
    viewer = "viewer"


class Gender(StrEnum):
    female = "female"
    male = "male"
    nonbinary = "nonbinary"
    undisclosed = "undisclosed"


class AgeBand(StrEnum):
    under_18 = "under-18"
    a18_24 = "18-24"
    a25_34 = "25-34"
    a35_44 = "35-44"
    a45_54 = "45-54"
    a55_64 = "55-64"
    a65_plus = "65+"


class IncomeBand(StrEnum):
    low = "low"
    lower_middle = "lower-middle"
    middle = "middle"
    upper_middle = "upper-middle"
    high = "high"


class MaritalStatus(StrEnum):
    single = "single"
    partnered = "partnered"
    married = "married"
    divorced = "divorced"
    widowed = "widowed"


class ContactChannel(StrEnum):
    """Channels a customer can be contacted on, and consent is recorded for."""

    email = "email"
    sms = "sms"
    phone = "phone"
    post = "post"


class ConsentPurpose(StrEnum):
    marketing = "marketing"
    service = "service"
    surveys = "surveys"
    profiling = "profiling"


class ConsentStatus(StrEnum):
    granted = "granted"
    withdrawn = "withdrawn"


class SalesChannel(StrEnum):
    in_store = "in_store"
    online = "online"
    mobile = "mobile"
    phone = "phone"


class OrderStatus(StrEnum):
    placed = "placed"
    paid = "paid"
    fulfilled = "fulfilled"
    cancelled = "cancelled"
    returned = "returned"
    partially_returned = "partially_returned"


class ReturnKind(StrEnum):
    return_ = "return"
    refund = "refund"


class InteractionKind(StrEnum):
    store_visit = "store_visit"
    web_visit = "web_visit"
    call = "call"
    chat = "chat"
    email_in = "email_in"
    email_out = "email_out"
    web_form = "web_form"
    note = "note"
    complaint = "complaint"
    thank_you = "thank_you"
    feedback = "feedback"


class InteractionChannel(StrEnum):
    in_store = "in_store"
    web = "web"
    mobile = "mobile"
    phone = "phone"
    chat = "chat"
    email = "email"
    sms = "sms"
    post = "post"
    social = "social"
    internal = "internal"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"
    internal = "internal"


class StoreKind(StrEnum):
    shop = "shop"
    outlet = "outlet"
    online = "online"
    warehouse = "warehouse"
    popup = "popup"


class ProductTier(StrEnum):
    value = "value"
    standard = "standard"
    premium = "premium"


class ImportKind(StrEnum):
    customers = "customers"
    products = "products"
    orders = "orders"
    interactions = "interactions"


class ImportStatus(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"


class AnalysisStatus(StrEnum):
    running = "running"
    completed = "completed"
    # RFM and summaries stored, but the purchase model did not converge (no predictions).
    partial = "partial"
    failed = "failed"


class RfmSegment(StrEnum):
    champions = "Champions"
    loyal = "Loyal"
    potential_loyalist = "Potential loyalist"
    new = "New"
    promising = "Promising"
    need_attention = "Need attention"
    about_to_sleep = "About to sleep"
    at_risk = "At risk"
    cant_lose_them = "Can't lose them"
    hibernating = "Hibernating"
    lost = "Lost"


class ChurnBand(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    lost = "lost"


class SegmentKind(StrEnum):
    dynamic = "dynamic"  # a rule, evaluated on use
    static = "static"  # a list of members
    cluster = "cluster"  # one cluster of a behavioural clustering


class LoyaltyAccountKind(StrEnum):
    member = "member"  # points owed to one member; its balance never goes below zero
    issued = "issued"  # the programme's side of every point given (earned, bonus, credited)
    redeemed = "redeemed"  # points turned into rewards
    expired = "expired"  # points that lapsed (breakage)


class LoyaltyTransactionKind(StrEnum):
    enrol = "enrol"  # sign-up bonus
    earn = "earn"  # points for an order
    bonus = "bonus"  # birthday, review, survey, goodwill
    adjust = "adjust"  # an agent's correction, credit or debit
    redeem = "redeem"  # points for a reward (a voucher)
    clawback = "clawback"  # points of a returned, refunded or cancelled order taken back
    expire = "expire"  # points past their expiry date
    transfer = "transfer"  # points moved between members (a customer merge)
    reversal = "reversal"  # undoes one earlier transaction, entry for entry


class MemberStatus(StrEnum):
    active = "active"
    closed = "closed"  # left the programme; keeps its statement
    merged = "merged"  # its customer was merged into another member's


class RewardKind(StrEnum):
    voucher = "voucher"  # money off: `amount` in the shop's currency
    free_product = "free_product"
    free_shipping = "free_shipping"


class VoucherStatus(StrEnum):
    issued = "issued"
    consumed = "consumed"
    cancelled = "cancelled"  # its redemption was reversed; the points went back


class OutboxStatus(StrEnum):
    pending = "pending"  # waiting, claimed by a worker, or waiting for a retry
    done = "done"
    dead = "dead"  # failed max_attempts times; kept to be seen and sent again by hand


class DeliveryOutcome(StrEnum):
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # an answer other than 2xx, a timeout, a refused connection or target
