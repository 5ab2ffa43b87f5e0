"""Customers merged and unmerged: a duplicate customer's membership and points follow it to the survivor, and back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from patron.loyalty import repository
from patron.loyalty.clock import _now
from patron.loyalty.members import _open_lots, get_member
from patron.loyalty.posting import Kind, _post_entries
from patron.models.enums import MemberStatus


def on_customers_merged(session: Session, *, survivor_id: int, merged_id: int, by: str = "") -> dict[str, Any]:
    """Called by a customer merge: the duplicate's membership follows it to the survivor.

    If only the duplicate is a member, its membership moves to the survivor. If both are,
    the duplicate's points move to the survivor's account lot by lot (keeping their expiry
    dates) and its membership is marked merged. Returns what was done, for the unmerge.
    """
    loser = repository.member_for_customer(session, merged_id)
    if loser is None or loser.status != MemberStatus.active:
        return {}
    keeper = repository.member_for_customer(session, survivor_id)
    if keeper is None:
        loser.customer_id = survivor_id
        session.flush()
        return {"moved_member": loser.id, "customer_id": merged_id}
    lots = _open_lots(session, loser)
    legs = [(keeper.account_id, n, True, exp) for exp, n in lots] + [
        (loser.account_id, -n, True, exp) for exp, n in lots
    ]
    tx = None
    total = sum(n for _, n in lots)
    if total:
        tx = _post_entries(
            session,
            key=f"merge:{loser.id}:into:{keeper.id}:{_now().isoformat()}",
            request={"merge": loser.id, "into": keeper.id},
            kind=Kind.transfer,
            member=keeper,
            points=total,
            direction=1,
            entries=legs,
            memo=f"Points of member {loser.id} (customer {merged_id}, merged into this customer)",
            by=by,
            config_version_id=None,
            details={"from_member": loser.id},
        )
    loser.status = MemberStatus.merged
    loser.merged_into_id = keeper.id
    session.flush()
    return {"merged_member": loser.id, "into_member": keeper.id, "transfer": tx.id if tx else None}


def on_customers_unmerged(session: Session, *, undo: dict[str, Any], by: str = "") -> None:
    """Undo what on_customers_merged did (its return value is `undo`)."""
    if not undo:
        return
    if "moved_member" in undo:
        member = get_member(session, undo["moved_member"])
        member.customer_id = undo["customer_id"]
        session.flush()
        return
    loser = get_member(session, undo["merged_member"])
    keeper = get_member(session, undo["into_member"])
    if undo.get("transfer"):
        original = repository.get_transaction(session, undo["transfer"])
        entries = repository.entries_of(session, original.id)
        _post_entries(
            session,
            key=f"unmerge:{original.id}",
            request={"unmerge": original.id},
            kind=Kind.reversal,
            member=keeper,
            points=original.points,
            direction=-1,
            entries=[(e.account_id, -e.amount, e.lot, e.expires_at) for e in entries],
            memo=f"Points returned to member {loser.id}: customer merge undone",
            by=by,
            config_version_id=None,
            reverses_id=original.id,
        )
    loser.status = MemberStatus.active
    loser.merged_into_id = None
    session.flush()
