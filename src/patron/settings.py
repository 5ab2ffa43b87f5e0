"""One typed settings object, read from PATRON_* environment variables.

Any setting can also be given as PATRON_<NAME>_FILE pointing at a file that holds
the value, so secrets can come from Docker/Kubernetes secret mounts instead of the
environment.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///patron.db",
        description="SQLAlchemy URL; a SQLite file in the working folder by default.",
    )
    secret_key: str = Field(
        default="",
        description="Signs session cookies. Generated per process when unset (sessions then end on restart).",
    )
    default_country: str = Field(default="US", description="ISO country used to read phone numbers without a +prefix.")
    session_max_age: int = Field(default=12 * 3600, description="Web sign-in lifetime, seconds.")
    secure_cookies: bool = Field(default=False, description="Mark cookies Secure (behind HTTPS).")
    max_body_bytes: int = Field(default=1_000_000, description="Largest accepted request body.")
    max_batch_body_bytes: int = Field(
        default=32_000_000, description="Largest accepted body for the batch endpoints (10,000 records)."
    )
    max_upload_bytes: int = Field(default=2_000_000_000, description="Largest file accepted by the web import.")
    import_dir: Path = Field(
        default=Path("imports"), description="Where files uploaded for import are kept (resume reads them again)."
    )
    webhook_secret: str = Field(
        default="",
        description="Shared secret for the HMAC-SHA256 signature of incoming order webhooks; unset disables them.",
    )
    segment_snapshot_days: int = Field(
        default=7,
        ge=0,
        description="`patron serve` snapshots segment members this often (days) for the migration matrix; 0: never.",
    )
    loyalty_jobs: bool = Field(
        default=True,
        description="`patron serve` runs the loyalty programme's daily jobs (expiry, tier reviews, birthday bonuses).",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_file_secrets(cls, data: dict) -> dict:
        for name in cls.model_fields:
            path = os.environ.get(f"PATRON_{name.upper()}_FILE")
            if path and not os.environ.get(f"PATRON_{name.upper()}"):
                data[name] = Path(path).read_text().strip()
        return data

    @model_validator(mode="after")
    def _ensure_secret(self) -> Settings:
        if not self.secret_key:
            self.secret_key = secrets.token_urlsafe(32)
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
