from __future__ import annotations

import pytest

from patron.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from patron.models import ApiToken
from patron.users import service


def test_passwords_are_argon2_hashed_and_verified(session):
    user = service.create_user(session, email="Ops@Patron.example", password="s3cret-enough", role="agent")
    assert user.email == "ops@patron.example"
    assert user.password_hash.startswith("$argon2id$") and "s3cret-enough" not in user.password_hash
    assert service.authenticate(session, email=" OPS@patron.example ", password="s3cret-enough").id == user.id
    assert user.last_login_at is not None


def test_failed_sign_in_does_not_reveal_whether_the_user_exists(session):
    service.create_user(session, email="known@patron.example", password="right-password", role="viewer")
    with pytest.raises(NotAuthenticated) as wrong_password:
        service.authenticate(session, email="known@patron.example", password="wrong-password")
    with pytest.raises(NotAuthenticated) as unknown_user:
        service.authenticate(session, email="ghost@patron.example", password="wrong-password")
    assert wrong_password.value.message == unknown_user.value.message == "Incorrect email or password."


def test_inactive_users_cannot_sign_in(session):
    user = service.create_user(session, email="gone@patron.example", password="right-password", role="viewer")
    user.is_active = False
    with pytest.raises(NotAuthenticated):
        service.authenticate(session, email="gone@patron.example", password="right-password")


def test_user_input_is_validated(session):
    with pytest.raises(ValidationFailed) as exc:
        service.create_user(session, email="nope", password="short", role="boss")
    assert {e["field"] for e in exc.value.errors} == {"email", "password", "role"}
    service.create_user(session, email="one@patron.example", password="long-enough", role="viewer")
    with pytest.raises(Conflict):
        service.create_user(session, email="ONE@patron.example", password="long-enough", role="viewer")


def test_tokens_are_stored_hashed_and_bounded_by_the_users_role(session):
    service.create_user(session, email="agent@patron.example", password="long-enough", role="agent")
    token, secret = service.create_token(session, email="agent@patron.example", role="viewer")
    assert secret.startswith("ptn_") and len(secret) > 40
    assert session.query(ApiToken).filter(ApiToken.token_hash == secret).count() == 0
    assert token.prefix == secret[:10]
    assert service.principal_for_token(session, secret).role == "viewer"
    with pytest.raises(PermissionDenied):
        service.create_token(session, email="agent@patron.example", role="admin")
    with pytest.raises(NotFound):
        service.create_token(session, email="nobody@patron.example", role="viewer")


def test_token_use_is_recorded_at_most_once_a_minute(session):
    from datetime import timedelta

    service.create_user(session, email="till@patron.example", password="long-enough", role="marketer")
    token, secret = service.create_token(session, email="till@patron.example", role="marketer")
    assert token.last_used_at is None
    service.principal_for_token(session, secret)
    first = token.last_used_at
    assert first is not None
    service.principal_for_token(session, secret)
    assert token.last_used_at == first  # a second call within the minute writes nothing
    token.last_used_at = first - timedelta(minutes=2)
    service.principal_for_token(session, secret)
    assert token.last_used_at > first
