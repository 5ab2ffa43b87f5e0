"""Finding customers recorded twice, merging them without losing history, and undoing merges."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process, utils
from sqlalchemy.orm import Session

from patron import events
from patron.errors import Conflict, InvalidInput, NotFound
from patron.identity import repository
from patron.identity.schemas import CustomerBrief, DuplicatePair, DuplicateReview, Merge, MergeView
from patron.models import ConsentEvent, Customer, CustomerMerge, Interaction, Order
from patron.pagination import Page, paginate
from patron.validation import canonical_email

# Every table whose rows follow a customer into the survivor, as (model, column pointing at
# the customer). merge() moves them and records the ids; unmerge() moves exactly those back.
# A new kind of customer data is one more line here; a domain that keeps its own state
# about customers (the loyalty programme) follows merges through the customers.merged event.
MOVES: list[tuple[type, str]] = [
    (Order, "customer_id"),
    (Interaction, "customer_id"),
    (ConsentEvent, "customer_id"),
    # Customers merged into the duplicate earlier now point at the survivor: never a chain.
    (Customer, "merged_into_id"),
]

# Survivor fields filled from the duplicate when blank. Fields that only make sense together
# are filled together, and only when the survivor has none of them (no half-addresses, no
# birthday contradicting the birth year).
FILL_GROUPS: list[tuple[str, ...]] = [
    ("first_name",),
    ("last_name",),
    ("email",),
    ("phone",),
    ("address_line", "city", "region", "postal_code", "country"),
    ("birthday", "birth_year", "age_band"),
    ("gender",),
    ("income_band",),
    ("marital_status",),
    ("household_size", "children"),
    ("interests",),
    ("acquired_at", "acquisition_channel", "acquisition_cost"),
    ("preferred_channel",),
    ("language",),
    ("time_zone",),
    ("attributes",),
]

DEFAULT_LIMIT = 100
DEFAULT_MIN_SCORE = 0.6
# Name similarity (rapidfuzz token_sort_ratio, 0-100) needed within each block.
POSTCODE_NAME_CUTOFF = 85
CITY_NAME_CUTOFF = 90
# Larger blocks are split by name initials so fuzzy comparison stays cheap.
MAX_BLOCK = 2000

EMAIL_REASON = "same email (canonical)"
PHONE_REASON = "same phone"
DIFFERENT_NAMES = "different names"
# How describe() names the rows of each moved table.
NOUNS = {"orders": "order", "interactions": "interaction", "consent_events": "consent event",
         "customers": "earlier merged record"}  # fmt: skip


# --- detection ----------------------------------------------------------------------------


def find_duplicates(
    session: Session,
    *,
    limit: int | None = DEFAULT_LIMIT,
    min_score: float = DEFAULT_MIN_SCORE,
    exact_only: bool = False,
) -> list[DuplicatePair]:
    """Pairs of live customers that look like one person, best first.

    Exact groups (same canonical email, same phone) come from grouped SQL queries; fuzzy
    name matches are only looked for inside blocks sharing a postcode, or a city and
    last-name initial, so the work grows with the number of customers, not its square.
    Each group is paired with its suggested survivor, so merging every suggestion leaves
    one customer per group.
    """
    if limit is not None and limit < 1:
        raise InvalidInput("limit must be at least 1", detail={"field": "limit"})
    if not 0 <= min_score <= 1:
        raise InvalidInput("min_score must be between 0 and 1", detail={"field": "min_score"})
    groups = repository.exact_groups(session, "email") + repository.exact_groups(session, "phone")
    fuzzy: set[tuple[int, int]] = set()
    if not exact_only:
        for block in repository.name_blocks(session, "postcode"):
            fuzzy.update(_similar_names(block, POSTCODE_NAME_CUTOFF))
        for block in repository.name_blocks(session, "city"):
            fuzzy.update(_similar_names(block, CITY_NAME_CUTOFF))

    ids = {i for group in groups for i in group} | {i for pair in fuzzy for i in pair}
    people = _briefs(session, ids)
    candidates = set(fuzzy)
    for group in groups:
        anchor = suggest_survivor(people[i] for i in group)
        candidates.update(_ordered(anchor, other) for other in group if other != anchor)

    pairs = []
    for a_id, b_id in candidates:
        a, b = people[a_id], people[b_id]
        score, reasons, exact = evidence(a, b)
        if score >= min_score and (exact or not exact_only):
            survivor = suggest_survivor((a, b))
            pairs.append(
                DuplicatePair(a=a, b=b, score=score, reasons=reasons, exact=exact, suggested_survivor_id=survivor)
            )
    pairs.sort(key=lambda p: (-p.score, p.a.id, p.b.id))
    return pairs[:limit] if limit is not None else pairs


def evidence(a: CustomerBrief, b: CustomerBrief) -> tuple[float, list[str], bool]:
    """(score in [0, 1], reasons, exact) for two customer records.

    Each piece of evidence is a chance that the two are one person; the score is the chance
    that at least one is right (1 - product of the misses), lowered by evidence against:
    names that clearly differ (families share phones and addresses), or two different
    emails or phones where both records have one.
    """
    reasons: list[str] = []
    chances: list[float] = []
    if a.email and b.email and canonical_email(a.email) == canonical_email(b.email):
        reasons.append(EMAIL_REASON)
        chances.append(0.95)
    if a.phone and b.phone and a.phone == b.phone:
        reasons.append(PHONE_REASON)
        chances.append(0.85)
    exact = bool(chances)
    similarity = name_similarity(a, b)
    if similarity is not None:
        named = "same name" if similarity == 100 else f"similar name ({similarity})"
        if similarity >= POSTCODE_NAME_CUTOFF and _same_postcode(a, b):
            reasons.append(f"{named} and same postcode")
            chances.append(0.6 + 0.3 * (similarity - POSTCODE_NAME_CUTOFF) / (100 - POSTCODE_NAME_CUTOFF))
        elif similarity >= CITY_NAME_CUTOFF and _same_city(a, b):
            reasons.append(f"{named} and same city")
            chances.append(0.5 + 0.25 * (similarity - CITY_NAME_CUTOFF) / (100 - CITY_NAME_CUTOFF))
        elif similarity >= POSTCODE_NAME_CUTOFF and exact:
            reasons.append(named)
            chances.append(0.5)
    score = 1 - math.prod(1 - c for c in chances)
    if exact and similarity is not None and similarity < 50:
        reasons.append(f"{DIFFERENT_NAMES} ({similarity})")
        score *= 0.7
    if a.email and b.email and canonical_email(a.email) != canonical_email(b.email):
        reasons.append("different emails")
        score *= 0.8
    if a.phone and b.phone and a.phone != b.phone:
        reasons.append("different phones")
        score *= 0.8
    return round(score, 3), reasons, exact


def name_similarity(a: CustomerBrief, b: CustomerBrief) -> int | None:
    """Full-name similarity 0-100, word order ignored; None when either has no name."""
    left, right = utils.default_process(_full_name(a)), utils.default_process(_full_name(b))
    if not left or not right:
        return None
    return round(fuzz.token_sort_ratio(left, right))


def suggest_survivor(people: Iterable[CustomerBrief]) -> int:
    """The customer with the most orders; on a tie, the older record (lower id)."""
    return max(people, key=lambda c: (c.order_count, -c.id)).id


def _similar_names(block: list[tuple[int, str, str]], cutoff: int) -> Iterator[tuple[int, int]]:
    for part in _split(block):
        if len(part) < 2:
            continue
        names = [f"{first} {last}" for _, first, last in part]
        scores = process.cdist(
            names,
            names,
            scorer=fuzz.token_sort_ratio,
            processor=utils.default_process,
            score_cutoff=cutoff,
            dtype=np.uint8,
            workers=-1 if len(part) > 200 else 1,
        )
        for i, j in np.argwhere(np.triu(scores, k=1) >= cutoff):
            yield _ordered(part[i][0], part[j][0])


def _split(block: list[tuple[int, str, str]], depth: int = 0) -> Iterator[list[tuple[int, str, str]]]:
    """The block, cut by last-name then first-name initial while it is larger than MAX_BLOCK."""
    if len(block) <= MAX_BLOCK or depth == 2:
        yield block
        return
    field = 2 if depth == 0 else 1
    parts: dict[str, list[tuple[int, str, str]]] = {}
    for row in block:
        parts.setdefault(row[field][:1].lower(), []).append(row)
    for part in parts.values():
        yield from _split(part, depth + 1)


def _briefs(session: Session, ids: Iterable[int]) -> dict[int, CustomerBrief]:
    from patron.orders import service as orders

    ids = list(ids)
    counts = orders.order_counts(session, customer_ids=ids)
    return {
        cid: CustomerBrief.model_validate(row).model_copy(update={"order_count": counts.get(cid, 0)})
        for cid, row in repository.briefs(session, ids).items()
    }


def _ordered(x: int, y: int) -> tuple[int, int]:
    return (x, y) if x < y else (y, x)


def _full_name(c: CustomerBrief) -> str:
    return f"{c.first_name} {c.last_name}".strip()


def _same_postcode(a: CustomerBrief, b: CustomerBrief) -> bool:
    key = lambda c: (c.postal_code or "").replace(" ", "").upper()  # noqa: E731
    return bool(key(a)) and key(a) == key(b)


def _same_city(a: CustomerBrief, b: CustomerBrief) -> bool:
    return bool(a.city) and (a.city or "").strip().lower() == (b.city or "").strip().lower()


# --- merge and undo -----------------------------------------------------------------------


def merge(
    session: Session,
    *,
    survivor_id: int,
    merged_id: int,
    user_id: int | None = None,
    score: float | None = None,
    reasons: Iterable[str] = (),
) -> CustomerMerge:
    """Merge customer `merged_id` into `survivor_id` and record exactly what moved.

    The duplicate is kept, hidden, pointing at the survivor (its external ids keep leading
    there); its orders, interactions and consent history move to the survivor, and the
    survivor's blank fields are filled from it. Without a score or reasons, the evidence
    is worked out from the two records.
    """
    if survivor_id == merged_id:
        raise InvalidInput(f"customer {merged_id} cannot be merged into itself", detail={"field": "merged_id"})
    survivor, merged = _lock_pair(session, survivor_id, merged_id, fields=("survivor_id", "merged_id"))
    for customer, field in ((merged, "merged_id"), (survivor, "survivor_id")):
        if customer.merged_into_id is not None:
            raise Conflict(
                f"customer {customer.id} was already merged into customer {customer.merged_into_id}",
                detail={"field": field, "survivor_id": customer.merged_into_id},
            )
    reasons = list(reasons)
    if score is None and not reasons:
        people = _briefs(session, [survivor.id, merged.id])
        score, reasons, _ = evidence(people[survivor.id], people[merged.id])

    moved: dict[str, Any] = {"fields": _fill_blanks(session, survivor, merged)}
    for model, column in MOVES:
        moved[model.__tablename__] = repository.move_rows(session, model, column, from_id=merged.id, to_id=survivor.id)
    merged.merged_into_id = survivor.id
    record = CustomerMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        score=score,
        reasons=reasons,
        moved=moved,
        merged_by_id=user_id,
        merged_at=datetime.now(UTC),
    )
    session.add(record)
    session.flush()
    events.publish(
        session,
        events.CustomersMerged(merge_id=record.id, survivor_id=survivor.id, merged_id=merged.id, actor=_by(user_id)),
    )
    return record


def unmerge(session: Session, *, merge_id: int, user_id: int | None = None) -> CustomerMerge:
    """Undo a merge: the duplicate is live again with exactly the rows and fields that moved.

    Refused (409) once the survivor has itself been merged into someone else: undo that
    later merge first. Fields edited on the survivor since the merge keep their new value.
    """
    record = get_merge(session, merge_id)
    if record.undone_at is not None:
        raise Conflict(
            f"merge {merge_id} was already undone on {record.undone_at:%Y-%m-%d %H:%M} UTC",
            detail={"field": "merge_id"},
        )
    survivor, merged = _lock_pair(session, record.survivor_id, record.merged_id, fields=("merge_id", "merge_id"))
    if survivor.merged_into_id is not None:
        later = repository.active_merge_of(session, survivor.id)
        later_id = later.id if later else None
        raise Conflict(
            f"customer {survivor.id} has since been merged into customer {survivor.merged_into_id} "
            f"(merge {later_id}); undo merge {later_id} first",
            detail={"field": "merge_id", "blocking_merge_id": later_id},
        )
    if merged.merged_into_id != survivor.id:
        raise Conflict(
            f"customer {merged.id} is no longer merged into customer {survivor.id}", detail={"field": "merge_id"}
        )

    moved = record.moved or {}
    fields: dict[str, dict[str, Any]] = moved.get("fields", {})
    email = fields.get("email", {}).get("now")
    if email is not None:
        holder = repository.email_owner(session, email)
        if holder is not None and holder != survivor.id:
            raise Conflict(
                f"cannot give email {email} back to customer {merged.id}: customer {holder} has it now",
                detail={"field": "merge_id", "customer_id": holder},
            )
    for name, change in fields.items():
        # Put back only what still holds the merged-in value: later edits win.
        if _plain(getattr(survivor, name)) == change["now"]:
            setattr(survivor, name, change["was"])
    if email is not None:
        session.flush()  # the survivor lets go of the email before the duplicate takes it back
        merged.email = email
    for model, column in reversed(MOVES):
        repository.restore_rows(
            session, model, column, ids=moved.get(model.__tablename__, []), from_id=survivor.id, to_id=merged.id
        )
    merged.merged_into_id = None
    record.undone_at = datetime.now(UTC)
    record.undone_by_id = user_id
    session.flush()
    events.publish(
        session,
        events.CustomersUnmerged(merge_id=record.id, survivor_id=survivor.id, merged_id=merged.id, actor=_by(user_id)),
    )
    return record


def auto_merge(session: Session, *, user_id: int | None = None) -> list[CustomerMerge]:
    """Merge the pairs that match exactly and safely (see auto_mergeable), best first.

    When an earlier merge already absorbed one side of a pair, the pair is re-checked on
    the live records and merged only if it still qualifies.
    """
    from patron.customers import service as customers

    done: list[CustomerMerge] = []
    for pair in find_duplicates(session, limit=None, min_score=0, exact_only=True):
        a = customers.resolve_customer_id(session, pair.a.id)
        b = customers.resolve_customer_id(session, pair.b.id)
        if a == b:
            continue
        left, right, survivor_id = pair.a, pair.b, pair.suggested_survivor_id
        if {a, b} != {pair.a.id, pair.b.id}:
            people = _briefs(session, [a, b])
            left, right, survivor_id = people[a], people[b], suggest_survivor(people.values())
        if not auto_mergeable(left, right):
            continue
        score, reasons, _ = evidence(left, right)
        merged_id = b if survivor_id == a else a
        done.append(
            merge(session, survivor_id=survivor_id, merged_id=merged_id, user_id=user_id, score=score, reasons=reasons)
        )
    return done


def auto_mergeable(a: CustomerBrief, b: CustomerBrief) -> bool:
    """Safe to merge without a person looking: the same canonical email, or the same phone
    with similar names (or a record with no name, like a till's phone-only customer); never
    when the names clearly differ, since families share phones and sometimes a mailbox."""
    similarity = name_similarity(a, b)
    if a.email and b.email and canonical_email(a.email) == canonical_email(b.email):
        return similarity is None or similarity >= 50
    if a.phone and b.phone and a.phone == b.phone:
        return similarity is None or similarity >= POSTCODE_NAME_CUTOFF
    return False


def get_merge(session: Session, merge_id: int) -> CustomerMerge:
    record = repository.get_merge(session, merge_id)
    if record is None:
        raise NotFound(f"merge {merge_id} not found", detail={"field": "merge_id"})
    return record


def list_merges(
    session: Session,
    *,
    limit: int = 50,
    cursor: str | None = None,
    customer_id: int | None = None,
    active: bool | None = None,
) -> Page[CustomerMerge]:
    """Merges newest first, optionally those involving one customer, or only active/undone ones."""
    return paginate(
        session,
        repository.merges_query(customer_id=customer_id, active=active),
        sort_col=CustomerMerge.id,
        id_col=CustomerMerge.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def recent_merges(
    session: Session, *, limit: int = 20, survivor_id: int | None = None, active_only: bool = False
) -> list[MergeView]:
    """The latest merges with the names of both customers and of the staff involved."""
    return [
        MergeView(
            merge=Merge.model_validate(record),
            survivor_name=survivor or f"Customer {record.survivor_id}",
            merged_name=merged or f"Customer {record.merged_id}",
            merged_by=merged_by,
            undone_by=undone_by,
        )
        for record, survivor, merged, merged_by, undone_by in repository.recent_merges(
            session, limit=limit, survivor_id=survivor_id, active_only=active_only
        )
    ]


def review(
    session: Session, *, limit: int = 50, min_score: float = DEFAULT_MIN_SCORE, merges: int = 20
) -> DuplicateReview:
    """The duplicates page: candidate pairs best first and the latest merges."""
    return DuplicateReview(
        pairs=find_duplicates(session, limit=limit, min_score=min_score),
        merges=recent_merges(session, limit=merges),
    )


def describe(record: CustomerMerge) -> str:
    """One sentence on what a merge moved and filled, for notices and the CLI."""
    moved = record.moved or {}
    parts = []
    for model, _ in MOVES:
        table = model.__tablename__
        if n := len(moved.get(table, [])):
            noun = NOUNS.get(table, table.replace("_", " "))
            parts.append(f"{n} {noun}{'s' if n != 1 else ''}")
    filled = sorted(moved.get("fields", {}))
    text = f"moved {', '.join(parts)}" if parts else "nothing to move"
    if filled:
        text += f"; filled {', '.join(f.replace('_', ' ') for f in filled)}"
    return text


def summary(session: Session, record: CustomerMerge) -> str:
    """A sentence naming both customers, for the notice after a merge or an undo."""
    from patron.customers import service as customers

    survivor = _label(customers.get_customer(session, record.survivor_id))
    merged = _label(customers.get_customer(session, record.merged_id))
    if record.undone_at is not None:
        return f"Undid merge {record.id}: {merged} is a customer of their own again, separate from {survivor}."
    return f"Merged {merged} into {survivor}: {describe(record)}."


def _by(user_id: int | None) -> str:
    return f"user {user_id}" if user_id is not None else "merge"


def _label(customer: Customer) -> str:
    return f"{customer.full_name or customer.email or 'Customer'} (#{customer.id})"


def _lock_pair(session: Session, first: int, second: int, *, fields: tuple[str, str]) -> tuple[Customer, Customer]:
    found = repository.lock_customers(session, [first, second])
    for customer_id, field in zip((first, second), fields, strict=True):
        if customer_id not in found:
            raise NotFound(f"customer {customer_id} not found", detail={"field": field})
    return found[first], found[second]


def _fill_blanks(session: Session, survivor: Customer, merged: Customer) -> dict[str, dict[str, Any]]:
    """Copy each group of fields the survivor lacks entirely; {field: {"was", "now"}} of what changed."""
    filled: dict[str, dict[str, Any]] = {}
    for group in FILL_GROUPS:
        if not all(_blank(getattr(survivor, f)) for f in group):
            continue
        if all(_blank(getattr(merged, f)) for f in group):
            continue
        for name in group:
            value = getattr(merged, name)
            if _blank(value):
                continue
            filled[name] = {"was": _plain(getattr(survivor, name)), "now": _plain(value)}
            if name == "email":
                merged.email = None  # the unique index allows one holder at a time
                session.flush()
            setattr(survivor, name, value)
    return filled


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _plain(value: Any) -> Any:
    """A value as JSON stores it, to record it and to compare against the record later."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
