"""Staff users, password sign-in and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.db import write_later
from patron.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied
from patron.models import ApiToken, User
from patron.models.base import utcnow
from patron.models.enums import Role
from patron.users import repository
from patron.users.permissions import ROLE_PERMISSIONS, lower_role
from patron.users.schemas import Principal, UserCreate
from patron.validation import raise_validation

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a failed sign-in takes the same time
# whether or not the user exists.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
TOKEN_PREFIX = "ptn_"
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def create_user(session: Session, *, email: str, password: str, role: Role | str, name: str = "") -> User:
    """Create a staff user; the email must be unused."""
    try:
        data = UserCreate(email=email, password=password, role=role, name=name)
    except ValidationError as exc:
        raise_validation(exc)
    normalised = data.email.lower()
    if repository.get_by_email(session, normalised):
        raise Conflict(f"a user with email {normalised} already exists", detail={"field": "email"})
    user = User(
        email=normalised,
        name=data.name,
        password_hash=_hasher.hash(data.password),
        role=data.role,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same email
        raise Conflict(f"a user with email {normalised} already exists") from exc
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """Check a password; the error never reveals whether the email exists."""
    user = repository.get_by_email(session, email.strip().lower())
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.is_active:
        raise NotAuthenticated("Incorrect email or password.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def principal_for_user(user: User) -> Principal:
    return Principal(user_id=user.id, email=user.email, name=user.name, role=user.role)


def create_token(session: Session, *, email: str, role: Role | str, name: str = "") -> tuple[ApiToken, str]:
    """Issue an API token for an existing user. Returns the row and the secret, shown once."""
    user = repository.get_by_email(session, email.strip().lower())
    if user is None:
        raise NotFound(f"no user with email {email}; create one first with `patron users create`")
    role = Role(role)
    if not ROLE_PERMISSIONS[role] <= ROLE_PERMISSIONS[user.role]:
        raise PermissionDenied(f"a token cannot have more rights than its user ({user.role})")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_token_hash(secret),
        role=role,
    )
    session.add(token)
    session.flush()
    return token, secret


def principal_for_token(session: Session, secret: str) -> Principal:
    """Resolve a bearer token to who is acting, or raise NotAuthenticated."""
    token = repository.get_token_by_hash(session, _token_hash(secret))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        raise NotAuthenticated("Invalid or revoked API token.")
    now = utcnow()
    # Recorded at minute resolution: writing on every call would turn each read request
    # into a write (and serialise reads on SQLite). A read-only request on SQLite records
    # it in a short transaction of its own after its reads (see patron.db.write_later).
    if _use_due(token, now):
        token_id = token.id

        def record_use(s: Session) -> None:
            used = s.get(ApiToken, token_id)
            if used is not None and _use_due(used, now):
                used.last_used_at = now

        write_later(session, record_use)
    # The user may have been demoted since the token was issued: it never outranks them.
    role = lower_role(token.role, token.user.role)
    return Principal(user_id=token.user_id, email=token.user.email, name=token.user.name, role=role)


def _use_due(token: ApiToken, now) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION


def list_tokens(session: Session, *, email: str | None = None) -> list[tuple[ApiToken, str]]:
    """Every token (never its secret) with its user's email, oldest first."""
    return repository.list_tokens(session, email.strip().lower() if email else None)


def revoke_token(session: Session, *, prefix: str) -> ApiToken:
    """Revoke the token whose shown prefix is `prefix`; it stops working at once."""
    matches = repository.tokens_by_prefix(session, prefix)
    if not matches:
        raise NotFound(f"no token starts with {prefix!r}; `patron tokens list` shows them")
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} tokens start with {prefix!r}; revoke them from the database by id")
    token = matches[0]
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def get_user(session: Session, user_id: int) -> User:
    user = repository.get(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users(session: Session) -> list[User]:
    return repository.list_users(session)


def has_users(session: Session) -> bool:
    return repository.count(session) > 0


def _token_hash(secret: str) -> str:
    # Tokens are 256-bit random, so a fast hash is enough (no need for argon2 here).
    return hashlib.sha256(secret.encode()).hexdigest()
