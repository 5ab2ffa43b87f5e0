"""Customer payloads. Every field is checked here so the API, UI forms and importers
give the same field-named errors."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from patron.models.enums import (
    AgeBand,
    ConsentPurpose,
    ConsentStatus,
    ContactChannel,
    Gender,
    IncomeBand,
    MaritalStatus,
)
from patron.settings import get_settings
from patron.validation import FieldError, InputModel, Money, normalise_name, normalise_phone

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
_TIME_ZONES = frozenset(zoneinfo.available_timezones())


def _blank_to_none(value: Any) -> Any:
    # HTML forms and CSV files send "" for "not given".
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


def _email(value: str | None) -> str | None:
    return value.lower() if value else value


def _phone(value: str | None) -> str | None:
    return normalise_phone(value, get_settings().default_country) if value else value


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if code not in _COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _language(value: str | None) -> str | None:
    if value is not None and not _LANGUAGE.match(value):
        raise ValueError(f"{value!r} is not a language tag like 'en' or 'pt-BR'")
    return value


def _time_zone(value: str | None) -> str | None:
    if value is not None and value not in _TIME_ZONES:
        raise ValueError(f"{value!r} is not an IANA time zone like 'Europe/Paris'")
    return value


def _not_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("must not be in the future")
    return value


def _tags(value: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in value:
        t = tag.strip().lower()
        if t:
            seen[t] = None
    return list(seen)


def Text(max_length: int):
    """Optional text: blank means not given; the length limit applies to strings only."""
    return Annotated[Annotated[str, Field(max_length=max_length)] | None, BeforeValidator(_blank_to_none)]


Name = Annotated[str, Field(max_length=100), AfterValidator(normalise_name)]
Email = Annotated[EmailStr | None, BeforeValidator(_blank_to_none), AfterValidator(_email)]
Phone = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_phone)]
Country = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_country)]
Language = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_language)]
TimeZone = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_time_zone)]
PastDate = Annotated[date | None, BeforeValidator(_blank_to_none), AfterValidator(_not_future)]
MoneyIn = Annotated[Annotated[Money, Field(ge=0)] | None, BeforeValidator(_blank_to_none)]
Tags = Annotated[list[Annotated[str, Field(max_length=50)]], Field(max_length=50), AfterValidator(_tags)]
ExternalIds = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=50)], Annotated[str, Field(min_length=1, max_length=100)]],
    Field(max_length=20, description='The customer\'s id in other systems, by source: {"shop": "1001"}.'),
]


def _opt(enum_cls):
    return Annotated[enum_cls | None, BeforeValidator(_blank_to_none)]


class ConsentChange(InputModel):
    """One consent decision to append to the history."""

    model_config = ConfigDict(extra="forbid")

    channel: ContactChannel
    purpose: ConsentPurpose = ConsentPurpose.marketing
    status: ConsentStatus
    source: str = Field(default="api", min_length=1, max_length=50)
    note: str | None = Field(default=None, max_length=500)


class Consent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: ContactChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    source: str
    note: str | None = None
    recorded_at: datetime


class _CustomerFields(InputModel):
    """Every writable field; used by create (defaults) and update (all optional)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: Name = ""
    last_name: Name = ""
    email: Email = None
    phone: Phone = None
    birthday: PastDate = None
    gender: _opt(Gender) = None
    address_line: Text(200) = None
    city: Text(100) = None
    region: Text(100) = None
    country: Country = None
    postal_code: Text(20) = None
    birth_year: Annotated[
        Annotated[int, Field(ge=1900, le=date.today().year)] | None, BeforeValidator(_blank_to_none)
    ] = None
    age_band: _opt(AgeBand) = None
    income_band: _opt(IncomeBand) = None
    marital_status: _opt(MaritalStatus) = None
    household_size: Annotated[Annotated[int, Field(ge=1, le=30)] | None, BeforeValidator(_blank_to_none)] = None
    children: Annotated[Annotated[int, Field(ge=0, le=20)] | None, BeforeValidator(_blank_to_none)] = None
    interests: Tags = Field(default_factory=list)
    acquired_at: PastDate = None
    acquisition_channel: Text(50) = None
    acquisition_cost: MoneyIn = None
    preferred_channel: _opt(ContactChannel) = None
    language: Language = None
    time_zone: TimeZone = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _small_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 100:
            raise ValueError("at most 100 custom attributes")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.birthday and self.birth_year and self.birthday.year != self.birth_year:
            raise FieldError("birth_year", f"does not match birthday ({self.birthday.year})")
        if self.household_size is not None and self.children is not None and self.children >= self.household_size:
            raise FieldError("children", "must be fewer than household_size")
        return self


class CustomerCreate(_CustomerFields):
    consents: list[ConsentChange] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _someone(self):
        if not (self.first_name or self.last_name or self.email or self.phone or self.external_ids):
            raise ValueError("give at least a name, an email, a phone or an external id")
        return self


class CustomerUpdate(_CustomerFields):
    """Partial update: only the fields sent are changed (exclude_unset)."""


class Customer(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    birthday: date | None
    gender: Gender | None
    address_line: str | None
    city: str | None
    region: str | None
    country: str | None
    postal_code: str | None
    birth_year: int | None
    age_band: AgeBand | None
    income_band: IncomeBand | None
    marital_status: MaritalStatus | None
    household_size: int | None
    children: int | None
    interests: list[str]
    acquired_at: date | None
    acquisition_channel: str | None
    acquisition_cost: Decimal | None
    preferred_channel: ContactChannel | None
    language: str | None
    time_zone: str | None
    attributes: dict[str, Any]
    external_ids: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @field_validator("external_ids", mode="before")
    @classmethod
    def _ids_as_dict(cls, value):
        if isinstance(value, list):
            return {x.source: x.external_id for x in value}
        return value


class CustomerPage(BaseModel):
    items: list[Customer]
    next_cursor: str | None
