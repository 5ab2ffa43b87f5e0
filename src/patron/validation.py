"""Shared input normalisation and the bridge from Pydantic errors to ValidationFailed."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, NoReturn

import phonenumbers
import yaml
from babel.numbers import list_currencies
from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from patron.errors import InvalidInput, ValidationFailed


class FieldError(ValueError):
    """Raised by a model validator to blame one field for a cross-field rule."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def error_list(exc) -> list[dict[str, str]]:
    """Pydantic/FastAPI errors as [{field, message}], the field a dotted path like
    'lines.0.quantity' (without the 'body'/'query'/'path' prefix)."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        msg = err["msg"]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc.append(cause.field)
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "message": msg})
    return out


def raise_validation(exc: ValidationError) -> NoReturn:
    raise ValidationFailed(error_list(exc)) from exc


def normalise_phone(value: str, default_country: str) -> str:
    """Parse a phone number as written by a person and return it in E.164.

    Raises ValueError with a readable reason (Pydantic turns it into a field error).
    """
    try:
        parsed = phonenumbers.parse(value, None if value.strip().startswith("+") else default_country)
    except phonenumbers.NumberParseException as exc:
        reason = str(exc).split(") ", 1)[-1].rstrip(".")
        raise ValueError(f"not a phone number: {reason}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def canonical_email(email: str) -> str:
    """The mailbox an address reaches: lower-cased, +tag removed, Gmail dots and googlemail.com folded.

    identity/repository.py computes the same in SQL; keep the two in step.
    """
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at:
        return email
    untagged = local.split("+", 1)[0]
    local = untagged or local  # "+x@shop.example" has no tag to remove, only a local part
    if domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


# Lower-case when they join a surname ("van der Berg", "da Silva"), not when they are all of it.
_NAME_PARTICLES = frozenset(
    {"al", "bin", "da", "das", "de", "del", "della", "der", "di", "do", "dos", "du", "la", "le", "ten", "ter", "van",
     "von", "zu"}
)  # fmt: skip
_NAME_SEPARATORS = re.compile(r"([-'’])")


def normalise_name(name: str) -> str:
    """Strip and collapse whitespace; title-case a name typed all in lower or upper case.

    Mixed case is taken as the person's own spelling ("DeVito", "McKenzie") and kept.
    """
    name = " ".join(name.split())
    if not (name.islower() or name.isupper()):
        return name
    words = [_lower(w) for w in name.split(" ")]
    out = []
    for i, word in enumerate(words):
        if word in _NAME_PARTICLES and i < len(words) - 1:
            out.append(word)
        else:
            out.append("".join(_capitalise(part) for part in _NAME_SEPARATORS.split(word)))
    return " ".join(out)


def _lower(text: str) -> str:
    # Per character, skipping the few whose case mapping changes length ("İ" -> "i̇").
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


def _capitalise(part: str) -> str:
    if part.startswith("mc") and len(part) > 2:
        return "Mc" + _capitalise(part[2:])
    first = part[:1].upper()
    return (first if len(first) == 1 else part[:1]) + part[1:]


def reject_nulls(model, *fields: str) -> None:
    """In a partial update, a field that was sent must not be null when the column requires a value."""
    for field in fields:
        if field in model.model_fields_set and getattr(model, field) is None:
            raise FieldError(field, "cannot be null")


CENT = Decimal("0.01")

# Money as accepted from outside: at most 2 decimals, stored and echoed as cents ("12.50").
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2), AfterValidator(lambda d: d.quantize(CENT))]

# ISO 4217 codes as CLDR (through Babel) knows them, so 'ZZZ' is refused and every accepted
# code can be shown with its symbol.
CURRENCIES = frozenset(list_currencies())


def check_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
    return code


Currency = Annotated[str, AfterValidator(check_currency)]


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases: a few lines of nested `*a` references (a "billion
    laughs" file) would otherwise expand to gigabytes in memory."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """YAML (or JSON) from outside: plain data only, no aliases; raises yaml.YAMLError."""
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader: plain data types only


def to_utc(value: datetime) -> datetime:
    """An aware time in UTC; a naive one, or one that leaves years 1-9999 in UTC, is refused."""
    if value.tzinfo is None:
        raise ValueError("must include a time zone, e.g. 2026-11-23T10:15:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 is in year 0 in UTC: no date type can hold it.
        raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None


# A time from outside (a body field or a query filter), as stored: aware and in UTC.
AwareDateTime = Annotated[datetime, AfterValidator(to_utc)]


# Ids are INTEGER columns: 32-bit on PostgreSQL, so larger values are invalid input, not 500s.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


NUL_MESSAGE = "must not contain NUL (\\x00) characters"
SURROGATE_MESSAGE = "must not contain a lone surrogate (\\ud800-\\udfff): not a character; send valid UTF-16 pairs"
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, if it cannot: PostgreSQL text holds no NUL, and a lone
    surrogate (JSON allows "\\ud800") has no UTF-8 form on any backend."""
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def refuse_nul(pairs) -> None:
    """Raise ValidationFailed naming every (name, value) pair whose name or value cannot be stored."""
    bad = []
    for name, value in pairs:
        problem = text_problem(name) or (text_problem(value) if isinstance(value, str) else None)
        if problem:
            bad.append({"field": name if not _SURROGATE.search(name) else "?", "message": problem})
    if bad:
        raise ValidationFailed(bad)


def find_bad_text(value, path: str = "") -> tuple[str, str] | None:
    """(dotted path, why) of the first string or key that cannot be stored (text_problem), if any."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := text_problem(key)):
                return _SURROGATE.sub("?", sub), problem
            if (found := find_bad_text(item, sub)) is not None:
                return found
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if (found := find_bad_text(item, f"{path}.{i}" if path else str(i))) is not None:
                return found
    return None


class InputModel(BaseModel):
    """Base of every payload accepted from outside: refuses text that cannot be stored
    (NUL characters, lone surrogates) anywhere in it."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data):
        if (found := find_bad_text(data)) is not None:
            raise FieldError(*found)
        return data


def read_csv_text(text: str) -> tuple[list[str], list[tuple[int, dict[str | None, Any]]]]:
    """A small uploaded CSV (a list of customers, a member file): its header's column names,
    stripped and lower-cased, and (row number, row) for each row, numbered as in the file
    (the header is row 1). A row with more fields than the header keeps them under None.

    Line ends are left to the csv module (a bare carriage return inside a file is data, not
    a crash), and a file it cannot read at all is refused with InvalidInput.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        columns = [(c or "").strip().lower() for c in (reader.fieldnames or [])]
        reader.fieldnames = columns
        return columns, list(enumerate(reader, start=2))
    except csv.Error as exc:  # a field past the module's size limit, say
        raise InvalidInput(f"the file cannot be read as CSV: {exc}", detail={"field": "file"}) from None
