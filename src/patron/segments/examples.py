"""Ready example rules for the four kinds of market segmentation, offered in the builder and the API.

Each is a starting point a marketer copies and adapts; the tests compile every one.
"""

from __future__ import annotations

from typing import Any

EXAMPLES: list[dict[str, Any]] = [
    {
        "kind": "demographic",
        "name": "Young families",
        "description": "25 to 44, living with children.",
        "rule": {
            "all": [
                {"field": "age_band", "op": "in", "value": ["25-34", "35-44"]},
                {
                    "any": [
                        {"field": "children", "op": "gte", "value": 1},
                        {"field": "has_children_signal", "op": "eq", "value": True},
                    ]
                },
            ]
        },
    },
    {
        "kind": "demographic",
        "name": "Affluent couples",
        "description": "Married, in the higher income bands.",
        "rule": {
            "all": [
                {"field": "marital_status", "op": "eq", "value": "married"},
                {"field": "income_band", "op": "in", "value": ["upper-middle", "high"]},
            ]
        },
    },
    {
        "kind": "geographic",
        "name": "Paris region",
        "description": "French customers whose postal code starts with 75, 77, 78, 91, 92, 93, 94 or 95.",
        "rule": {
            "all": [
                {"field": "country", "op": "eq", "value": "FR"},
                {
                    "any": [
                        {"field": "postal_code", "op": "starts_with", "value": p}
                        for p in ("75", "77", "78", "91", "92", "93", "94", "95")
                    ]
                },
            ]
        },
    },
    {
        "kind": "behavioural",
        "name": "Frequent online buyers",
        "description": "Three or more online orders in the last 90 days.",
        "rule": {"purchases": {"within_days": 90, "channel": "online"}, "metric": "count", "op": "gte", "value": 3},
    },
    {
        "kind": "behavioural",
        "name": "Recent big spenders",
        "description": "Spent 500 or more in the last 180 days and bought in the last 30.",
        "rule": {
            "all": [
                {"purchases": {"within_days": 180}, "metric": "sum", "op": "gte", "value": 500},
                {"field": "last_purchase_at", "op": "in_last_days", "value": 30},
            ]
        },
    },
    {
        "kind": "benefits",
        "name": "Price-driven",
        "description": "Half or more of their spend was bought on discount.",
        "rule": {"field": "discount_share", "op": "gte", "value": 0.5},
    },
    {
        "kind": "benefits",
        "name": "Quality-driven",
        "description": "Half or more of their spend goes to premium brands.",
        "rule": {"field": "premium_share", "op": "gte", "value": 0.5},
    },
    {
        "kind": "benefits",
        "name": "Novelty-driven",
        "description": "Bought a product within 30 days of its launch, twice or more in the last year.",
        "rule": {
            "purchases": {"within_days": 365, "new_products_days": 30},
            "metric": "count",
            "op": "gte",
            "value": 2,
        },
    },
]
