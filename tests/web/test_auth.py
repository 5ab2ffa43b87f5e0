"""Sign-in, sign-out, CSRF and role checks on the HTML pages."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from patron.customers import service as customers
from patron.models.enums import Role
from patron.users.permissions import Permission, allows
from patron.web.app import page_routers
from tests.factories import create_customer, create_user
from tests.routes import required_permission
from tests.web.conftest import PASSWORD, WebClient, csrf_from

FAILED = "Incorrect email or password."


def page_routes():
    for router in page_routers():
        for route in router.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods):
                    yield method, route


PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
PROTECTED = sorted((m, r.path, r) for m, r in page_routes() if (m, r.path) not in PUBLIC)


def test_there_are_pages_to_check():
    assert len(PROTECTED) >= 12


@pytest.mark.parametrize(("method", "path", "route"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_every_page_names_a_permission_and_sends_strangers_to_sign_in(method, path, route, anonymous):
    assert required_permission(route) is not None, f"{method} {path} has no require_page(...) dependency"
    url = re.sub(r"\{[^}]+\}", "1", path)
    r = anonymous.submit(url) if method == "POST" else anonymous.get(url)
    assert r.status_code == 303, (method, path, r.status_code)
    assert r.headers["location"].startswith("/login")


def test_signed_out_get_redirects_to_login_with_next(anonymous):
    r = anonymous.get("/customers?q=ada&country=GB")
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("/login?next=")
    assert unquote(location.split("next=", 1)[1]) == "/customers?q=ada&country=GB"


def test_sign_in_goes_to_next_and_shows_the_user(session, anonymous):
    user = create_user(session, "marketer", password=PASSWORD)
    r = anonymous.submit("/login", {"email": user.email.upper(), "password": PASSWORD, "next": "/customers"})
    assert r.status_code == 303
    assert r.headers["location"] == "/customers"
    page = anonymous.get("/customers")
    assert page.status_code == 200
    assert user.email in page.text
    assert "marketer" in page.text
    assert 'action="/logout"' in page.text


def test_failed_sign_in_says_the_same_for_unknown_email_and_wrong_password(session, anonymous):
    user = create_user(session, "admin", password=PASSWORD)
    wrong = anonymous.submit("/login", {"email": user.email, "password": "not the password"})
    unknown = anonymous.submit("/login", {"email": "nobody@patron.example", "password": PASSWORD})
    for r in (wrong, unknown):
        assert r.status_code == 200
        assert FAILED in r.text
        assert "not found" not in r.text.lower() and "no user" not in r.text.lower()
    assert wrong.status_code == unknown.status_code
    # Apart from the email typed in, the two pages are identical.
    assert wrong.text.replace(user.email, "X") == unknown.text.replace("nobody@patron.example", "X")
    assert anonymous.get("/").status_code == 303  # still signed out


def test_inactive_user_cannot_sign_in_and_is_signed_out(session, web):
    client = web("admin")
    client.user.is_active = False
    session.flush()
    assert client.get("/customers").status_code == 303
    r = client.submit("/login", {"email": client.user.email, "password": PASSWORD}, token=client.refresh_csrf("/login"))
    assert FAILED in r.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "evil.example",
        "/\r\nSet-Cookie:x=1",
    ],
)
def test_next_refuses_anything_but_a_local_path(session, anonymous, target):
    user = create_user(session, "admin", password=PASSWORD)
    r = anonymous.submit("/login", {"email": user.email, "password": PASSWORD, "next": target})
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_next_keeps_a_local_path_with_query(session, anonymous):
    user = create_user(session, "admin", password=PASSWORD)
    r = anonymous.submit("/login", {"email": user.email, "password": PASSWORD, "next": "/customers?q=ada"})
    assert r.headers["location"] == "/customers?q=ada"


def test_login_page_only_renders_local_next(anonymous):
    page = anonymous.get("/login?next=https://evil.example/")
    assert 'name="next" value="/"' in page.text


def test_sign_in_rotates_the_session_and_its_csrf_token(session, anonymous):
    user = create_user(session, "admin", password=PASSWORD)
    before = anonymous.csrf
    old_cookie = anonymous.cookies.get("patron_session")
    anonymous.submit("/login", {"email": user.email, "password": PASSWORD})
    after = anonymous.refresh_csrf("/customers")
    assert after != before
    assert anonymous.cookies.get("patron_session") != old_cookie
    # The pre-login token no longer works for a signed-in form.
    assert anonymous.submit("/logout", token=before).status_code == 403


def test_sign_out_needs_post_and_csrf(admin_web):
    assert admin_web.get("/logout").status_code == 405
    assert admin_web.submit("/logout", token="").status_code == 403
    assert admin_web.get("/customers").status_code == 200  # still signed in
    r = admin_web.submit("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert admin_web.get("/customers").status_code == 303


def test_sign_in_form_needs_csrf(session, app):
    user = create_user(session, "admin", password=PASSWORD)
    client = WebClient(app, follow_redirects=False)
    r = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 403
    assert "<html" in r.text
    assert client.get("/").status_code == 303


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_customer_form_without_the_right_csrf_token_writes_nothing(session, admin_web, token):
    before = customers.count_customers(session)
    data = {"first_name": "Mallory", "email": "mallory@shop.example"}
    if token is None:
        r = admin_web.post("/customers/new", data=data)
    else:
        r = admin_web.submit("/customers/new", data, token=token)
    assert r.status_code == 403
    assert "expired or did not come from this site" in r.text
    assert customers.count_customers(session) == before


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_note_without_the_right_csrf_token_writes_nothing(session, admin_web, token):
    customer = create_customer(session)
    data = {"body": "sneaky"}
    if token is None:
        r = admin_web.post(f"/customers/{customer.id}/notes", data=data)
    else:
        r = admin_web.submit(f"/customers/{customer.id}/notes", data, token=token)
    assert r.status_code == 403
    assert "sneaky" not in admin_web.get(f"/customers/{customer.id}").text


def test_a_token_from_another_session_is_refused(session, web):
    alice, bob = web("admin"), web("admin")
    customer = create_customer(session)
    r = alice.submit(f"/customers/{customer.id}/notes", {"body": "cross"}, token=bob.csrf)
    assert r.status_code == 403


@pytest.mark.parametrize("role", [r.value for r in Role if not allows(r, Permission.write_interactions)])
def test_roles_without_write_interactions_cannot_add_notes(session, web, role):
    client = web(role)
    customer = create_customer(session)
    r = client.submit(f"/customers/{customer.id}/notes", {"body": "not allowed"})
    assert r.status_code == 403
    assert "does not allow" in r.text
    page = client.get(f"/customers/{customer.id}")
    assert page.status_code == 200
    assert "not allowed" not in page.text
    assert f'action="/customers/{customer.id}/notes"' not in page.text  # no form offered


@pytest.mark.parametrize("role", [r.value for r in Role if not allows(r, Permission.write_customers)])
def test_roles_without_write_customers_cannot_create_or_edit(session, web, role):
    client = web(role)
    customer = create_customer(session, city="Leeds")
    before = customers.count_customers(session)
    assert client.get("/customers/new").status_code == 403
    assert client.submit("/customers/new", {"first_name": "Nope"}).status_code == 403
    assert customers.count_customers(session) == before
    assert client.get(f"/customers/{customer.id}/edit").status_code == 403
    assert client.submit(f"/customers/{customer.id}/edit", {"city": "York"}).status_code == 403
    assert customers.get_customer(session, customer.id).city == "Leeds"
    assert "New customer" not in client.get("/customers").text


def test_viewer_can_read(session, web):
    client = web("viewer")
    customer = create_customer(session)
    for path in ("/", "/customers", f"/customers/{customer.id}", "/segments", "/settings"):
        assert client.get(path).status_code == 200, path


def test_error_pages_use_the_layout(session, admin_web):
    r = admin_web.get("/no-such-page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text and 'href="/customers"' in r.text  # navigation is there
    r = admin_web.get("/customers/2000000")
    assert r.status_code == 404 and "customer 2000000 not found" in r.text
    r = admin_web.get("/customers/abc")
    assert r.status_code == 422 and "<html" in r.text
    r = admin_web.get("/customers?cursor=not-a-cursor")
    assert r.status_code == 400 and "cursor is not valid" in r.text
    r = admin_web.get("/customers?sort=password")
    assert r.status_code == 400 and "cannot sort by" in r.text


def test_api_errors_stay_json(admin_web):
    r = admin_web.get("/api/v1/customers")
    assert r.status_code == 401
    assert r.json()["error"]


def test_unexpected_errors_render_a_page_without_internals(app, session, admin_web):
    def boom():
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", boom)
    client = TestClient(app, raise_server_exceptions=False, cookies=admin_web.cookies)
    r = client.get("/boom")
    assert r.status_code == 500
    assert "Something went wrong" in r.text
    assert "secret internal detail" not in r.text
    api = client.get("/api/v1/customers")  # a JSON route still answers JSON meanwhile
    assert api.status_code == 401


def test_pages_carry_security_headers(admin_web):
    r = admin_web.get("/customers")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_session_cookie_flags(session, app):
    user = create_user(session, "admin", password=PASSWORD)
    client = WebClient(app, follow_redirects=False)
    token = csrf_from(client.get("/login").text)
    r = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_coming_soon_pages(admin_web):
    for path, title in [("/campaigns", "Campaigns"),
                        ("/feedback", "Feedback"), ("/tickets", "Tickets"), ("/settings", "Settings")]:  # fmt: skip
        r = admin_web.get(path)
        assert r.status_code == 200
        assert f"<h1>{title}</h1>" in r.text and "Coming soon" in r.text
        assert 'aria-current="page"' in r.text


def test_hsts_is_sent_on_every_answer_only_when_served_over_https(engine):
    from patron.api.app import create_app
    from patron.settings import Settings

    secure = TestClient(create_app(engine, settings=Settings(secure_cookies=True)), base_url="https://testserver")
    for path in ("/login", "/api/v1/customers", "/static/css/patron.css", "/no-such-page"):
        assert secure.get(path).headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", path
    plain = TestClient(create_app(engine, settings=Settings(secure_cookies=False)))
    assert "strict-transport-security" not in plain.get("/login").headers
