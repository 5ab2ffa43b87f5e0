"""Turn a batch of raw text columns into typed field columns, vectorised with Polars.

Each field is parsed as a whole column; a value that does not parse becomes a row error
naming the source column, the value and why. Rows with any error are taken out of the
batch (all their errors are reported), the rest go on to the loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import phonenumbers
import polars as pl
from phonenumbers import geocoder

from patron.imports.mapping import ColumnMap, FieldSpec, Mapping, field_spec
from patron.imports.sources import RawBatch, Rejected
from patron.models.enums import ImportKind
from patron.validation import CURRENCIES, normalise_phone

# Tills' clocks drift; anything further ahead than this is a data error (as in the API).
CLOCK_SKEW = timedelta(minutes=10)
MAX_CENTS = 10**12 - 1  # NUMERIC(12,2)
NAIVE_FORMATS = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
]
AWARE_FORMATS = ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"]
DATE_FORMATS = ["%Y-%m-%d"]
TRUE = ["true", "yes", "y", "1", "t", "subscribed", "opted_in"]
FALSE = ["false", "no", "n", "0", "f", "unsubscribed", "not_subscribed", "opted_out", ""]
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Words files use for our enum values, by field.
ENUM_ALIASES = {
    "channel": {
        "web": "online",
        "ecommerce": "online",
        "e_commerce": "online",
        "store": "in_store",
        "pos": "in_store",
        "app": "mobile",
    },
}
COUNTRY_ALIASES = {"EIRE": "IE", "USA": "US", "UK": "GB", "RSA": "ZA", "KOREA": "KR"}


@dataclass
class Converted:
    frame: pl.DataFrame  # `_row` plus one typed column per field present
    rejected: list[Rejected]


@cache
def country_codes() -> dict[str, str]:
    """ISO code and English name (upper-cased) -> ISO code, for the regions phonenumbers knows."""
    table = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        table[region] = region
        name = geocoder._region_display_name(region, "en")
        if name:
            table[name.upper()] = region
    return table | COUNTRY_ALIASES


def _blank_to_null(s: pl.Series) -> pl.Series:
    # A leading apostrophe before a number is a spreadsheet's "keep this as text" guard
    # (Shopify exports ids and postcodes that way), not part of the value.
    s = s.cast(pl.String).str.strip_chars().str.replace(r"^'([+\d])", "$1")
    return pl.select(pl.when(s.str.len_chars() == 0).then(None).otherwise(s)).to_series()


def _raw(batch: RawBatch, mapping: Mapping, field: str) -> tuple[pl.Series | None, str | None]:
    """The field's text: the first filled of its columns, then its default. Also names the column."""
    columns = [c for c, m in mapping.column_maps.items() if m.field == field and c in batch.columns]
    n = len(batch.rows)
    if not columns and field not in mapping.defaults:
        return None, None
    out = pl.Series(field, [None] * n, dtype=pl.String)
    for column in reversed(columns):
        s = _blank_to_null(pl.Series(field, batch.columns[column], dtype=pl.String))
        out = s.fill_null(out) if len(s) else s
    if field in mapping.defaults:
        out = out.fill_null(pl.lit(str(mapping.defaults[field])))
    # Name the column in error reports: the single source column, else the field.
    return out, (columns[0] if len(columns) == 1 else field)


def _money_cents(s: pl.Series, cmap: ColumnMap) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Exact integer cents (half-up at the third decimal), a mask of unparseable values and
    a mask of values whose thousands separators are misplaced (also unparseable)."""
    t = s
    if cmap.currency:
        t = t.str.replace_all(cmap.currency, "", literal=True)
    t = t.str.replace_all(r"[\s$€£¥]", "")
    negative_parens = t.str.contains(r"^\(.*\)$")
    t = pl.select(pl.when(negative_parens).then("-" + t.str.strip_chars("()")).otherwise(t)).to_series()
    thousands = "." if cmap.decimal == "," else ","
    # Thousands separators group whole digits by three: "12,34" is a typo or the other
    # decimal separator, and reading it as 1234 would change the amount silently.
    grouped = rf"^[+-]?\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+(?:{re.escape(cmap.decimal)}\d*)?$"
    misgrouped = (t.str.contains(thousands, literal=True) & ~t.str.contains(grouped)).fill_null(False)
    if cmap.decimal == ",":
        t = t.str.replace_all(".", "", literal=True).str.replace_all(",", ".", literal=True)
    else:
        t = t.str.replace_all(",", "", literal=True)
    parts = t.str.extract_groups(r"^([+-]?)(\d*)(?:\.(\d*))?$").struct.unnest()
    sign, whole, frac = parts.to_series(0), parts.to_series(1), parts.to_series(2)
    matched = sign.is_not_null() & ((whole.str.len_chars() > 0) | (frac.fill_null("").str.len_chars() > 0))
    frac3 = (frac.fill_null("") + "000").str.slice(0, 3)
    whole_cents = pl.select(pl.when(whole.str.len_chars() > 0).then(whole).otherwise(pl.lit("0"))).to_series()
    whole_int = whole_cents.str.slice(0, 12).cast(pl.Int64, strict=False)
    too_long = whole_cents.str.len_chars() > 10
    cents = (
        whole_int * 100
        + frac3.str.slice(0, 2).cast(pl.Int64, strict=False)
        + (frac3.str.slice(2, 1).cast(pl.Int64, strict=False) >= 5).cast(pl.Int64)
    )
    cents = pl.select(pl.when(sign == "-").then(-cents).otherwise(cents)).to_series()
    bad = s.is_not_null() & (~matched.fill_null(False) | too_long.fill_null(False) | misgrouped)
    cents = pl.select(pl.when(bad | s.is_null()).then(None).otherwise(cents)).to_series()
    return cents, bad, misgrouped


def _datetime(s: pl.Series, zone: str, formats: list[str]) -> tuple[pl.Series, pl.Series]:
    """UTC datetimes; a value without an offset is read as local time in `zone`. Also a
    mask of local times that do not exist there (skipped when the clocks went forward)."""
    if formats:
        source = s
        aware = [f for f in formats if "%z" in f or "%:z" in f]
        naive = [f for f in formats if f not in aware]
    else:
        # ISO 8601: accept "Z" and "+0100" as well as "+01:00".
        source = s.str.replace(r"Z$", "+00:00").str.replace(r"([+-]\d\d)(\d\d)$", "$1:$2")
        aware, naive = AWARE_FORMATS, NAIVE_FORMATS
    out = pl.Series(s.name, [None] * len(s), dtype=pl.Datetime("us", "UTC"))
    gap = pl.Series(s.name, [False] * len(s), dtype=pl.Boolean)
    for fmt in aware:
        parsed = source.str.to_datetime(fmt, strict=False, time_unit="us")
        out = out.fill_null(parsed.dt.convert_time_zone("UTC"))
    for fmt in naive:
        parsed = source.str.to_datetime(fmt, strict=False, time_unit="us")
        local = parsed.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        gap = gap | (parsed.is_not_null() & local.is_null())
        out = out.fill_null(local.dt.convert_time_zone("UTC"))
    return out, gap & out.is_null()


def _phone(s: pl.Series, country: str) -> tuple[pl.Series, pl.Series, dict[str, str]]:
    # Per distinct value: phonenumbers has no vectorised form, and numbers repeat little,
    # but customers files are far smaller than order files.
    reasons: dict[str, str] = {}
    table: dict[str, str | None] = {}
    for value in s.drop_nulls().unique().to_list():
        try:
            table[value] = normalise_phone(value, country)
        except ValueError as exc:
            table[value] = None
            reasons[value] = str(exc)
    parsed = s.replace_strict(table, default=None, return_dtype=pl.String) if table else s
    bad = s.is_not_null() & parsed.is_null()
    return parsed, bad, reasons


def convert(batch: RawBatch, mapping: Mapping, kind: ImportKind, *, default_country: str) -> Converted:
    """Typed columns for every field the mapping provides; rows with bad values rejected."""
    n = len(batch.rows)
    rows = pl.Series("_row", batch.rows, dtype=pl.Int64)
    columns: list[pl.Series] = [rows]
    problems: list[pl.DataFrame] = []
    now = datetime.now(UTC)

    def flag(mask: pl.Series, column: str, raw: pl.Series, reason: str | pl.Series) -> None:
        if n == 0 or not mask.any():
            return
        reasons = reason if isinstance(reason, pl.Series) else pl.Series([reason] * n, dtype=pl.String)
        frame = pl.DataFrame({"row": rows, "value": raw, "reason": reasons}).filter(mask)
        problems.append(frame.with_columns(pl.lit(column).alias("column")))

    fields = {m.field for m in mapping.column_maps.values()} | set(mapping.defaults)
    for name in sorted(fields):
        spec = field_spec(kind, name)
        if spec is None:  # "ignore", or checked by Mapping.check_for
            continue
        raw, column = _raw(batch, mapping, name)
        if raw is None:
            continue
        cmap = next((m for c, m in mapping.column_maps.items() if m.field == name and c in batch.columns), None)
        columns.append(_parse(spec, raw, cmap, column or name, mapping, default_country, now, flag))

    frame = pl.DataFrame(columns) if n else pl.DataFrame(columns).clear()
    rejected = list(batch.rejected)
    if problems:
        bad = pl.concat(problems).sort("row")
        rejected.extend(
            Rejected(row=r["row"], column=r["column"], value=_shorten(r["value"]), reason=r["reason"])
            for r in bad.iter_rows(named=True)
        )
        frame = frame.filter(~pl.col("_row").is_in(bad["row"].unique().implode()))
    return Converted(frame=frame, rejected=rejected)


def _parse(spec: FieldSpec, raw, cmap, column, mapping, default_country, now, flag) -> pl.Series:
    name = spec.name
    if spec.type in ("text", "id"):
        out = raw
        if spec.type == "id" and cmap is not None and cmap.whole_number:
            out = out.str.replace(r"^(\d+)\.0*$", "$1")
        if spec.max_length:
            flag(out.str.len_chars() > spec.max_length, column, raw, f"longer than {spec.max_length} characters")
        return out.alias(name)
    if spec.type == "int":
        t = raw.str.replace_all(r"[\s,]", "")
        out = t.cast(pl.Int64, strict=False)
        flag(raw.is_not_null() & out.is_null(), column, raw, "not a whole number")
        return out.alias(name)
    if spec.type == "money":
        cmap = cmap or ColumnMap(field=name)
        cents, bad, misgrouped = _money_cents(raw, cmap)
        thousands = "." if cmap.decimal == "," else ","
        flag(bad & ~misgrouped, column, raw, "not a number")
        flag(
            misgrouped,
            column,
            raw,
            f"not a number: '{thousands}' must separate thousands in groups of three "
            f"(the decimal separator is '{cmap.decimal}')",
        )
        flag(cents.abs() > MAX_CENTS, column, raw, "too large (at most 9,999,999,999.99)")
        if name != "line_total":
            flag(cents < 0, column, raw, "must not be negative")
        return cents.alias(name)
    if spec.type == "date":
        formats = cmap.formats if cmap and cmap.formats else DATE_FORMATS
        out = pl.Series(name, [None] * len(raw), dtype=pl.Date)
        for fmt in formats:
            out = out.fill_null(raw.str.to_date(fmt, strict=False))
        expected = " or ".join(formats)
        flag(raw.is_not_null() & out.is_null(), column, raw, f"not a date (expected {expected})")
        flag(out > now.date(), column, raw, "is in the future")
        return out.alias(name)
    if spec.type == "datetime":
        out, gap = _datetime(raw, mapping.timezone, cmap.formats if cmap else [])
        expected = " or ".join(cmap.formats) if cmap and cmap.formats else "ISO 8601, e.g. 2026-11-23 10:15:00"
        flag(raw.is_not_null() & out.is_null() & ~gap, column, raw, f"not a date and time (expected {expected})")
        flag(gap, column, raw, f"this local time does not exist in {mapping.timezone} (the clocks went forward)")
        flag(out > now + CLOCK_SKEW, column, raw, "is in the future")
        return out.alias(name)
    if spec.type == "bool":
        low = raw.str.to_lowercase().str.replace_all(r"[\s-]", "_")
        out = pl.select(
            pl.when(low.is_in(TRUE)).then(True).when(low.is_in(FALSE)).then(False).otherwise(None)
        ).to_series()
        flag(raw.is_not_null() & out.is_null(), column, raw, "not yes or no")
        return out.alias(name)
    if spec.type == "email":
        out = raw.str.to_lowercase()
        flag(out.is_not_null() & ~out.str.contains(EMAIL).fill_null(True), column, raw, "not an email address")
        flag(out.str.len_chars() > 254, column, raw, "longer than 254 characters")
        return out.alias(name)
    if spec.type == "phone":
        out, bad, reasons = _phone(raw, default_country)
        why = raw.replace_strict(reasons, default="not a phone number", return_dtype=pl.String) if reasons else None
        flag(bad, column, raw, why if why is not None else "not a phone number")
        return out.alias(name)
    if spec.type == "country":
        table = country_codes()
        out = raw.str.to_uppercase().replace_strict(table, default=None, return_dtype=pl.String)
        if name == "customer_country":
            # Only describes a stub customer; a name like "Unspecified" leaves it empty.
            return out.alias(name)
        flag(raw.is_not_null() & out.is_null(), column, raw, "not a country code or English country name")
        return out.alias(name)
    if spec.type == "currency":
        out = raw.str.strip_chars().str.to_uppercase()
        flag(
            out.is_not_null() & ~out.is_in(sorted(CURRENCIES)), column, raw, "not an ISO 4217 currency code (e.g. USD)"
        )
        return out.alias(name)
    if spec.type == "enum":
        out = raw.str.to_lowercase().str.replace_all(r"[\s-]", "_")
        choices = list(spec.choices or ())
        # Only aliases that lead to this field's values: "web" means online for an order's
        # sales channel, but is itself a valid interaction channel.
        aliases = {k: v for k, v in ENUM_ALIASES.get(name, {}).items() if v in choices and k not in choices}
        if aliases:
            out = out.replace(aliases)
        flag(out.is_not_null() & ~out.is_in(choices), column, raw, f"must be one of {', '.join(choices)}")
        return out.alias(name)
    raise AssertionError(f"unhandled field type {spec.type}")


def _shorten(value: str | None) -> str | None:
    return value if value is None or len(value) <= 500 else value[:497] + "..."
