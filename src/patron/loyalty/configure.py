"""Changing the rules: a new version of them, or the rules and rewards of a configuration file."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patron.loyalty import repository
from patron.loyalty.clock import _far_future, _now
from patron.loyalty.config import ConfigFile, ProgrammeConfig
from patron.loyalty.rewards import save_reward
from patron.loyalty.tiers import _retier
from patron.models import LoyaltyReward


def configure(session: Session, *, config: ProgrammeConfig, by: str) -> int:
    """Store a new version of the rules; returns its id. Members keep their tier until it
    is next reviewed, except those whose tier no longer exists: they move to the tier
    their qualifying points or spend reach now."""
    from patron.models import LoyaltyConfigVersion

    version = LoyaltyConfigVersion(config=config.model_dump(mode="json", exclude={"rewards"}), created_by=by)
    session.add(version)
    session.flush()
    names = {t.name for t in config.tiers.levels}
    stranded = [m for m in repository.members_due_for_review(session, _far_future()) if m.tier not in names]
    if stranded:
        _retier(session, config, stranded, now=_now(), reason="reconfigured")
    return version.id


def configure_from_file(session: Session, *, data: ConfigFile, by: str) -> tuple[int, list[LoyaltyReward]]:
    """`patron loyalty configure`: the rules, and the file's rewards created or updated by code."""
    version_id = configure(session, config=data, by=by)
    return version_id, [save_reward(session, data=reward) for reward in data.rewards]
