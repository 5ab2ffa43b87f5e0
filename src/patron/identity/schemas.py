"""Duplicate candidates and merge records, as the API, pages and CLI show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from patron.validation import Id, InputModel


class CustomerBrief(BaseModel):
    """What a person compares when deciding whether two records are one customer."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    created_at: datetime
    order_count: int = 0

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email or f"Customer {self.id}"


class DuplicatePair(BaseModel):
    """Two live customers that look like one person, with the evidence."""

    a: CustomerBrief = Field(description="The pair's lower id.")
    b: CustomerBrief
    score: float = Field(ge=0, le=1, description="How sure the match is: 1 is certain.")
    reasons: list[str] = Field(description='Human-readable evidence, e.g. "same phone".')
    exact: bool = Field(description="Same canonical email or same phone: what auto-merge merges.")
    suggested_survivor_id: int = Field(description="The one with more orders; on a tie, the older record.")


class DuplicateList(BaseModel):
    items: list[DuplicatePair]


class MergeCreate(InputModel):
    """Merge `merged_id` into `survivor_id`: its history moves over, the record is kept hidden."""

    model_config = ConfigDict(extra="forbid")

    survivor_id: Id
    merged_id: Id


class Merge(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    merged_id: int
    score: float | None
    reasons: list[str]
    moved: dict[str, Any] = Field(
        description="Row ids moved to the survivor, by table, and the survivor's fields filled "
        '({"fields": {name: {"was": ..., "now": ...}}}): exactly what an undo puts back.'
    )
    merged_by_id: int | None
    merged_at: datetime
    undone_by_id: int | None
    undone_at: datetime | None


class MergePage(BaseModel):
    items: list[Merge]
    next_cursor: str | None


class MergeView(BaseModel):
    """A merge with the names the review page shows."""

    merge: Merge
    survivor_name: str
    merged_name: str
    merged_by: str | None
    undone_by: str | None


class DuplicateReview(BaseModel):
    """Everything the duplicates page shows: candidate pairs and the latest merges."""

    pairs: list[DuplicatePair]
    merges: list[MergeView]
