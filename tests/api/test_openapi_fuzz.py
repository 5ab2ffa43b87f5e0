"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis).

Generated requests, valid and invalid, must never produce a server error, and every
response must match what the document promises (status codes, bodies, content types).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.factories import create_customer, create_product, create_token_for


@pytest.fixture
def admin_token(session) -> str:
    create_customer(session)  # so that generated ids sometimes hit real rows
    create_product(session)
    return create_token_for(session, "admin")


@pytest.fixture
def api_schema(app, admin_token):
    # Webhooks on: with no secret every call is a 503 by design, which the fuzzer counts as
    # a server error; with one, unsigned generated calls must get a well-formed 401.
    app.state.settings = app.state.settings.model_copy(update={"webhook_secret": "fuzz-secret"})
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")

# What the document can promise. Left out: positive/negative data acceptance, which assume
# the schema expresses every rule (cross-field rules like "total must add up" it cannot),
# and Allow-header conformance (Starlette lists only the matched route's methods on 405).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_errors_and_matches_its_schema(case, admin_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)
