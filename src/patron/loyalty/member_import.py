"""Enrol members from a CSV file: a business moving from another programme brings its
members, their printed card numbers, tiers and balances.

Columns (a header row is required; names are case-insensitive):

- `customer_id` or `email` or `source` + `external_id`: who (one of them per row);
- `card_number` (optional): keep the card already in the member's wallet; 16 digits with
  a valid Luhn check digit, not used by another member;
- `enrolled_at` (optional, YYYY-MM-DD): when they joined (orders from then on earn);
- `tier` (optional): a tier of the programme; kept until the first review;
- `points` (optional, whole number >= 0): the opening balance, posted as a credit
  ("Opening balance") that expires by the programme's rule from the import day.

The file is checked whole before anything is written: any bad row refuses the file, with
every bad row listed (row number, column, value, reason); then everyone is enrolled with
a few set-based statements (service.enrol_many).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from patron.errors import InvalidInput
from patron.loyalty import cards, repository, service
from patron.validation import MAX_ID, read_csv_text

MAX_ROWS = 500_000
MAX_OPENING_POINTS = 10_000_000


@dataclass
class _Row:
    row: int
    customer_id: int | None = None
    email: str | None = None
    external: tuple[str, str] | None = None
    card_number: str | None = None
    enrolled_at: datetime | None = None
    tier: str | None = None
    points: int = 0


@dataclass
class MemberImportResult:
    enrolled: int = 0
    points: int = 0
    member_ids: list[int] = field(default_factory=list)


def import_members(session: Session, *, text: str, by: str, dry_run: bool = False) -> MemberImportResult:
    """Check the whole file, then enrol every row (or, with dry_run, only check)."""
    if "\x00" in text:
        raise InvalidInput("the file contains NUL characters; is it a CSV text file?", detail={"field": "file"})
    columns, raw_rows = read_csv_text(text)
    if not {"customer_id", "email", "external_id"} & set(columns):
        raise InvalidInput(
            "the file needs a header with a customer_id, email or source + external_id column",
            detail={"field": "file", "columns": columns},
        )
    _, config = service.current_config(session)
    tiers = {t.name.casefold(): t.name for t in config.tiers.levels}
    errors: list[dict[str, Any]] = []
    rows: list[_Row] = []
    for number, raw in raw_rows:
        if number > MAX_ROWS + 1:
            raise InvalidInput(f"a member import takes at most {MAX_ROWS:,} rows", detail={"field": "file"})
        if None in raw:  # more fields than the header names: a stray delimiter or quote
            errors.append(_error(number, "", ",".join(raw[None]), "more fields than the header has"))
            continue
        row = _parse(number, {k: (v or "").strip() for k, v in raw.items()}, tiers, errors)
        if row is not None:
            rows.append(row)
    _resolve(session, rows, errors)
    if errors:
        errors.sort(key=lambda e: e["row"])
        first = errors[0]
        raise InvalidInput(
            f"{len(errors)} problem(s) in the file, nobody was enrolled (first: row {first['row']}, "
            f"{first['column']} {first['value']!r}: {first['reason']})",
            detail={"errors": errors[:1000]},
        )
    if not rows:
        raise InvalidInput("the file has no member rows", detail={"field": "file"})
    result = MemberImportResult()
    if dry_run:
        result.enrolled = len(rows)
        result.points = sum(r.points for r in rows)
        return result
    members = service.enrol_many(
        session,
        enrolments=[
            service.Enrolment(
                r.customer_id,
                enrolled_at=r.enrolled_at,
                card_number=r.card_number,
                tier=r.tier,
                opening_points=r.points,
            )
            for r in rows
        ],
        via="import",
        by=by,
    )
    result.enrolled = len(members)
    result.points = sum(r.points for r in rows)
    result.member_ids = [m.id for m in members]
    return result


def _parse(number: int, raw: dict[str, str], tiers: dict[str, str], errors: list[dict[str, Any]]) -> _Row | None:
    row = _Row(row=number)
    bad = len(errors)
    if raw.get("customer_id"):
        value = raw["customer_id"]
        if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
            errors.append(_error(number, "customer_id", value, "not a customer id"))
        else:
            row.customer_id = int(value)
    elif raw.get("email"):
        row.email = raw["email"].lower()
    elif raw.get("external_id"):
        if not raw.get("source"):
            errors.append(_error(number, "source", "", "an external_id needs the source system it comes from"))
        else:
            row.external = (raw["source"], raw["external_id"])
    else:
        errors.append(_error(number, "customer_id", "", "no customer_id, email or external_id"))
    if raw.get("card_number"):
        card = "".join(raw["card_number"].split())
        if not cards.is_card_number(card):
            errors.append(_error(number, "card_number", raw["card_number"], "not 16 digits with a valid check digit"))
        else:
            row.card_number = card
    if raw.get("enrolled_at"):
        try:
            day = date.fromisoformat(raw["enrolled_at"])
        except ValueError:
            errors.append(_error(number, "enrolled_at", raw["enrolled_at"], "not a date (YYYY-MM-DD)"))
        else:
            if day > datetime.now(UTC).date():
                errors.append(_error(number, "enrolled_at", raw["enrolled_at"], "is in the future"))
            row.enrolled_at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if raw.get("tier"):
        name = tiers.get(raw["tier"].casefold())
        if name is None:
            errors.append(
                _error(number, "tier", raw["tier"], f"no such tier (the tiers are {', '.join(tiers.values())})")
            )
        row.tier = name
    if raw.get("points"):
        value = raw["points"].replace(",", "").replace("_", "")
        if not value.isdigit() or int(value) > MAX_OPENING_POINTS:
            errors.append(_error(number, "points", raw["points"], "not a whole number of points from 0 to 10,000,000"))
        else:
            row.points = int(value)
    return row if len(errors) == bad else None


def _resolve(session: Session, rows: list[_Row], errors: list[dict[str, Any]]) -> None:
    """Find each row's customer and check nobody is enrolled twice or already a member."""
    from patron.customers import service as customers

    emails = customers.ids_by_email(session, emails=[r.email for r in rows if r.email])
    externals = customers.ids_by_external_id(session, refs=[r.external for r in rows if r.external])
    survivors = customers.survivors_of(session, customer_ids=[r.customer_id for r in rows if r.customer_id])
    taken = repository.taken_cards(session, sorted({r.card_number for r in rows if r.card_number}))
    seen_customers: dict[int, int] = {}
    seen_cards: dict[str, int] = {}
    for row in rows:
        if row.email is not None:
            row.customer_id = emails.get(row.email)
            if row.customer_id is None:
                errors.append(_error(row.row, "email", row.email, "no customer with this email"))
                continue
        elif row.external is not None:
            row.customer_id = externals.get(row.external)
            if row.customer_id is None:
                errors.append(_error(row.row, "external_id", row.external[1], f"no customer with {row.external[0]} id"))
                continue
        elif row.customer_id not in survivors:
            errors.append(_error(row.row, "customer_id", str(row.customer_id), "no such customer"))
            continue
        # A customer merged into another is enrolled as the survivor.
        row.customer_id = survivors.get(row.customer_id, row.customer_id)
        if row.customer_id in seen_customers:
            errors.append(
                _error(
                    row.row,
                    "customer_id",
                    str(row.customer_id),
                    f"same customer as row {seen_customers[row.customer_id]}",
                )
            )
        seen_customers.setdefault(row.customer_id, row.row)
        if row.card_number is not None:
            if row.card_number in seen_cards:
                errors.append(
                    _error(row.row, "card_number", row.card_number, f"same card as row {seen_cards[row.card_number]}")
                )
            elif row.card_number in taken:
                errors.append(_error(row.row, "card_number", row.card_number, "another member has this card"))
            seen_cards.setdefault(row.card_number, row.row)
    members = repository.active_or_any_member_of(session, sorted(seen_customers))
    for customer_id, member_id in members.items():
        errors.append(
            _error(
                seen_customers[customer_id], "customer_id", str(customer_id), f"already a member (member {member_id})"
            )
        )


def _error(row: int, column: str, value: str, reason: str) -> dict[str, Any]:
    return {"row": row, "column": column, "value": value, "reason": reason}
