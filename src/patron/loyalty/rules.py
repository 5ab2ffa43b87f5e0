"""The programme's rules in force (parsed once per version) and the history of their versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from patron.loyalty import repository
from patron.loyalty.config import ProgrammeConfig

# Parsed rules by (version id, created_at): versions are never changed, and validating the
# document on every posting cost more than the posting. created_at is part of the key
# because SQLite reuses the id of a version whose transaction was rolled back.
_parsed_configs: dict[tuple[int, datetime], ProgrammeConfig] = {}


def current_config(session: Session) -> tuple[int | None, ProgrammeConfig]:
    """The rules in force and their version id (None only before the first migration ran)."""
    latest = repository.latest_config_stamp(session)
    if latest is None:
        return None, ProgrammeConfig()
    config = _parsed_configs.get(latest)
    if config is None:
        if len(_parsed_configs) > 100:
            _parsed_configs.clear()
        config = _parsed_configs[latest] = ProgrammeConfig.model_validate(
            repository.config_document(session, latest[0])
        )
    return latest[0], config


def config_history(session: Session, *, limit: int = 20):
    return repository.config_versions(session, limit)
