from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from patron.customers.schemas import Country, PastDate
from patron.models.enums import ProductTier, StoreKind
from patron.validation import InputModel, Money, reject_nulls

Price = Annotated[Money, Field(ge=0)]


def _category(value: str) -> str:
    # "Kids / Toys/ " -> "Kids/Toys": one spelling per path so prefix queries work.
    parts = [p.strip() for p in value.split("/")]
    if any(not p for p in parts) and value.strip():
        raise ValueError("category_path has an empty level (write it like 'Kids/Toys/Puzzles')")
    return "/".join(parts) if value.strip() else ""


class _ProductFields(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    category_path: Annotated[str, BeforeValidator(lambda v: v if v is None else str(v))] = Field(
        default="", max_length=300
    )
    brand: str | None = Field(default=None, max_length=100)
    tier: ProductTier | None = None
    price: Price
    unit_cost: Price | None = None
    launched_on: date | None = None
    is_active: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("category_path")
    @classmethod
    def _clean_category(cls, value: str) -> str:
        return _category(value)


class ProductCreate(_ProductFields):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")


class ProductUpdate(_ProductFields):
    name: str = Field(default=None, min_length=1, max_length=200)
    price: Price = None

    @model_validator(mode="after")
    def _no_nulls(self):
        reject_nulls(self, "name", "price")
        return self


class Product(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    category_path: str
    brand: str | None
    tier: ProductTier | None
    price: Decimal
    unit_cost: Decimal | None
    launched_on: date | None
    is_active: bool
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[Product]
    next_cursor: str | None


class StoreCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=32, pattern=r"^\S+$")
    name: str = Field(min_length=1, max_length=200)
    kind: StoreKind = StoreKind.shop
    city: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    country: Country = None
    postal_code: str | None = Field(default=None, max_length=20)
    opened_on: PastDate = None


class Store(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    kind: StoreKind
    city: str | None
    region: str | None
    country: str | None
    postal_code: str | None
    opened_on: date | None
