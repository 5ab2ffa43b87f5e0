"""A token never outranks its user: its rights are the lower of its own role and the user's
current one, and a deactivated user's tokens stop working."""

from __future__ import annotations

from fastapi.testclient import TestClient

from patron.models import User
from patron.models.enums import Role
from patron.users import service
from patron.users.permissions import ROLE_PERMISSIONS, lower_role


def product(n: int) -> dict:
    return {"sku": f"DEMOTE-{n}", "name": "Mug", "price": "5.00"}


def test_a_demoted_users_token_loses_the_rights_the_user_lost(app, session):
    service.create_user(session, email="m@patron.example", password="long-enough", role="marketer")
    _, secret = service.create_token(session, email="m@patron.example", role="marketer")
    client = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    assert client.post("/api/v1/products", json=product(1)).status_code == 201

    user = session.query(User).filter_by(email="m@patron.example").one()
    user.role = Role.viewer
    session.flush()
    r = client.post("/api/v1/products", json=product(2))
    assert r.status_code == 403 and "viewer" in r.json()["error"]
    assert client.get("/api/v1/products").status_code == 200  # still reads, as a viewer does

    user.is_active = False
    session.flush()
    assert client.get("/api/v1/products").status_code == 401


def test_the_lower_of_two_roles_is_what_both_allow():
    assert lower_role(Role.admin, Role.marketer) == Role.marketer
    assert lower_role(Role.viewer, Role.admin) == Role.viewer
    # Neither contains the other: what both allow is reading, the viewer's rights.
    assert lower_role(Role.agent, Role.analyst) == Role.viewer
    for a in Role:
        for b in Role:
            low = lower_role(a, b)
            assert ROLE_PERMISSIONS[low] <= ROLE_PERMISSIONS[a] & ROLE_PERMISSIONS[b]


def test_a_token_of_a_user_now_in_another_role_keeps_only_what_both_allow(session):
    service.create_user(session, email="a@patron.example", password="long-enough", role="agent")
    _, secret = service.create_token(session, email="a@patron.example", role="agent")
    user = session.query(User).filter_by(email="a@patron.example").one()
    user.role = Role.analyst
    session.flush()
    assert service.principal_for_token(session, secret).role == Role.viewer
