"""The customer 360 view: one customer's profile, consents, order KPIs and the timeline of
orders and interactions merged, assembled here so that the customers domain needs neither
orders nor interactions."""

from __future__ import annotations

import heapq
from datetime import datetime

from sqlalchemy.orm import Session

from patron.customer360.schemas import Customer360, TimelineEntry
from patron.customers import service as customers
from patron.customers.schemas import Consent
from patron.customers.schemas import Customer as CustomerOut
from patron.errors import InvalidInput
from patron.interactions import service as interactions
from patron.orders import service as orders
from patron.pagination import decode_cursor_values, encode_cursor

# Ids are positive, so these bound "any id" when a timeline cursor sits between types.
_MAX_ID = 2**31 - 1  # the largest INTEGER id on every backend


def customer_360(session: Session, customer_id: int, *, cursor: str | None = None, limit: int = 20) -> Customer360:
    """Profile, current consents, KPIs and one page of the merged timeline, newest first."""
    customer = customers.get_customer(session, customer_id)
    entries, next_cursor = timeline(session, customer_id, cursor=cursor, limit=limit)
    return Customer360(
        profile=CustomerOut.model_validate(customer),
        consents=[Consent.model_validate(c) for c in customers.current_consents(session, customer_id)],
        kpis=orders.customer_kpis(session, customer_id=customer_id),
        timeline=entries,
        next_cursor=next_cursor,
    )


def timeline(
    session: Session, customer_id: int, *, cursor: str | None = None, limit: int = 20
) -> tuple[list[TimelineEntry], str | None]:
    """Orders and interactions merged newest first, ordered by (time, type, id).

    Each domain returns its own newest `limit + 1` entries before the cursor; merging
    those is enough to fill one page and tell whether another follows.
    """
    if not 1 <= limit <= 200:
        raise InvalidInput("limit must be between 1 and 200", detail={"field": "limit"})
    before: dict[str, tuple[datetime, int] | None] = {"order": None, "interaction": None}
    if cursor:
        at, kind, last_id = decode_cursor_values(cursor, datetime, str, int)
        for stream in before:
            # Key order is (time, type, id) descending; translate the cursor into a strict
            # (time, id) upper bound for each stream.
            bound_id = last_id if stream == kind else (_MAX_ID if stream < kind else 0)
            before[stream] = (at, bound_id)
    streams = [
        orders.timeline_entries(session, customer_id=customer_id, before=before["order"], limit=limit + 1),
        interactions.timeline_entries(session, customer_id=customer_id, before=before["interaction"], limit=limit + 1),
    ]
    key = lambda e: (e.occurred_at, e.type, e.id)  # noqa: E731
    merged = list(heapq.merge(*streams, key=key, reverse=True))
    page, more = merged[:limit], len(merged) > limit
    next_cursor = encode_cursor(*key(page[-1])) if more else None
    return page, next_cursor
