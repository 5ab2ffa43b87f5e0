"""What the webhooks API takes and returns."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from patron.events import EVENT_TYPES
from patron.models import WebhookDelivery as DeliveryRow
from patron.models import WebhookSubscription as SubscriptionRow
from patron.models.enums import DeliveryOutcome
from patron.validation import InputModel

ALL_EVENTS = "*"
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
SECRET_DESCRIPTION = (
    f"Standard Webhooks secret: '{SECRET_PREFIX}' + base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes. "
    "Left out on creation: one is generated and returned once."
)
EVENT_TYPES_DESCRIPTION = f'Event types to receive ({", ".join(EVENT_TYPES)}), or ["*"] for every event.'


def check_event_types(value: list[str]) -> list[str]:
    """Known event types (or "*"), each once, in the order given."""
    unknown = [t for t in value if t != ALL_EVENTS and t not in EVENT_TYPES]
    if unknown:
        raise ValueError(
            f"unknown event type {unknown[0]!r}; choose from {', '.join(EVENT_TYPES)}, or '*' for every event"
        )
    if not value:
        raise ValueError("choose at least one event type")
    return [ALL_EVENTS] if ALL_EVENTS in value else list(dict.fromkeys(value))


def check_url(value: str) -> str:
    """An absolute http(s) URL with a host; where it may point is checked when sending (see sender)."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("must name a host, e.g. https://shop.example/hooks")
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password; the signature authenticates the request")
    if port == 0 or any(ch.isspace() for ch in value):
        raise ValueError("not a valid URL")
    return value


def check_secret(value: str) -> str:
    """'whsec_' + base64 of enough random bytes, as standardwebhooks.Webhook(secret) reads it."""
    value = value.strip()
    if not value.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX!r} (Standard Webhooks format)")
    try:
        raw = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX!r} followed by base64") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"is too short: {len(raw)} bytes, at least {MIN_SECRET_BYTES} are needed")
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"is too long: {len(raw)} bytes, at most {MAX_SECRET_BYTES}")
    return value


def mask_secret(secret: str) -> str:
    """Enough of a secret to recognise it, never enough to use it."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


Url = Annotated[str, Field(max_length=2000), AfterValidator(check_url)]
EventTypes = Annotated[
    list[str], Field(max_length=50, description=EVENT_TYPES_DESCRIPTION), AfterValidator(check_event_types)
]
Secret = Annotated[str, Field(max_length=200), AfterValidator(check_secret)]


class WebhookSubscriptionCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="Where events are POSTed: http:// or https:// only.")
    event_types: EventTypes
    description: str = Field(default="", max_length=200)
    secret: Secret | None = Field(default=None, description=SECRET_DESCRIPTION)
    active: bool = True


class WebhookSubscriptionUpdate(InputModel):
    """The fields to change; those left out stay as they are. Setting active=true clears the
    reason a subscription was disabled and its failure count."""

    model_config = ConfigDict(extra="forbid")

    # Typed without None: an explicit null is refused (422); a field left out is not set.
    url: Url = Field(default=None)  # type: ignore[assignment]
    event_types: EventTypes = Field(default=None)  # type: ignore[assignment]
    description: str = Field(default=None, max_length=200)  # type: ignore[assignment]
    secret: Secret = Field(default=None, description="A new secret (rotation).")  # type: ignore[assignment]
    active: bool = Field(default=None)  # type: ignore[assignment]


class WebhookSubscription(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    secret_hint: str = Field(description="The secret, masked; it is shown in full only when created.")
    active: bool
    disabled_reason: str | None = Field(description="Why Patron disabled it, if it did.")
    consecutive_failures: int
    created_at: datetime
    created_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: SubscriptionRow) -> WebhookSubscription:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            event_types=row.event_types,
            secret_hint=mask_secret(row.secret),
            active=row.active,
            disabled_reason=row.disabled_reason,
            consecutive_failures=row.consecutive_failures,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
        )


class WebhookSubscriptionCreated(WebhookSubscription):
    secret: str = Field(description="The signing secret in full: shown this once, keep it.")


class WebhookSubscriptionList(BaseModel):
    items: list[WebhookSubscription]


class WebhookDelivery(BaseModel):
    id: int
    subscription_id: int
    event_id: str = Field(description="The event's id, sent as webhook-id: the same on every retry and resend.")
    event_type: str
    attempt: int
    outcome: DeliveryOutcome
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_excerpt: str | None = Field(description="The first 500 characters of the receiver's answer.")
    attempted_at: datetime

    @classmethod
    def of(cls, row: DeliveryRow) -> WebhookDelivery:
        return cls.model_validate(row, from_attributes=True)


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None


class Resent(BaseModel):
    task_id: int = Field(description="The outbox task that will deliver it.")
    event_id: str
