"""One error hierarchy; each class carries the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class PatronError(Exception):
    """Base error: a message for people plus optional structured detail."""

    status = 400

    def __init__(self, message: str, *, detail: Any = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if status is not None:
            self.status = status


class NotAuthenticated(PatronError):
    status = 401


class PermissionDenied(PatronError):
    status = 403


class NotFound(PatronError):
    status = 404


class Conflict(PatronError):
    status = 409


class InvalidInput(PatronError):
    """Input that is well-formed but not acceptable (for example a bad cursor)."""

    status = 400


class ValidationFailed(PatronError):
    """Field-level validation failure; detail is a list of {field, message}."""

    status = 422

    def __init__(self, errors: list[dict[str, str]]):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"Invalid input ({summary})", detail=errors)
        self.errors = errors


class ConvergenceError(PatronError):
    status = 500
