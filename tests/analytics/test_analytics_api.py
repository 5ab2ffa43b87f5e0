"""The analytics API: run an analysis, list and read runs, the tracking plot, a customer's scores."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.db import session_scope
from patron.models.enums import Role
from patron.users.permissions import Permission, allows
from tests.analytics.helpers import CDNOW_HOLDOUT_DAYS, import_cdnow
from tests.factories import create_customer, create_token_for

RUNS = "/api/v1/analytics/runs"


def test_every_route_needs_a_token(app):
    client = TestClient(app)
    for method, url in [
        ("POST", RUNS),
        ("GET", RUNS),
        ("GET", f"{RUNS}/1"),
        ("GET", f"{RUNS}/1/tracking.png"),
        ("GET", "/api/v1/customers/1/scores"),
    ]:
        r = client.request(method, url, json={})
        assert r.status_code == 401, (method, url, r.text)
        assert r.headers["www-authenticate"] == "Bearer" and set(r.json()) == {"error", "detail"}


def test_running_an_analysis_needs_the_run_analysis_permission(api):
    assert {role for role in Role if allows(role, Permission.run_analysis)} == {Role.admin, Role.analyst}
    for role in (Role.viewer, Role.agent, Role.marketer):
        r = api(role.value).post(RUNS, json={})
        assert r.status_code == 403, (role, r.text)
        assert "run_analysis" in r.json()["error"]
    # Reading runs is for every role.
    assert api("viewer").get(RUNS).status_code == 200


def test_an_analyst_runs_an_analysis_of_an_empty_database(api):
    analyst = api("analyst")
    r = analyst.post(RUNS, json={"model": "bgnbd", "horizon_days": 90})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "completed" and run["customers"] == 0 and run["requested_model"] == "bgnbd"
    assert run["actor"].startswith("api:") and run["settings"]["horizon_days"] == 90
    assert run["tracking_png"] is None and run["equity"] is None
    assert analyst.get(f"{RUNS}/{run['id']}").json()["id"] == run["id"]
    assert run["id"] in [item["id"] for item in analyst.get(RUNS).json()["items"]]
    r = analyst.get(f"{RUNS}/{run['id']}/tracking.png")
    assert r.status_code == 404 and "no tracking plot" in r.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"horizon_days": 0},
        {"horizon_days": 3651},
        {"discount_rate": 1.5},
        {"margin": 0},
        {"holdout_days": -1},
        {"model": "lifetimes"},
        {"as_of": "1998-02-30"},
        {"unknown": 1},
    ],
)
def test_bad_bodies_are_422(admin, body):
    r = admin.post(RUNS, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_an_as_of_in_the_future_is_400(admin):
    r = admin.post(RUNS, json={"as_of": (date.today() + timedelta(days=2)).isoformat()})
    assert r.status_code == 400 and r.json()["detail"] == {"field": "as_of"}


def test_unknown_run_and_customer_are_404(admin):
    assert admin.get(f"{RUNS}/999999").status_code == 404
    assert admin.get(f"{RUNS}/999999/tracking.png").status_code == 404
    assert admin.get("/api/v1/customers/999999/scores").status_code == 404


def test_a_customer_without_runs_has_no_scores(admin, session):
    customer = create_customer(session)
    r = admin.get(f"/api/v1/customers/{customer.id}/scores")
    assert r.status_code == 200 and r.json() == {"customer_id": customer.id, "items": []}


# --------------------------------------------------------------------------- with data


@pytest.fixture(scope="module")
def cdnow_api(database_factory):
    """The app on a database of its own holding the CDNOW sample, and an analyst's client.

    Committed data and the real request session: analyze() reads what is committed.
    """
    engine = database_factory.new_engine()
    import_cdnow(engine)
    with session_scope(engine) as session:
        token = create_token_for(session, "analyst")
    client = TestClient(create_app(engine), headers={"Authorization": f"Bearer {token}"})
    yield client
    engine.dispose()


def test_run_the_cdnow_analysis_through_the_api(cdnow_api):
    r = cdnow_api.post(RUNS, json={"as_of": "1998-06-30", "holdout_days": CDNOW_HOLDOUT_DAYS})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "completed" and run["customers"] == 2357 and run["model"] in ("bgnbd", "pareto")
    assert run["validation"]["chosen"] == run["model"]
    assert run["fits"][run["model"]]["log_likelihood"] < 0 and run["equity"] > 0
    assert run["timings"]["total"] > 0
    png = cdnow_api.get(run["tracking_png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    detail = cdnow_api.get(f"{RUNS}/{run['id']}").json()
    assert detail["fits"] == run["fits"] and detail["validation"]["holdout_days"] == CDNOW_HOLDOUT_DAYS


def test_a_customers_scores_across_runs(cdnow_api):
    first = cdnow_api.post(RUNS, json={"as_of": "1998-06-30", "holdout_days": 0, "model": "bgnbd"}).json()
    second = cdnow_api.post(RUNS, json={"as_of": "1998-03-31", "holdout_days": 0, "model": "bgnbd"}).json()
    customer_id = cdnow_api.get("/api/v1/customers", params={"limit": 1}).json()["items"][0]["id"]
    r = cdnow_api.get(f"/api/v1/customers/{customer_id}/scores")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    as_ofs = [item["as_of"] for item in items]
    assert as_ofs == sorted(as_ofs)
    by_run = {item["run_id"]: item for item in items}
    assert {first["id"], second["id"]} <= set(by_run)
    latest = by_run[first["id"]]
    assert latest["model"] == "bgnbd" and latest["orders"] >= 1 and latest["rfm_segment"] is not None
    assert latest["churn_band"] in ("low", "medium", "high", "lost") and 0 <= latest["p_alive"] <= 1
    assert float(latest["clv"]) >= 0 and float(latest["revenue"]) > 0
    listed = [item["id"] for item in cdnow_api.get(RUNS, params={"limit": 2}).json()["items"]]
    assert listed == [second["id"], first["id"]]
