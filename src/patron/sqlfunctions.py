"""Portable SQL functions compiled per dialect, so repositories stay dialect-neutral."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class year_month(GenericFunction):
    """'YYYY-MM' of a UTC timestamp."""

    type = String()
    inherit_cache = True


@compiles(year_month, "sqlite")
def _year_month_sqlite(element, compiler, **kw):
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


@compiles(year_month, "postgresql")
def _year_month_pg(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM')"


class str_position(GenericFunction):
    """1-based position of the first `needle` in `haystack`, 0 when absent."""

    type = Integer()
    inherit_cache = True


@compiles(str_position, "sqlite")
def _str_position_sqlite(element, compiler, **kw):
    haystack, needle = element.clauses
    return f"instr({compiler.process(haystack, **kw)}, {compiler.process(needle, **kw)})"


@compiles(str_position, "postgresql")
def _str_position_pg(element, compiler, **kw):
    haystack, needle = element.clauses
    return f"strpos({compiler.process(haystack, **kw)}, {compiler.process(needle, **kw)})"
