from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.models import ApiToken, User


def get_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def get_token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).one_or_none()


def list_tokens(session: Session, email: str | None = None) -> list[tuple[ApiToken, str]]:
    stmt = select(ApiToken, User.email).join(User, User.id == ApiToken.user_id)
    if email:
        stmt = stmt.where(User.email == email)
    return [(t, e) for t, e in session.execute(stmt.order_by(ApiToken.created_at, ApiToken.id))]


def tokens_by_prefix(session: Session, prefix: str) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)))
