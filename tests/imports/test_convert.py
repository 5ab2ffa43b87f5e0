"""The converter: raw text columns to typed fields; every bad value is reported with its
row, column, value and reason, and its row leaves the batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.imports.convert import convert
from patron.imports.mapping import Mapping
from patron.imports.sources import RawBatch, Rejected
from patron.models.enums import ImportKind


def run(columns: dict[str, list[str | None]], mapping: dict, kind: str = "orders", first_row: int = 2):
    n = len(next(iter(columns.values())))
    series = {name: pl.Series(name, values, dtype=pl.String) for name, values in columns.items()}
    batch = RawBatch(columns=series, rows=list(range(first_row, first_row + n)), records=n)
    return convert(batch, Mapping.model_validate(mapping), ImportKind(kind), default_country="US")


def one_field(values: list[str | None], spec, kind: str = "orders", **mapping):
    """Convert one source column "src"; returns ({row: value} accepted, {row: Rejected})."""
    out = run({"src": values}, {"columns": {"src": spec}, **mapping}, kind)
    field = spec if isinstance(spec, str) else spec["field"]
    accepted = dict(zip(out.frame["_row"].to_list(), out.frame[field].to_list(), strict=True))
    return accepted, {r.row: r for r in out.rejected}


# -- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cents"),
    [
        ("12.34", 1234),
        ("12", 1200),
        (".5", 50),
        ("5.", 500),
        ("+3", 300),
        ("0", 0),
        ("1,234.56", 123456),
        ("1,234,567.89", 123456789),
        ("$1,234.50", 123450),
        ("£ 3.00", 300),
        ("€12", 1200),
        ("¥7", 700),
        ("  9.99  ", 999),
        ("0.004", 0),
        ("0.005", 1),  # half-up at the third decimal
        ("2.675", 268),  # binary floats would give 2.67
        ("1.0049999", 100),
        ("9999999999.99", 999_999_999_999),
    ],
)
def test_money_parses_to_exact_cents(raw, cents):
    accepted, rejected = one_field([raw], "subtotal")
    assert rejected == {}
    assert accepted == {2: cents}


@pytest.mark.parametrize(
    ("raw", "cents"),
    [("1.234,56", 123456), ("12,5", 1250), ("1 234,56", 123456), ("0,005", 1), ("€ 3,10", 310)],
)
def test_money_with_a_decimal_comma(raw, cents):
    accepted, rejected = one_field([raw], {"field": "total", "decimal": ","})
    assert rejected == {} and accepted == {2: cents}


def test_money_with_a_currency_code_to_strip():
    accepted, rejected = one_field(["CHF 12.50", "12.50CHF"], {"field": "total", "currency": "CHF"})
    assert rejected == {} and accepted == {2: 1250, 3: 1250}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "not a number"),
        ("1.2.3", "not a number"),
        ("-", "not a number"),
        ("1e5", "not a number"),
        ("12 EUR", "not a number"),
        ("0x10", "not a number"),
        ("12,34", "not a number: ',' must separate thousands in groups of three (the decimal separator is '.')"),
        ("1,2345.00", "not a number: ',' must separate thousands in groups of three (the decimal separator is '.')"),
        ("10000000000", "not a number"),
        ("(12.50)", "must not be negative"),
        ("-0.01", "must not be negative"),
    ],
)
def test_bad_money_is_rejected_with_its_reason(raw, reason):
    accepted, rejected = one_field(["1.00", raw], "total")
    assert accepted == {2: 100}
    assert rejected == {3: Rejected(row=3, column="src", value=raw, reason=reason)}


def test_a_dot_in_a_decimal_comma_column_must_group_thousands():
    accepted, rejected = one_field(["12.34", "1.234"], {"field": "total", "decimal": ","})
    assert accepted == {3: 123400}
    assert rejected[2].reason == (
        "not a number: '.' must separate thousands in groups of three (the decimal separator is ',')"
    )


def test_parentheses_are_negative_where_negatives_are_allowed():
    accepted, rejected = one_field(["(12.50)", "-3", "4"], "line_total")
    assert rejected == {} and accepted == {2: -1250, 3: -300, 4: 400}


@settings(max_examples=300, deadline=None)
@given(
    whole=st.integers(min_value=0, max_value=10**9),
    frac=st.text(alphabet="0123456789", max_size=6),
    thousands=st.booleans(),
    symbol=st.sampled_from(["", "$", "£", "€ "]),
)
def test_money_equals_decimal_half_up(whole, frac, thousands, symbol):
    text = f"{whole:,}" if thousands else str(whole)
    raw = f"{symbol}{text}" + (f".{frac}" if frac else "")
    expected = Decimal(f"{whole}.{frac or '0'}").quantize(Decimal("0.01"), ROUND_HALF_UP)
    accepted, rejected = one_field([raw], "subtotal")
    assert rejected == {}
    assert accepted == {2: int(expected * 100)}


@settings(max_examples=200, deadline=None)
@given(raw=st.text(max_size=12))
def test_money_never_crashes_and_never_drops_a_row(raw):
    out = run({"src": [raw, "1"]}, {"columns": {"src": "tax"}})
    kept = set(out.frame["_row"].to_list())
    assert 3 in kept
    assert (2 in kept) != any(r.row == 2 for r in out.rejected)


# -- dates and times ----------------------------------------------------------------------------


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05T14:22:10Z", utc(2024, 3, 5, 14, 22, 10)),
        ("2024-03-05 14:22:10+01:00", utc(2024, 3, 5, 13, 22, 10)),
        ("2024-03-05T14:22:10.250-0500", utc(2024, 3, 5, 19, 22, 10, 250000)),
        ("2024-03-05T14:22-05:00", utc(2024, 3, 5, 19, 22)),
        ("2024-07-05 14:22:10", utc(2024, 7, 5, 13, 22, 10)),  # naive: London summer time
        ("2024-01-05 14:22", utc(2024, 1, 5, 14, 22)),  # naive: London winter time
        ("2024-01-05", utc(2024, 1, 5)),
        ("2024-10-27 01:30", utc(2024, 10, 27, 0, 30)),  # ambiguous hour: the earlier one
    ],
)
def test_datetimes_with_offsets_z_or_naive_in_the_mapping_time_zone(raw, expected):
    accepted, rejected = one_field([raw], "placed_at", timezone="Europe/London")
    assert rejected == {}
    assert accepted == {2: expected}


def test_datetimes_with_explicit_formats():
    spec = {"field": "placed_at", "format": ["%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S %z"]}
    accepted, rejected = one_field(
        ["05/03/2024 14:22", "2024-03-05 14:22:10 -0500", "2024-03-05"], spec, timezone="America/New_York"
    )
    assert accepted == {2: utc(2024, 3, 5, 19, 22), 3: utc(2024, 3, 5, 19, 22, 10)}
    assert rejected[4].reason == "not a date and time (expected %d/%m/%Y %H:%M or %Y-%m-%d %H:%M:%S %z)"
    assert (rejected[4].column, rejected[4].value) == ("src", "2024-03-05")


def test_bad_datetimes_are_rejected_with_their_reasons():
    soon = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    values = ["garbage", "2024-02-30 10:00", "2024-03-31 01:30", later, soon, "05/03/2024"]
    accepted, rejected = one_field(values, "placed_at", timezone="Europe/London")
    iso = "not a date and time (expected ISO 8601, e.g. 2026-11-23 10:15:00)"
    assert {r: (e.value, e.reason) for r, e in rejected.items()} == {
        2: ("garbage", iso),
        3: ("2024-02-30 10:00", iso),
        4: ("2024-03-31 01:30", "this local time does not exist in Europe/London (the clocks went forward)"),
        5: (later, "is in the future"),
        7: ("05/03/2024", iso),
    }
    assert list(accepted) == [6]  # a few minutes ahead is clock skew, not an error


def test_dates_with_formats_and_future_dates():
    spec = {"field": "birthday", "format": ["%d/%m/%Y", "%Y-%m-%d"]}
    # Two days ahead of today in UTC, the day the import judges by: the local date (behind UTC in
    # the Americas' evenings) plus one, or UTC's tomorrow read just before midnight, can be today.
    later = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    accepted, rejected = one_field(["03/02/1990", "1990-02-03", "31/02/1990", later], spec, "customers")
    assert accepted == {2: date(1990, 2, 3), 3: date(1990, 2, 3)}
    assert rejected[4].reason == "not a date (expected %d/%m/%Y or %Y-%m-%d)"
    assert rejected[5].reason == "is in the future"


# -- enums, booleans, numbers, ids ---------------------------------------------------------------


def test_enum_aliases_and_case():
    values = ["web", "Web", "E-commerce", "in-store", "POS", "app", "Online", "phone", "fax"]
    accepted, rejected = one_field(values, "channel")
    assert list(accepted.values()) == [
        "online",
        "online",
        "online",
        "in_store",
        "in_store",
        "mobile",
        "online",
        "phone",
    ]
    assert rejected == {
        10: Rejected(row=10, column="src", value="fax", reason="must be one of in_store, online, mobile, phone")
    }


def test_status_enum():
    accepted, rejected = one_field(["Placed", "partially returned", "shipped"], "status")
    assert accepted == {2: "placed", 3: "partially_returned"}
    assert rejected[4].reason.startswith("must be one of ")


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("yes", True),
        ("Y", True),
        ("TRUE", True),
        ("1", True),
        ("opted-in", True),
        ("subscribed", True),
        ("no", False),
        ("False", False),
        ("0", False),
        ("not subscribed", False),
        ("opted_out", False),
    ],
)
def test_booleans(raw, value):
    accepted, rejected = one_field([raw], "email_marketing", "customers")
    assert rejected == {} and accepted == {2: value}


def test_a_non_boolean_is_rejected():
    _, rejected = one_field(["maybe"], "email_marketing", "customers")
    assert rejected == {2: Rejected(row=2, column="src", value="maybe", reason="not yes or no")}


def test_quantities_are_whole_numbers():
    accepted, rejected = one_field(["2", " 3 ", "1,000", "-2", "1.5", "two"], "quantity")
    assert accepted == {2: 2, 3: 3, 4: 1000, 5: -2}  # negatives are the loader's to refuse
    assert {r: e.reason for r, e in rejected.items()} == {6: "not a whole number", 7: "not a whole number"}


def test_ids_written_as_numbers():
    accepted, rejected = one_field(
        ["13085.0", "13085", "13085.00", "1.5", "A-7"], {"field": "customer_id", "whole_number": True}
    )
    assert rejected == {}
    assert list(accepted.values()) == ["13085", "13085", "13085", "1.5", "A-7"]


def test_text_longer_than_the_field_is_rejected():
    accepted, rejected = one_field(["x" * 64, "x" * 65], "sku")
    assert list(accepted) == [2]
    assert rejected[3].reason == "longer than 64 characters"
    assert rejected[3].value == "x" * 65


def test_emails_are_lower_cased_and_checked():
    accepted, rejected = one_field(["Ann@Shop.Example", "not-an-email", "a@b"], "customer_email")
    assert accepted == {2: "ann@shop.example"}
    assert {r: e.reason for r, e in rejected.items()} == {3: "not an email address", 4: "not an email address"}


def test_countries_by_code_name_or_alias():
    accepted, rejected = one_field(["gb", "United Kingdom", "EIRE", "USA", "Atlantis"], "country", "customers")
    assert accepted == {2: "GB", 3: "GB", 4: "IE", 5: "US"}
    assert rejected[6].reason == "not a country code or English country name"


def test_currencies_are_iso_4217_codes():
    accepted, rejected = one_field(["eur", " GBP ", "zzz", "US$"], "currency")
    assert accepted == {2: "EUR", 3: "GBP"}
    assert {row: r.reason for row, r in rejected.items()} == {
        4: "not an ISO 4217 currency code (e.g. USD)",
        5: "not an ISO 4217 currency code (e.g. USD)",
    }


def test_an_unknown_customer_country_is_left_empty_not_rejected():
    accepted, rejected = one_field(["Unspecified", "France"], "customer_country")
    assert rejected == {} and accepted == {2: None, 3: "FR"}


# -- the batch as a whole -----------------------------------------------------------------------


def test_blank_values_are_null_and_defaults_fill_them():
    out = run(
        {"ch": ["", "  ", "store"], "cur": ["", "EUR", None]},
        {"columns": {"ch": "channel", "cur": "currency"}, "defaults": {"channel": "web", "currency": "GBP"}},
    )
    assert out.rejected == []
    assert out.frame["channel"].to_list() == ["online", "online", "in_store"]
    assert out.frame["currency"].to_list() == ["GBP", "EUR", "GBP"]


def test_the_first_filled_of_several_columns_wins_and_errors_name_the_field():
    out = run(
        {"Accepts Email Marketing": ["yes", "", "", "perhaps"], "Accepts Marketing": ["no", "no", "", ""]},
        {"columns": {"Accepts Email Marketing": "email_marketing", "Accepts Marketing": "email_marketing"}},
        "customers",
    )
    assert out.frame["email_marketing"].to_list() == [True, False, None]
    assert out.rejected == [Rejected(row=5, column="email_marketing", value="perhaps", reason="not yes or no")]


def test_every_error_of_a_row_is_reported_and_the_row_leaves_the_batch():
    columns = {
        "id": ["A1", "A2", "A3", "A4"],
        "when": ["2024-01-01", "someday", "2024-01-03", "2024-01-04"],
        "qty": ["1", "x", "2", "1"],
        "price": ["1.00", "1.00", "lots", "2.50"],
        "ignored": ["?", "?", "?", "?"],
    }
    mapping = {
        "columns": {
            "id": "order_id",
            "when": "placed_at",
            "qty": "quantity",
            "price": "unit_price",
            "ignored": "ignore",
        }
    }
    out = run(columns, mapping, first_row=10)
    assert out.frame["_row"].to_list() == [10, 13]
    assert out.frame["unit_price"].to_list() == [100, 250]
    assert sorted((r.row, r.column, r.value, r.reason) for r in out.rejected) == [
        (11, "qty", "x", "not a whole number"),
        (11, "when", "someday", "not a date and time (expected ISO 8601, e.g. 2026-11-23 10:15:00)"),
        (12, "price", "lots", "not a number"),
    ]
    assert "ignored" not in out.frame.columns and "ignore" not in out.frame.columns


def test_reader_rejections_are_carried_through():
    batch = RawBatch(
        columns={"id": pl.Series(["A1"])}, rows=[3], rejected=[Rejected(row=2, reason="empty line")], records=2
    )
    out = convert(batch, Mapping(columns={"id": "order_id"}), ImportKind.orders, default_country="US")
    assert out.rejected == [Rejected(row=2, reason="empty line")]
    assert out.frame["order_id"].to_list() == ["A1"]


def test_an_empty_batch_converts_to_an_empty_frame():
    out = run({"id": [], "when": []}, {"columns": {"id": "order_id", "when": "placed_at"}})
    assert out.frame.height == 0 and out.rejected == []
    assert out.frame.schema["placed_at"] == pl.Datetime("us", "UTC")


def test_long_values_are_shortened_in_the_report():
    _, rejected = one_field(["9" * 800], "total")
    assert len(rejected[2].value) == 500 and rejected[2].value.endswith("...")
