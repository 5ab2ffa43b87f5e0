"""The fields a segment rule can test: one registry for the rule compiler and the UI's pickers.

Each field says where its value comes from (`source`) and which column or derived value
it is (`column`); `patron.segments.rules` turns that into SQL:

- ``customer``: a column of `customers` (``birthday_month`` is derived from ``birthday``);
- ``orders``: an aggregate over the customer's orders that are not cancelled and were
  placed up to the rule's day (``orders_count``, ``total_spend``, first and last purchase);
- ``scores``: `customer_scores` of the latest finished analysis run (``p_alive_change``
  and ``clv_percentile`` are derived from them);
- ``insights``: `customer_insights`;
- ``loyalty``: the customer's active loyalty membership (tier, points balance, enrolment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from patron.models.enums import AgeBand, ChurnBand, ContactChannel, Gender, IncomeBand, MaritalStatus, RfmSegment

FieldType = Literal["string", "number", "integer", "date", "datetime", "enum", "boolean", "month"]
Source = Literal["customer", "orders", "scores", "insights", "loyalty"]

GROUPS = ("Demographic", "Geographic", "Behaviour", "Scores", "Insights", "Loyalty", "Profile")

_EMPTINESS = ("is_empty", "is_not_empty")
_COMPARISONS = ("eq", "ne", "lt", "lte", "gt", "gte", "between")
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "not_in", "starts_with", *_EMPTINESS),
    "enum": ("eq", "ne", "in", "not_in", *_EMPTINESS),
    "integer": (*_COMPARISONS, "in", "not_in", *_EMPTINESS),
    "number": (*_COMPARISONS, *_EMPTINESS),
    "date": (*_COMPARISONS, "in_last_days", "not_in_last_days", *_EMPTINESS),
    "datetime": (*_COMPARISONS, "in_last_days", "not_in_last_days", *_EMPTINESS),
    "boolean": ("eq", "ne"),
    "month": ("eq", "in", "not_in", "is_current_month", *_EMPTINESS),
}


@dataclass(frozen=True)
class Field:
    """One testable attribute of a customer."""

    name: str
    label: str
    group: str
    type: FieldType
    source: Source
    column: str
    choices: tuple[str, ...] = ()

    @property
    def ops(self) -> tuple[str, ...]:
        return OPS_BY_TYPE[self.type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "group": self.group,
            "type": self.type,
            "ops": list(self.ops),
            "choices": list(self.choices),
        }


def _values(enum_cls) -> tuple[str, ...]:
    return tuple(m.value for m in enum_cls)


def _customer(name: str, label: str, group: str, type_: FieldType, column: str | None = None, choices=()) -> Field:
    return Field(name, label, group, type_, "customer", column or name, tuple(choices))


_FIELDS: tuple[Field, ...] = (
    # Demographic
    _customer("gender", "Gender", "Demographic", "enum", choices=_values(Gender)),
    _customer("age_band", "Age band", "Demographic", "enum", choices=_values(AgeBand)),
    _customer("income_band", "Income band", "Demographic", "enum", choices=_values(IncomeBand)),
    _customer("marital_status", "Marital status", "Demographic", "enum", choices=_values(MaritalStatus)),
    _customer("household_size", "Household size", "Demographic", "integer"),
    _customer("children", "Children", "Demographic", "integer"),
    _customer("birthday", "Birthday", "Demographic", "date"),
    _customer("birthday_month", "Birthday month", "Demographic", "month", column="birthday"),
    # Geographic
    _customer("country", "Country", "Geographic", "string"),
    _customer("region", "Region", "Geographic", "string"),
    _customer("city", "City", "Geographic", "string"),
    _customer("postal_code", "Postal code", "Geographic", "string"),
    # Profile
    _customer("language", "Language", "Profile", "string"),
    _customer("acquisition_channel", "Acquisition channel", "Profile", "string"),
    _customer("acquired_at", "Acquired on", "Profile", "date"),
    _customer("created_at", "Created at", "Profile", "datetime"),
    _customer(
        "preferred_contact_channel",
        "Preferred contact channel",
        "Profile",
        "enum",
        column="preferred_channel",
        choices=_values(ContactChannel),
    ),
    # Behaviour (orders not cancelled, placed up to the rule's day)
    Field("orders_count", "Orders", "Behaviour", "integer", "orders", "count"),
    Field("total_spend", "Total spend", "Behaviour", "number", "orders", "sum"),
    Field("last_purchase_at", "Last purchase", "Behaviour", "datetime", "orders", "max"),
    Field("first_purchase_at", "First purchase", "Behaviour", "datetime", "orders", "min"),
    # Scores (latest finished analysis run)
    Field("rfm_segment", "RFM segment", "Scores", "enum", "scores", "rfm_segment", _values(RfmSegment)),
    Field("r_score", "Recency score", "Scores", "integer", "scores", "r_score"),
    Field("f_score", "Frequency score", "Scores", "integer", "scores", "f_score"),
    Field("m_score", "Monetary score", "Scores", "integer", "scores", "m_score"),
    Field("clv", "Customer lifetime value", "Scores", "number", "scores", "clv"),
    Field("clv_percentile", "CLV percentile", "Scores", "number", "scores", "clv_percentile"),
    Field("p_alive", "Probability alive", "Scores", "number", "scores", "p_alive"),
    Field("p_alive_change", "Change in probability alive", "Scores", "number", "scores", "p_alive_change"),
    Field("expected_365", "Expected purchases (365 days)", "Scores", "number", "scores", "expected_365"),
    Field("churn_band", "Churn risk", "Scores", "enum", "scores", "churn_band", _values(ChurnBand)),
    # Insights
    Field("favourite_category", "Favourite category", "Insights", "string", "insights", "favourite_category"),
    Field("favourite_brand", "Favourite brand", "Insights", "string", "insights", "favourite_brand"),
    Field("preferred_channel", "Preferred sales channel", "Insights", "string", "insights", "preferred_channel"),
    Field("brand_loyalty", "Brand loyalty", "Insights", "number", "insights", "brand_loyalty"),
    Field("discount_share", "Discount share", "Insights", "number", "insights", "discount_share"),
    Field("price_index", "Price index", "Insights", "number", "insights", "price_index"),
    Field("premium_share", "Premium share", "Insights", "number", "insights", "premium_share"),
    Field("has_children_signal", "Buys for children", "Insights", "boolean", "insights", "has_children_signal"),
    # Loyalty (active members; customers who are not members have none of these)
    Field("loyalty_tier", "Loyalty tier", "Loyalty", "string", "loyalty", "tier"),
    Field("loyalty_points", "Loyalty points balance", "Loyalty", "integer", "loyalty", "balance"),
    Field("loyalty_enrolled_at", "Loyalty member since", "Loyalty", "datetime", "loyalty", "enrolled_at"),
)

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}


def get(name: str) -> Field | None:
    """The field called `name`, or None."""
    return FIELDS.get(name)


def catalogue() -> list[dict[str, Any]]:
    """Every field as JSON-ready dicts (name, label, group, type, ops, choices), in picker order."""
    return [f.as_dict() for f in _FIELDS]
