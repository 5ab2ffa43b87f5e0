"""Idempotency-Key for POST endpoints: a retried request returns the stored response.

Used by every domain that accepts the header (the batch API now, loyalty next), so the
few queries on its one table live here rather than in a domain repository.

The key row is inserted *before* the work and in the same transaction, so:

- a rollback (any error) stores nothing and the client may simply retry;
- two requests racing with one key meet on the UNIQUE(scope, key) index: PostgreSQL
  makes the second insert wait for the first transaction, and the loser gets a 409
  without having done (or kept) any of its work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.errors import Conflict, ValidationFailed
from patron.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200

HEADER_DESCRIPTION = (
    "Optional, at most 200 characters. Retrying with the same key and the same body returns the stored "
    "response (with `Idempotent-Replayed: true`) without doing anything again; the same key with a "
    "different body is refused with 422; a key still in use by a concurrent request gives 409. Keys are "
    "per caller and endpoint."
)
# For an operation's `responses=`: documents the replay header on its success status.
REPLAYED_RESPONSE_HEADERS = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the stored response of an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


@dataclass(frozen=True)
class Outcome:
    status_code: int
    content: Any
    replayed: bool

    def response(self) -> JSONResponse:
        headers = {REPLAYED_HEADER: "true"} if self.replayed else None
        return JSONResponse(self.content, status_code=self.status_code, headers=headers)


@dataclass(frozen=True)
class IdempotentRequest:
    """What a request contributes: who and where (scope), the key sent, and the raw body."""

    scope: str
    key: str | None
    body: bytes

    def run(self, session: Session, work: Callable[[], tuple[int, Any]]) -> JSONResponse:
        """Run `work` (returning status and JSON-ready content) once per key; see run_once."""
        return run_once(session, scope=self.scope, key=self.key, body=self.body, work=work).response()


def scope_for(user_id: int, method: str, path: str) -> str:
    """Keys are per caller and endpoint: two shops (or two endpoints) may both send '1'."""
    return f"user:{user_id} {method.upper()} {path}"[:200]


def run_once(
    session: Session, *, scope: str, key: str | None, body: bytes, work: Callable[[], tuple[int, Any]]
) -> Outcome:
    """Do `work` unless this (scope, key) already did it; store its result in the same transaction.

    Raises ValidationFailed (422) when the key was used with a different body, and Conflict
    (409) when a concurrent request holds or has just committed the same key.
    """
    if key is None:
        status, content = work()
        return Outcome(status, content, replayed=False)
    digest = hashlib.sha256(body).hexdigest()
    stored = _stored(session, scope, key)
    if stored is not None:
        if stored.request_sha256 != digest:
            raise ValidationFailed(
                [
                    {
                        "field": HEADER,
                        "message": "was already used with a different request body; send a new key for a new request",
                    }
                ]
            )
        return Outcome(stored.status_code, stored.response, replayed=True)
    claim = IdempotencyKey(scope=scope, key=key, request_sha256=digest, status_code=0, response={})
    session.add(claim)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"a request with this {HEADER} is in progress or done; retry to get its response",
            detail={"field": HEADER},
        ) from exc
    status, content = work()
    content = _storable(content)
    claim.status_code, claim.response = status, content
    session.flush()
    return Outcome(status, content, replayed=False)


def _storable(content: Any) -> Any:
    """The content with NUL characters and unpaired surrogates written as escapes.

    PostgreSQL's JSONB can hold neither; in a response they can only be echoes of bad input
    (say a field path naming a key with a NUL in it). The first response is the stored
    one, so a replay is identical to it.
    """
    dumped = json.dumps(content)
    if "\\u0000" not in dumped and "\\ud" not in dumped:
        return content
    return _escape(content)


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        value = value.replace("\x00", "\\x00")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_escape(k): _escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape(v) for v in value]
    return value


def _stored(session: Session, scope: str, key: str) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    ).one_or_none()


def purge(session: Session, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete keys stored more than `older_than` ago; returns how many went."""
    cutoff = (now or datetime.now(UTC)) - older_than
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return result.rowcount or 0
