"""The rewards points are redeemed for: look-ups, and creating and changing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from patron.errors import Conflict, NotFound, ValidationFailed
from patron.loyalty import repository
from patron.loyalty.config import RewardConfig
from patron.loyalty.rules import current_config
from patron.models import LoyaltyReward
from patron.models.enums import RewardKind


def list_rewards(session: Session, *, active_only: bool = False) -> Sequence[LoyaltyReward]:
    return repository.rewards(session, active_only=active_only)


def get_reward(session: Session, reward_id: int) -> LoyaltyReward:
    reward = repository.get_reward(session, reward_id)
    if reward is None:
        raise NotFound(f"reward {reward_id} not found", detail={"field": "reward_id"})
    return reward


def reward_by_code(session: Session, code: str) -> LoyaltyReward:
    reward = repository.reward_by_code(session, code)
    if reward is None:
        raise NotFound(f"no reward with code {code!r}", detail={"field": "reward"})
    return reward


def save_reward(session: Session, *, data: RewardConfig, reward_id: int | None = None) -> LoyaltyReward:
    """Create a reward, or update one (by id, or by code when no id is given)."""
    from patron.products import service as products

    _, config = current_config(session)
    errors = []
    if data.min_tier is not None and all(t.name != data.min_tier for t in config.tiers.levels):
        names = ", ".join(t.name for t in config.tiers.levels)
        errors.append({"field": "min_tier", "message": f"no tier {data.min_tier!r}; the tiers are {names}"})
    product_id = None
    if data.product_sku is not None:
        _, by_sku = products.resolve_product_ids(session, ids=[], skus=[data.product_sku])
        product_id = by_sku.get(data.product_sku)
        if product_id is None:
            errors.append({"field": "product_sku", "message": f"no product with sku {data.product_sku!r}"})
    if errors:
        raise ValidationFailed(errors)
    reward = get_reward(session, reward_id) if reward_id is not None else repository.reward_by_code(session, data.code)
    clash = repository.reward_by_code(session, data.code)
    if clash is not None and reward is not None and clash.id != reward.id:
        raise Conflict(f"another reward (id {clash.id}) has code {data.code}", detail={"field": "code"})
    values = data.model_dump(exclude={"product_sku"}) | {"product_id": product_id, "kind": RewardKind(data.kind)}
    if reward is None:
        reward = LoyaltyReward(**values)
        session.add(reward)
    else:
        for name, value in values.items():
            setattr(reward, name, value)
    session.flush()
    return reward


def create_reward(session: Session, *, data: RewardConfig) -> LoyaltyReward:
    """A new reward; refused (409) when its code is taken (save_reward would update that one)."""
    clash = repository.reward_by_code(session, data.code)
    if clash is not None:
        raise Conflict(
            f"reward {clash.id} already has code {data.code}", detail={"field": "code", "reward_id": clash.id}
        )
    return save_reward(session, data=data)


def update_reward(session: Session, *, reward_id: int, changes: dict[str, Any]) -> LoyaltyReward:
    """Change some of a reward's fields (a PATCH): the result is validated as a whole."""
    from pydantic import ValidationError

    from patron.products import service as products
    from patron.validation import raise_validation

    reward = get_reward(session, reward_id)
    current = {name: getattr(reward, name) for name in RewardConfig.model_fields if name != "product_sku"}
    current["kind"] = str(reward.kind)
    current["product_sku"] = products.get_product(session, reward.product_id).sku if reward.product_id else None
    try:
        data = RewardConfig.model_validate(current | changes)
    except ValidationError as exc:
        raise_validation(exc)
    return save_reward(session, data=data, reward_id=reward_id)


# --- for the web pages -----------------------------------------------------------------------


def reward_product_sku(session: Session, reward: LoyaltyReward) -> str | None:
    """The SKU of a free-product reward's product (None for other rewards or a deleted product)."""
    from patron.products import service as products

    if reward.product_id is None:
        return None
    try:
        return products.get_product(session, reward.product_id).sku
    except NotFound:
        return None
