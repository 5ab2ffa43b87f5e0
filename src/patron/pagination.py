"""Keyset (cursor) pagination shared by every list endpoint and page.

A cursor is an opaque token holding the sort value and id of the last row served, so a
page costs an index seek however deep it is, and rows inserted meanwhile never shift
pages (unlike OFFSET).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from patron.errors import InvalidInput
from patron.validation import to_utc

T = TypeVar("T")
MAX_LIMIT = 500


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def parse_sort(sort: str, allowed: dict[str, InstrumentedAttribute]) -> tuple[InstrumentedAttribute, bool]:
    """'-created_at' -> (Customer.created_at, descending=True); unknown names are refused."""
    name = sort.removeprefix("-")
    if name not in allowed:
        raise InvalidInput(
            f"cannot sort by {name!r}; choose one of {', '.join(sorted(allowed))} (prefix - for descending)",
            detail={"field": "sort"},
        )
    return allowed[name], sort.startswith("-")


def paginate(
    session: Session,
    stmt: Select,
    *,
    sort_col: InstrumentedAttribute,
    id_col: InstrumentedAttribute,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> Page:
    """Run `stmt` ordered by (sort_col, id_col) from `cursor`, at most `limit` rows."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", detail={"field": "limit"})
    key = tuple_(sort_col, id_col)
    if cursor:
        last = decode_cursor(cursor, sort_col)
        stmt = stmt.where(key < last if descending else key > last)
    order = (sort_col.desc(), id_col.desc()) if descending else (sort_col.asc(), id_col.asc())
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last_row = rows[-1]
        next_cursor = encode_cursor(getattr(last_row, sort_col.key), getattr(last_row, id_col.key))
    return Page(items=rows, next_cursor=next_cursor)


def encode_cursor(*values: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, (datetime, date)):
            return v.isoformat()
        if isinstance(v, Decimal):
            return str(v)
        return v

    raw = json.dumps([plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort_col: InstrumentedAttribute) -> tuple[Any, Any]:
    # A TypeDecorator such as UTCDateTime reports `object`; the type it wraps knows better.
    col_type = getattr(sort_col.type, "impl_instance", sort_col.type)
    return decode_cursor_values(cursor, col_type.python_type, int)


def decode_cursor_values(cursor: str, *types: type) -> tuple[Any, ...]:
    """Read back a cursor made by encode_cursor, converting each value to its type."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong shape")
        return tuple(_typed(v, t) for v, t in zip(values, types, strict=True))
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise InvalidInput(
            "cursor is not valid; use next_cursor from a previous page", detail={"field": "cursor"}
        ) from exc


def _typed(value: Any, python_type: type) -> Any:
    if value is None:
        return None
    if python_type is datetime:
        return to_utc(datetime.fromisoformat(value))
    if python_type is date:
        return date.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(value)
    if python_type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if python_type in (int, str) and not isinstance(value, python_type):
        raise TypeError(f"expected {python_type.__name__}")
    if python_type is int and not -(2**63) <= value < 2**63:
        # No column holds it, and the drivers refuse to bind it (a 500 before).
        raise ValueError("integer out of range")
    return value
