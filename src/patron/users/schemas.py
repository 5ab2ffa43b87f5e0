from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from patron.models.enums import Role
from patron.validation import InputModel


class UserCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: str = Field(default="", max_length=200)
    password: str = Field(min_length=8, max_length=200)
    role: Role = Role.viewer


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class Principal(BaseModel):
    """Who is acting: the user and the role in force (a token may carry less than its user)."""

    user_id: int
    email: str
    name: str
    role: Role
