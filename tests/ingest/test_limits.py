"""Batch bodies: their own size limit, 1..10,000 records, and a clear error for anything else."""

from __future__ import annotations

from fastapi.testclient import TestClient

from patron.api.app import create_app
from patron.settings import Settings

URL = "/api/v1/customers/batch"


def test_batch_paths_take_bodies_over_the_normal_limit(admin, session):
    records = [{"email": f"c{i}@shop.example", "attributes": {"note": "x" * 200}} for i in range(5000)]
    r = admin.post(URL, json={"records": records})
    assert len(r.request.content) > 1_000_000
    assert r.status_code == 200 and r.json()["summary"]["created"] == 5000
    # ...while the same size elsewhere is still refused.
    r = admin.post("/api/v1/customers", content=r.request.content, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_the_batch_limit_is_its_own_setting(engine):
    app = create_app(engine, settings=Settings(max_body_bytes=1000, max_batch_body_bytes=5000))
    client = TestClient(app)
    body = b'{"records": [{"email": "' + b"x" * 6000 + b'@shop.example"}]}'
    r = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"] == {"limit": 5000}
    small = b'{"records": [{"email": "' + b"x" * 2000 + b'@shop.example"}]}'
    r = client.post(URL, content=small, headers={"content-type": "application/json"})
    assert r.status_code == 401  # past the size check, stopped for want of a token
    r = client.post("/api/v1/customers", content=small, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"] == {"limit": 1000}


def test_the_record_count_is_capped_at_ten_thousand(admin):
    r = admin.post(URL, json={"records": [{}] * 10_001})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "records" and "10000" in r.json()["detail"][0]["message"]
    r = admin.post(URL, json={"records": [{}] * 10_000})
    assert r.status_code == 200 and r.json()["summary"]["rejected"] == 10_000


def test_bodies_that_are_not_a_batch_get_a_clear_422(admin):
    cases = {
        b"": "body",
        b"{not json": None,
        b'[{"email": "a@shop.example"}]': "body",
        b'{"records": {"email": "a@shop.example"}}': "records",
        b'{"records": []}': "records",
        b'{"rows": [{"email": "a@shop.example"}]}': None,
    }
    for body, field in cases.items():
        r = admin.post(URL, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, (body, r.text)
        assert set(r.json()) == {"error", "detail"}
        if field:
            assert r.json()["detail"][0]["field"] == field, (body, r.json())
