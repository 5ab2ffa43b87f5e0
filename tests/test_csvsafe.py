"""CSV cells that a spreadsheet would run as a formula are written as text."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from patron.csvsafe import SafeWriter, safe_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-2", "-2"),  # a number stays a number
        ("+14155550100", "+14155550100"),
        ("-0.5", "-0.5"),
        ("Ada", "Ada"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_text_that_would_start_a_formula_gets_an_apostrophe(value, written):
    assert safe_cell(value) == written


def test_numbers_and_empty_cells_are_left_alone():
    buffer = io.StringIO()
    SafeWriter(buffer).writerow([-2, Decimal("-1.50"), None, "=1+1"])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["-2", "-1.50", "", "'=1+1"]]
