"""Schemas every API router shares: the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every API error: a sentence for people, and structured detail for programs."""

    error: str
    detail: Any = Field(
        default=None, description="For 422: a list of {field, message}; otherwise the field at fault, if any."
    )
