"""What the segments API takes and returns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patron.models import Customer as CustomerRow
from patron.models import Segment as SegmentRow
from patron.models.enums import SegmentKind
from patron.validation import Id, InputModel

Rule = dict[str, Any]
RULE_DESCRIPTION = (
    'A JSON tree: {"all": [...]}, {"any": [...]}, {"not": {...}}, {"field": name, "op": op, "value": v}, '
    '{"purchases": {...}, "metric": "count|sum|avg", "op": op, "value": n}, {"consent": {"channel", "purpose"}}, '
    '{"segment": id}. GET /segments/fields lists the fields and their operators.'
)


class RulePreviewRequest(InputModel):
    model_config = ConfigDict(extra="forbid")

    rule: Rule = Field(description=RULE_DESCRIPTION)
    sample_size: int = Field(default=10, ge=0, le=100)


class MemberSummary(BaseModel):
    id: int
    name: str
    email: str | None
    city: str | None
    country: str | None

    @classmethod
    def of(cls, c: CustomerRow) -> MemberSummary:
        return cls(
            id=c.id,
            name=f"{c.first_name} {c.last_name}".strip(),
            email=c.email,
            city=c.city,
            country=c.country,
        )


class RulePreview(BaseModel):
    count: int = Field(description="Customers the rule matches now.")
    total: int = Field(description="All (unmerged) customers.")
    sample: list[MemberSummary]
    warnings: list[str] = Field(description="For example: the rule matches every customer.")


class SegmentCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["dynamic", "static"] = "dynamic"
    rule: Rule | None = Field(
        default=None, description="Dynamic: required. Static: optional, its members now become the list."
    )
    description: str = Field(default="", max_length=5000)
    category: str | None = Field(default=None, max_length=30)
    customer_ids: list[Id] | None = Field(default=None, max_length=100_000, description="Static lists only.")


class SegmentUpdate(InputModel):
    """The fields to change; those left out stay as they are. Only category may be set to null."""

    model_config = ConfigDict(extra="forbid")

    # Typed without None: an explicit null is refused (422); a field left out is not set.
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    rule: Rule = Field(default=None, description=RULE_DESCRIPTION)  # type: ignore[assignment]
    description: str = Field(default=None, max_length=5000)  # type: ignore[assignment]
    category: str | None = Field(default=None, max_length=30)
    is_archived: bool = Field(default=None)  # type: ignore[assignment]


class Segment(BaseModel):
    id: int
    name: str
    description: str
    kind: SegmentKind
    rule: Rule | None
    built_in: bool
    category: str | None
    cluster: dict[str, Any] | None
    is_archived: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    members: int | None = Field(default=None, description="Current member count (on single reads).")

    @classmethod
    def of(cls, s: SegmentRow, *, members: int | None = None) -> Segment:
        return cls(
            id=s.id,
            name=s.name,
            description=s.description,
            kind=s.kind,
            rule=s.rule,
            built_in=s.builtin_key is not None,
            category=s.category,
            cluster=s.cluster,
            is_archived=s.is_archived,
            created_by=s.created_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
            members=members,
        )


class SegmentList(BaseModel):
    items: list[Segment]


class MemberPage(BaseModel):
    items: list[MemberSummary]
    next_cursor: str | None


class StaticMembers(InputModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[Id] = Field(min_length=1, max_length=100_000)
    replace: bool = Field(default=False, description="Replace the list's members instead of adding.")


class StaticMembersResult(BaseModel):
    added: int
    members: int


class FreezeRequest(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class MonthFigure(BaseModel):
    month: str
    revenue: Decimal
    orders: int


class SegmentReport(BaseModel):
    segment_id: int
    name: str
    size: int
    share_of_customers: float | None
    buyers: int
    orders: int
    revenue: Decimal
    average_order_value: Decimal | None
    margin: Decimal | None = Field(description="Revenue minus unit costs, over lines whose product has a unit cost.")
    margin_rate: float | None
    scored: int = Field(description="Members with scores in the latest analysis run.")
    average_clv: float | None
    average_p_alive: float | None
    churn_high_share: float | None = Field(description="Share of scored members in the high or lost churn band.")
    churn_bands: dict[str, int]
    rfm_segments: dict[str, int]
    nps: float | None = Field(description="Net Promoter Score of the members; null until survey answers exist.")
    monthly: list[MonthFigure]


class SegmentComparison(BaseModel):
    first: SegmentReport
    second: SegmentReport
    overlap: int = Field(description="Customers in both segments.")


class Snapshot(BaseModel):
    id: int
    taken_at: datetime
    taken_by: str
    sizes: dict[str, int]


class MigrationCell(BaseModel):
    from_: int | None = Field(alias="from", description="Segment at the earlier snapshot (null: in none of them).")
    to: int | None = Field(description="Segment at the later snapshot (null: in none of them).")
    customers: int

    model_config = ConfigDict(populate_by_name=True)


class MigrationMatrix(BaseModel):
    before: dict[str, Any]
    after: dict[str, Any]
    segments: list[dict[str, Any]]
    cells: list[MigrationCell]


class ClusterRequest(InputModel):
    model_config = ConfigDict(extra="forbid")

    k_min: int = Field(default=2, ge=2, le=20)
    k_max: int = Field(default=8, ge=2, le=20)
    method: Literal["kmeans", "gaussian_mixture"] = "kmeans"
