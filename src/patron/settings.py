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
        description="The worker runs the loyalty programme's daily jobs (expiry, tier reviews, birthday bonuses).",
    )
    loyalty_schedule: str = Field(default="15 0 * * *", description="When the loyalty daily jobs run (cron, UTC).")
    analyze_schedule: str = Field(
        default="30 2 * * *",
        description="When the worker runs `patron analyze` (cron, UTC, or 'every N days'); empty: never.",
    )
    purge_schedule: str = Field(
        default="45 1 * * *", description="When old idempotency keys and finished outbox tasks are deleted (cron, UTC)."
    )
    idempotency_key_days: int = Field(
        default=30, ge=1, description="Idempotency-Key responses are kept this many days."
    )
    outbox_retention_days: int = Field(default=7, ge=1, description="Finished outbox tasks are kept this many days.")
    embedded_worker: bool | None = Field(
        default=None,
        description="`patron serve` runs a worker in-process; default: on with SQLite, off with PostgreSQL.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="How long an outgoing webhook waits for the receiver's answer."
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated networks (CIDR) outgoing webhooks may reach although they are private or "
        "this machine (e.g. 127.0.0.1/32 for a receiver on the same host); empty: public addresses only.",
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
    def _check_schedules(self) -> Settings:
        from patron.schedules import check_schedule

        for name in ("loyalty_schedule", "analyze_schedule", "purge_schedule"):
            value = getattr(self, name)
            if value or name != "analyze_schedule":
                try:
                    check_schedule(value, field=f"PATRON_{name.upper()}")
                except Exception as exc:
                    raise ValueError(getattr(exc, "message", str(exc))) from None
        return self

    def worker_embedded(self) -> bool:
        """Whether `patron serve` runs the worker in-process."""
        if self.embedded_worker is not None:
            return self.embedded_worker
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _ensure_secret(self) -> Settings:
        if not self.secret_key:
            self.secret_key = secrets.token_urlsafe(32)
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
