"""What a file's columns mean: the fields each kind of import accepts, the mapping file
format (YAML or JSON) and the built-in presets."""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patron.errors import PatronError, ValidationFailed
from patron.models.enums import (
    Direction,
    Gender,
    ImportKind,
    InteractionChannel,
    InteractionKind,
    OrderStatus,
    ProductTier,
    SalesChannel,
)
from patron.validation import error_list, load_yaml

FieldType = Literal[
    "text", "id", "int", "money", "date", "datetime", "bool", "email", "phone", "country", "currency", "enum"
]


class InvalidMapping(ValidationFailed):
    """A mapping, preset or file layout that cannot be used: one message for people, and
    the field-level errors (the message itself, under `field`, when there are none)."""

    def __init__(self, message: str, *, errors: list[dict[str, str]] | None = None, field: str = ""):
        errors = errors or [{"field": field, "message": message}]
        PatronError.__init__(self, message, detail=errors)
        self.errors = errors


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""


def _enum(name: str, enum_cls, help: str = "") -> FieldSpec:
    return FieldSpec(name, "enum", choices=tuple(m.value for m in enum_cls), help=help)


_CUSTOMER_REF = (
    FieldSpec("customer_id", "id", 100, help="the customer's id in the source system"),
    FieldSpec("customer_email", "email", 254),
    FieldSpec("customer_first_name", "text", 100),
    FieldSpec("customer_last_name", "text", 100),
    FieldSpec("customer_name", "text", 200, help="full name, split into first and last"),
    FieldSpec("customer_country", "country"),
)

FIELDS: dict[ImportKind, tuple[FieldSpec, ...]] = {
    ImportKind.customers: (
        FieldSpec("customer_id", "id", 100, help="the customer's id in the source system"),
        FieldSpec("email", "email", 254),
        FieldSpec("phone", "phone"),
        FieldSpec("first_name", "text", 100),
        FieldSpec("last_name", "text", 100),
        FieldSpec("name", "text", 200, help="full name, split into first and last"),
        FieldSpec("birthday", "date"),
        _enum("gender", Gender),
        FieldSpec("address_line", "text", 200),
        FieldSpec("city", "text", 100),
        FieldSpec("region", "text", 100),
        FieldSpec("country", "country"),
        FieldSpec("postal_code", "text", 20),
        FieldSpec("acquired_at", "date"),
        FieldSpec("acquisition_channel", "text", 50),
        FieldSpec("language", "text", 35),
        FieldSpec("email_marketing", "bool", help="consent to marketing email (yes/no)"),
        FieldSpec("sms_marketing", "bool", help="consent to marketing SMS (yes/no)"),
    ),
    ImportKind.products: (
        FieldSpec("sku", "id", 64),
        FieldSpec("name", "text", 200),
        FieldSpec("category_path", "text", 300, help="'/'-separated, e.g. Home/Kitchen/Mugs"),
        FieldSpec("brand", "text", 100),
        _enum("tier", ProductTier),
        FieldSpec("price", "money"),
        FieldSpec("unit_cost", "money"),
        FieldSpec("launched_on", "date"),
        FieldSpec("is_active", "bool"),
    ),
    ImportKind.orders: (
        FieldSpec("order_id", "id", 100, help="the order's id in the source system; rows of one order share it"),
        *_CUSTOMER_REF,
        FieldSpec("placed_at", "datetime"),
        _enum("channel", SalesChannel),
        FieldSpec("store_code", "id", 32),
        _enum("status", OrderStatus),
        FieldSpec("currency", "currency", help="ISO 4217 code, e.g. USD"),
        FieldSpec("subtotal", "money"),
        FieldSpec("discount", "money"),
        FieldSpec("shipping_fee", "money"),
        FieldSpec("tax", "money"),
        FieldSpec("total", "money"),
        FieldSpec("sku", "id", 64, help="one row per order line when given"),
        FieldSpec("product_name", "text", 200),
        FieldSpec("quantity", "int"),
        FieldSpec("unit_price", "money"),
        FieldSpec("line_discount", "money"),
        FieldSpec("line_total", "money", help="what the line cost, when the file has no unit price"),
    ),
    ImportKind.interactions: (
        FieldSpec("interaction_id", "id", 100, help="the source's id; a hash of the row when absent"),
        *_CUSTOMER_REF[:1],
        FieldSpec("occurred_at", "datetime"),
        _enum("kind", InteractionKind),
        _enum("channel", InteractionChannel),
        _enum("direction", Direction),
        FieldSpec("subject", "text", 300),
        FieldSpec("body", "text", 10_000),
    ),
}

# At least one field of each group must be mapped (or defaulted).
REQUIRED: dict[ImportKind, tuple[tuple[str, ...], ...]] = {
    ImportKind.customers: (("customer_id", "email"),),
    ImportKind.products: (("sku",),),
    ImportKind.orders: (("order_id",), ("customer_id", "customer_email"), ("placed_at",)),
    ImportKind.interactions: (("customer_id",), ("occurred_at",), ("kind",), ("channel",)),
}


def field_spec(kind: ImportKind, name: str) -> FieldSpec | None:
    return next((f for f in FIELDS[kind] if f.name == name), None)


class ColumnMap(BaseModel):
    """How to read one source column."""

    model_config = ConfigDict(extra="forbid")

    field: str
    format: str | list[str] | None = Field(
        default=None, description="strptime format(s) for dates, e.g. '%d/%m/%Y %H:%M'"
    )
    decimal: Literal[".", ","] = Field(default=".", description="decimal separator of numbers")
    currency: str | None = Field(default=None, max_length=5, description="symbol or code to strip, e.g. '£'")
    whole_number: bool = Field(default=False, description="ids written as numbers: '13085.0' means '13085'")

    @property
    def formats(self) -> list[str]:
        if self.format is None:
            return []
        return [self.format] if isinstance(self.format, str) else list(self.format)


class Mapping(BaseModel):
    """A mapping file: how to read the file and which column is which field."""

    model_config = ConfigDict(extra="forbid")

    kind: ImportKind | None = None
    source: str = Field(
        default="import", min_length=1, max_length=50, description="name of the system the external ids belong to"
    )
    format: Literal["csv", "whitespace", "jsonl", "parquet"] | None = None
    encoding: str = "auto"
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    header: bool = True
    column_names: list[str] | None = Field(default=None, description="names for a file without a header")
    # Several columns may map to one field: the first one filled in a row wins.
    columns: dict[str, str | ColumnMap] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict, description="field -> value for every row")
    timezone: str = Field(default="UTC", description="zone of times written without an offset")
    unknown_customers: Literal["stub", "reject"] = "reject"
    unknown_products: Literal["stub", "reject"] = "reject"
    returns_prefix: str | None = Field(
        default=None, max_length=10, description="order ids starting with this are returns (e.g. 'C')"
    )
    order_id_template: str | None = Field(
        default=None, description="build the order id when the file has none, e.g. 'cdnow-{row}'"
    )

    @field_validator("columns", mode="after")
    @classmethod
    def _as_maps(cls, value: dict[str, str | ColumnMap]) -> dict[str, str | ColumnMap]:
        return {k: (ColumnMap(field=v) if isinstance(v, str) else v) for k, v in value.items()}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone like 'Europe/London'") from None
        return value

    @property
    def column_maps(self) -> dict[str, ColumnMap]:
        return self.columns  # type: ignore[return-value]  # normalised by _as_maps

    def check_for(self, kind: ImportKind) -> None:
        """Every mapped field exists for `kind`, defaults are known fields, required ones are there."""
        errors = []
        for column, cmap in self.column_maps.items():
            if cmap.field == "ignore":
                continue
            if field_spec(kind, cmap.field) is None:
                known = ", ".join(f.name for f in FIELDS[kind])
                errors.append(
                    {"field": f"columns.{column}", "message": f"unknown field {cmap.field!r} for {kind}; use {known}"}
                )
        for name in self.defaults:
            if field_spec(kind, name) is None:
                errors.append({"field": f"defaults.{name}", "message": f"unknown field {name!r} for {kind}"})
        if errors:
            raise InvalidMapping("the mapping does not fit this kind of import", errors=errors)

    def missing_required(self, kind: ImportKind, present_columns: list[str]) -> list[str]:
        """Required field groups that neither a column present in the file nor a default provides."""
        provided = {cmap.field for col, cmap in self.column_maps.items() if col in present_columns}
        provided |= set(self.defaults)
        if kind == ImportKind.orders and self.order_id_template:
            provided.add("order_id")
        return [" or ".join(group) for group in REQUIRED[kind] if not provided.intersection(group)]


def parse_mapping(data: Any, *, origin: str = "mapping") -> Mapping:
    if not isinstance(data, dict):
        raise InvalidMapping(f"{origin} must be a mapping of settings (a YAML/JSON object)")
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        raise InvalidMapping(f"{origin} is not valid", errors=error_list(exc)) from None


def load_mapping(path: Path) -> Mapping:
    """Read a YAML or JSON mapping file (JSON is YAML, so one parser reads both)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidMapping(f"cannot read the mapping file {path}: {exc.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidMapping(f"{path.name} is not valid YAML or JSON: {exc}") from None
    return parse_mapping(data, origin=path.name)


PRESETS: dict[str, dict[ImportKind, str]] = {
    "cdnow": {ImportKind.orders: "cdnow.yaml"},
    "online-retail": {ImportKind.orders: "online_retail.yaml"},
    "shopify": {ImportKind.customers: "shopify_customers.yaml", ImportKind.orders: "shopify_orders.yaml"},
}


def preset(name: str, kind: ImportKind) -> Mapping:
    if name not in PRESETS:
        raise InvalidMapping(f"unknown preset {name!r}; choose from {', '.join(sorted(PRESETS))}", field="preset")
    files = PRESETS[name]
    if kind not in files:
        kinds = ", ".join(sorted(files))
        raise InvalidMapping(f"the {name} preset reads {kinds}, not {kind}", field="preset")
    text = resources.files("patron.imports").joinpath("presets", files[kind]).read_text(encoding="utf-8")
    return parse_mapping(load_yaml(text), origin=f"preset {name}")


def automatic(kind: ImportKind, columns: list[str]) -> Mapping:
    """A mapping for a file whose columns are already named like the fields (any case, spaces or dashes)."""
    names = {f.name for f in FIELDS[kind]}
    cols = {}
    for column in columns:
        key = column.strip().lower().replace(" ", "_").replace("-", "_")
        if key in names:
            cols[column] = key
    return Mapping(kind=kind, columns=cols)


def mapping_json(mapping: Mapping) -> dict[str, Any]:
    return json.loads(mapping.model_dump_json(exclude_defaults=False))
