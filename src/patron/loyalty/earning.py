"""Orders and points: what an order earns, and taking points back for its returns, refunds and cancellation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.orm import Session

from patron.loyalty import repository
from patron.loyalty.clock import _now
from patron.loyalty.config import ProgrammeConfig
from patron.loyalty.posting import Kind, _Credit, _expiry, _post, _post_credits
from patron.loyalty.rules import current_config
from patron.loyalty.tiers import _upgrade
from patron.models import LoyaltyMember, LoyaltyTransaction
from patron.models.enums import LoyaltyAccountKind, OrderStatus
from patron.orders.schemas import PointsOrder


@dataclass
class SyncResult:
    earned: int = 0  # points
    clawed_back: int = 0
    transactions: list[int] = field(default_factory=list)
    unrecovered: int = 0  # points a return should have taken back but the member had spent


def has_active_members(session: Session) -> bool:
    """Whether any order can earn or lose points now (bulk writers skip collecting order ids without)."""
    return repository.any_active_member(session)


def sync_orders(session: Session, *, order_ids: Sequence[int], by: str = "orders") -> SyncResult:
    """Bring the ledger in line with these orders: points for new orders of members, taken
    back for returns, refunds and cancellations. Safe to call any number of times and from
    every way orders arrive (API, batch, webhook, import): each order earns once, each
    return is clawed back once, because each has its own idempotency key.

    Only orders placed while the customer was a member earn.
    """
    result = SyncResult()
    if not order_ids or not repository.any_active_member(session):
        return result
    from patron.orders import service as orders

    brief = orders.order_customers(session, order_ids=sorted(set(order_ids)))
    members = repository.active_members_of(session, sorted({c for _, c, _ in brief}))
    eligible = [o for o, c, placed in brief if c in members and placed >= members[c].enrolled_at]
    if not eligible:
        return result
    version_id, config = current_config(session)
    posted = {}
    for tx in repository.order_transactions(session, eligible):
        posted.setdefault(tx.order_id, []).append(tx)
    points_orders = orders.orders_for_points(session, order_ids=eligible)
    # New earnings first, all in one go; then returns and cancellations, order by order
    # (they are few, and each needs the member's balance as it is then).
    new: list[tuple[LoyaltyMember, PointsOrder, int, dict]] = []
    for order in points_orders:
        member = members[order.customer_id]
        if order.status == OrderStatus.cancelled or any(t.kind == Kind.earn for t in posted.get(order.id, [])):
            continue
        points, how = points_for_order(config, order, config.tier(member.tier).earn_multiplier)
        if points > 0:
            new.append((member, order, points, how))
    result.transactions += _post_earnings(session, config, version_id, new, by=by)
    result.earned += sum(points for _, _, points, _ in new)
    returned = [o for o in points_orders if o.refunds or o.status == OrderStatus.cancelled]
    if returned:
        posted = {}
        for tx in repository.order_transactions(session, [o.id for o in returned]):
            posted.setdefault(tx.order_id, []).append(tx)
        for order in returned:
            _claw_back(session, version_id, members[order.customer_id], order, posted.get(order.id, []), result, by=by)
    if result.earned:
        earners = {member.id: member for member, _, _, _ in new}
        _upgrade(session, config, list(earners.values()), now=_now())
    return result


def points_for_order(config: ProgrammeConfig, order: PointsOrder, tier_multiplier: Decimal) -> tuple[int, dict]:
    """What an order earns under `config`, and how it was worked out.

    Each line earns its net amount x points per unit x the higher of its category's and its
    product's multiplier x the best bonus period covering it; the order's sum is multiplied
    by its channel's and the member's tier multiplier and rounded down. The order's own
    discount is spread over its lines. An order without lines (a till that sends totals)
    earns on its subtotal less discount.
    """
    earn = config.earn
    day = order.placed_at.date()
    periods = [p for p in earn.bonus_periods if p.start <= day <= p.end]
    share = Decimal(1)
    if order.lines:
        gross = sum((ln.quantity * ln.unit_price - ln.discount for ln in order.lines), Decimal(0))
        if gross > 0 and order.discount:
            share = max(Decimal(0), (gross - order.discount) / gross)
        amounts = [(ln.quantity * ln.unit_price - ln.discount, ln.category_path or "", ln.sku) for ln in order.lines]
    else:
        amounts = [(order.subtotal - order.discount, "", None)]
    base = Decimal(0)
    for amount, category, sku in amounts:
        if amount <= 0:
            continue
        line = _line_multiplier(earn.multipliers.categories, category)
        if sku is not None:
            line = max(line, earn.multipliers.products.get(sku, Decimal(1)))
        bonus = max(
            (p.multiplier for p in periods if not p.categories or any(_in_category(category, c) for c in p.categories)),
            default=Decimal(1),
        )
        base += amount * share * line * bonus
    channel = earn.multipliers.channels.get(order.channel, Decimal(1))
    exact = base * earn.points_per_unit * channel * tier_multiplier
    points = int(exact.to_integral_value(rounding=ROUND_FLOOR))
    how = {
        "base": str(base.quantize(Decimal("0.01"))),
        "points_per_unit": str(earn.points_per_unit),
        "channel_multiplier": str(channel),
        "tier_multiplier": str(tier_multiplier),
        "bonus_periods": [p.name for p in periods],
    }
    return points, how


def _post_earnings(
    session: Session,
    config: ProgrammeConfig,
    version_id: int | None,
    new: list[tuple[LoyaltyMember, PointsOrder, int, dict]],
    *,
    by: str,
) -> list[int]:
    """Post each order's points ("order:{id}:earn") together; see _post_credits."""
    credits = [
        _Credit(
            member=member,
            kind=Kind.earn,
            key=f"order:{order.id}:earn",
            points=points,
            memo=f"Order #{order.id}",
            expires_at=_expiry(config, order.placed_at),
            order_id=order.id,
            qualifying=True,
            details=how,
        )
        for member, order, points, how in new
    ]
    return _post_credits(session, credits, version_id=version_id, by=by)


def _claw_back(
    session: Session,
    version_id: int | None,
    member: LoyaltyMember,
    order: PointsOrder,
    earlier: list[LoyaltyTransaction],
    result: SyncResult,
    *,
    by: str,
) -> None:
    """Take back the points of an order's refunds and of its cancellation, each once."""
    earn = next((t for t in earlier if t.kind == Kind.earn), None)
    if earn is None:
        return
    reversed_ids = {t.reverses_id for t in earlier if t.kind == Kind.reversal}
    if earn.id in reversed_ids:
        return  # an agent took this order's points back already
    expires_at = repository.entries_of(session, earn.id)[0].expires_at
    if expires_at is not None and expires_at <= _now():
        return  # those points have lapsed: nothing left to take back
    clawed = sum(t.points for t in earlier if t.kind == Kind.clawback)
    causes: list[tuple[str, Decimal]] = []
    refunded = Decimal(0)
    for refund in order.refunds:
        refunded += refund.amount
        causes.append((f"order:{order.id}:return:{refund.id}", refunded))
    if order.status == OrderStatus.cancelled:
        causes.append((f"order:{order.id}:cancel", order.total))
    for key, cumulative in causes:
        if repository.transaction_exists(session, key):
            continue
        # Take back the share of the order's points that the refunds so far are of its
        # total, less what earlier clawbacks took; never more than the member holds.
        share = min(Decimal(1), cumulative / order.total) if order.total > 0 else Decimal(1)
        due = int((earn.points * share).to_integral_value(rounding=ROUND_FLOOR)) - clawed
        if due <= 0:
            continue
        held = repository.balance(session, member.account_id)
        take = min(due, held)
        if take <= 0:
            result.unrecovered += due
            continue
        tx = _post(
            session,
            key=key,
            request={"clawback": key},
            kind=Kind.clawback,
            member=member,
            points=take,
            direction=-1,
            legs=[(LoyaltyAccountKind.issued, take, True, expires_at)],
            member_legs=[(-take, True, expires_at)],
            memo=f"Order #{order.id} " + ("cancelled" if key.endswith("cancel") else "returned or refunded"),
            by=by,
            config_version_id=version_id,
            order_id=order.id,
            qualifying_points=-take,
            details={"due": due, "unrecovered": due - take},
        )
        clawed += take
        result.clawed_back += take
        result.unrecovered += due - take
        result.transactions.append(tx.id)


def _line_multiplier(categories: dict[str, Decimal], category: str) -> Decimal:
    # The most specific matching category wins: "Baby/Toys" over "Baby".
    best, best_len = Decimal(1), -1
    for prefix, multiplier in categories.items():
        if _in_category(category, prefix) and len(prefix) > best_len:
            best, best_len = multiplier, len(prefix)
    return best


def _in_category(category: str, prefix: str) -> bool:
    return category == prefix or category.startswith(prefix.rstrip("/") + "/")
