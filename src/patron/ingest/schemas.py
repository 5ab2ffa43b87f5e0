"""Batch and webhook payloads: records validated one at a time, a result per record.

The batch envelope accepts `records` as raw JSON values and each record is validated on
its own, so one bad record gets its own field errors instead of failing the request; the
OpenAPI document still describes the records with their real schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import core_schema

from patron.customers.schemas import CustomerCreate, Email
from patron.orders.schemas import OrderCreate
from patron.validation import FieldError, Id, InputModel, find_bad_text

MAX_RECORDS = 10_000


class Unknown(StrEnum):
    """What to do with an order that names a customer or product Patron does not know."""

    stub = "stub"
    reject = "reject"


class RecordStatus(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    rejected = "rejected"


class CustomerRecord(CustomerCreate):
    """A customer to create or update.

    Matched by any of its external ids (a merged customer leads to the one it was merged
    into), else by email. A match gets only the fields sent (like PATCH); external ids are
    added, never replaced; consents are appended when they differ from the current state.
    """

    @model_validator(mode="after")
    def _matchable(self):
        if not (self.external_ids or self.email):
            raise ValueError("give an email or an external id to match the record on")
        return self


class CustomerRef(InputModel):
    """The customer by their id in the shop; email and name are used for a stub or an email match."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: str = Field(min_length=1, max_length=50, description='The system the id comes from, e.g. "shop".')
    external_id: str = Field(min_length=1, max_length=100)
    email: Email = None
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)


class OrderRecord(OrderCreate):
    """An order to record, keyed by `external_id`.

    Sending it again changes nothing; a changed status, channel, placed_at or store updates
    the order; changed amounts, lines or customer are refused (record a return or refund).
    """

    external_id: str = Field(min_length=1, max_length=100, description="The order's id in the shop: the upsert key.")
    customer_id: Id | None = Field(default=None, description="Patron's customer id; or give `customer`.")
    customer: CustomerRef | None = Field(default=None, description="The customer by their id in the shop.")

    @model_validator(mode="after")
    def _one_customer(self):
        if (self.customer_id is None) == (self.customer is None):
            raise FieldError("customer_id", "give exactly one of customer_id or customer {source, external_id}")
        return self


class _DocumentedAs:
    """Validate a list of raw JSON values, but document it as a list of `model`."""

    def __init__(self, model: type[BaseModel]):
        self.model = model

    def __get_pydantic_json_schema__(self, _schema, handler):
        return handler(
            core_schema.list_schema(self.model.__pydantic_core_schema__, min_length=1, max_length=MAX_RECORDS)
        )


def _records(model: type[BaseModel]):
    return Annotated[
        list[Any],
        Field(min_length=1, max_length=MAX_RECORDS, description=f"1 to {MAX_RECORDS:,} records."),
        _DocumentedAs(model),
    ]


class _Batch(InputModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data):
        # Overrides InputModel._storable_text: records are checked one by one, so a NUL in one
        # record rejects that record only.
        if isinstance(data, dict):
            rest = {k: v for k, v in data.items() if k != "records"}
            if (found := find_bad_text(rest)) is not None:
                raise FieldError(*found)
        return data


class CustomerBatch(_Batch):
    records: _records(CustomerRecord)


class OrderBatch(_Batch):
    records: _records(OrderRecord)
    unknown_customers: Unknown = Field(
        default=Unknown.reject,
        description="An order whose `customer` (source + external_id, else email) matches nobody: `reject` it "
        "(default) or `stub` a customer with that external id, email and name.",
    )
    unknown_products: Unknown = Field(
        default=Unknown.reject,
        description="A line whose `sku` matches no product: `reject` the order (default) or `stub` a product "
        "(name = sku, price = the line's unit price).",
    )


class FieldMessage(BaseModel):
    field: str = Field(description='Dotted path inside the record, e.g. "lines.0.sku"; "record" for the whole.')
    message: str


class Stub(BaseModel):
    type: Literal["customer", "product"]
    id: int
    reference: str = Field(description='What it was created for: "source:external_id" or the sku.')


class RecordResult(BaseModel):
    index: int = Field(description="The record's position in `records`, from 0 (always 0 for a webhook).")
    status: RecordStatus
    id: int | None = Field(description="The customer's or order's id; null when rejected.")
    errors: list[FieldMessage] = Field(default_factory=list, description="Why the record was rejected.")
    stubs: list[Stub] = Field(default_factory=list, description="Customers and products created as stubs for it.")
    notes: list[str] = Field(default_factory=list, description="Anything else done or left alone, in words.")


class BatchSummary(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class BatchResult(BaseModel):
    results: list[RecordResult]
    summary: BatchSummary
