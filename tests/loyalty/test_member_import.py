"""Enrolling members from a file: cards, tiers and balances carried over; bad files refused whole."""

from __future__ import annotations

import pytest

from patron.errors import InvalidInput
from patron.loyalty import member_import, service
from tests.factories import create_customer


def test_members_arrive_with_their_cards_tiers_and_balances(session):
    a = create_customer(session, email="ada@shop.example")
    b = create_customer(session, external_ids={"shopify": "S-9"})
    c = create_customer(session)
    text = (
        "customer_id,email,source,external_id,card_number,enrolled_at,tier,points\n"
        ",ADA@shop.example,,,2900123456789012,2025-03-01,gold,1500\n"
        f",,shopify,S-9,,,,\n"
        f"{c.id},,,,,2026-01-10,,0\n"
    )
    result = member_import.import_members(session, text=text, by="test")
    assert (result.enrolled, result.points) == (3, 1500)
    ada = service.member_for_customer(session, a.id)
    assert (ada.card_number, ada.tier, ada.enrolled_at.date().isoformat(), ada.enrolled_via) == (
        "2900123456789012",
        "Gold",
        "2025-03-01",
        "import",
    )
    # The opening balance plus the installed rules' sign-up bonus of 100.
    assert service.summary(session, member_id=ada.id).balance == 1600
    assert service.summary(session, member_id=service.member_for_customer(session, b.id).id).balance == 100
    assert service.check_books(session) == []
    with pytest.raises(InvalidInput, match="already a member"):
        member_import.import_members(session, text=f"customer_id\n{c.id}\n", by="test")


def test_a_file_with_bad_rows_enrols_nobody_and_names_every_row(session):
    a = create_customer(session)
    b = create_customer(session)
    text = (
        "customer_id,email,card_number,enrolled_at,tier,points\n"
        f"{a.id},,2900123456789013,,,\n"  # wrong check digit
        ",nobody@shop.example,,,,\n"
        f"{b.id},,,2026-13-01,,\n"
        f"{b.id},,,,Platinum,\n"
        f"{a.id},,,,,-5\n"
        "abc,,,,,\n"
    )
    with pytest.raises(InvalidInput) as caught:
        member_import.import_members(session, text=text, by="test")
    errors = [(e["row"], e["column"], e["reason"]) for e in caught.value.detail["errors"]]
    assert errors == [
        (2, "card_number", "not 16 digits with a valid check digit"),
        (3, "email", "no customer with this email"),
        (4, "enrolled_at", "not a date (YYYY-MM-DD)"),
        (5, "tier", "no such tier (the tiers are Member, Silver, Gold, VIP)"),
        (6, "points", "not a whole number of points from 0 to 10,000,000"),
        (7, "customer_id", "not a customer id"),
    ]
    assert "nobody was enrolled" in str(caught.value)
    assert service.member_for_customer(session, a.id) is None and service.member_for_customer(session, b.id) is None


def test_duplicates_within_the_file_and_files_without_a_key_column(session):
    a = create_customer(session)
    with pytest.raises(InvalidInput) as caught:
        member_import.import_members(session, text=f"customer_id\n{a.id}\n{a.id}\n", by="test")
    assert caught.value.detail["errors"] == [
        {"row": 3, "column": "customer_id", "value": str(a.id), "reason": "same customer as row 2"}
    ]
    with pytest.raises(InvalidInput, match="needs a header with a customer_id"):
        member_import.import_members(session, text="name\nAda\n", by="test")
    with pytest.raises(InvalidInput, match="no member rows"):
        member_import.import_members(session, text="customer_id\n", by="test")
    dry = member_import.import_members(session, text=f"customer_id,points\n{a.id},40\n", by="test", dry_run=True)
    assert (dry.enrolled, dry.points) == (1, 40) and service.member_for_customer(session, a.id) is None


def test_a_file_the_csv_reader_cannot_read_is_refused_with_a_message(session):
    with pytest.raises(InvalidInput, match="cannot be read as CSV: field larger than field limit"):
        member_import.import_members(session, text="customer_id\n" + "9" * 200_000 + "\n", by="test")


def test_stray_carriage_returns_and_quotes_give_row_errors_not_a_crash(session):
    # The OpenAPI fuzz sent this: csv.Error from the header, a 500, until lines were left to the csv module.
    with pytest.raises(InvalidInput) as caught:
        member_import.import_members(session, text='customer_id\r"', by="test")
    assert caught.value.detail["errors"] == [
        {"row": 2, "column": "customer_id", "value": "", "reason": "no customer_id, email or external_id"}
    ]
