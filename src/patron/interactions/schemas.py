from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.models.enums import Direction, InteractionChannel, InteractionKind
from patron.orders.schemas import AwarePast
from patron.validation import FieldError, Id, InputModel, reject_nulls

# The usual channel and direction of each kind, used when the caller leaves them out.
DEFAULTS: dict[InteractionKind, tuple[InteractionChannel, Direction]] = {
    InteractionKind.store_visit: (InteractionChannel.in_store, Direction.inbound),
    InteractionKind.web_visit: (InteractionChannel.web, Direction.inbound),
    InteractionKind.call: (InteractionChannel.phone, Direction.inbound),
    InteractionKind.chat: (InteractionChannel.chat, Direction.inbound),
    InteractionKind.email_in: (InteractionChannel.email, Direction.inbound),
    InteractionKind.email_out: (InteractionChannel.email, Direction.outbound),
    InteractionKind.web_form: (InteractionChannel.web, Direction.inbound),
    InteractionKind.note: (InteractionChannel.internal, Direction.internal),
    InteractionKind.complaint: (InteractionChannel.phone, Direction.inbound),
    InteractionKind.thank_you: (InteractionChannel.email, Direction.inbound),
    InteractionKind.feedback: (InteractionChannel.web, Direction.inbound),
}


class InteractionCreate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: Id
    kind: InteractionKind
    channel: InteractionChannel | None = None
    direction: Direction | None = None
    occurred_at: AwarePast | None = Field(default=None, description="Defaults to now.")
    subject: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=20_000)
    payload: dict[str, Any] = Field(default_factory=dict)
    store_id: Id | None = None

    @model_validator(mode="after")
    def _defaults(self):
        channel, direction = DEFAULTS[self.kind]
        self.channel = self.channel or channel
        self.direction = self.direction or direction
        if self.kind == InteractionKind.note and not (self.body or self.subject):
            raise FieldError("body", "a note needs a body")
        return self


class InteractionUpdate(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=20_000)
    payload: dict[str, Any] | None = None
    occurred_at: AwarePast | None = None

    @model_validator(mode="after")
    def _no_nulls(self):
        reject_nulls(self, "payload", "occurred_at")
        return self


class Interaction(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    kind: InteractionKind
    channel: InteractionChannel
    direction: Direction
    occurred_at: datetime
    subject: str | None
    body: str | None
    payload: dict[str, Any]
    store_id: int | None
    user_id: int | None
    created_at: datetime


class InteractionPage(BaseModel):
    items: list[Interaction]
    next_cursor: str | None
