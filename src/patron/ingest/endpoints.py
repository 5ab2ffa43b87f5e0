"""REST API for bulk ingestion: batch upserts (with Idempotency-Key) and the signed order webhook."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from patron.api.deps import Idempotent, Importer, SessionDep
from patron.api.schemas import ErrorBody
from patron.idempotency import REPLAYED_RESPONSE_HEADERS
from patron.ingest import service
from patron.ingest.schemas import MAX_RECORDS, BatchResult, CustomerBatch, OrderBatch, RecordResult

router = APIRouter()

# Bodies of up to 10,000 records: these paths get PATRON_MAX_BATCH_BODY_BYTES instead of
# PATRON_MAX_BODY_BYTES (create_app hands them to the body-limit middleware).
BATCH_PATHS = ("/customers/batch", "/orders/batch")

_BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": REPLAYED_RESPONSE_HEADERS, "description": "One result per record, in order, and counts"},
    409: {"model": ErrorBody, "description": "A request with this Idempotency-Key is in progress or done: retry"},
    413: {"model": ErrorBody, "description": "Body over PATRON_MAX_BATCH_BODY_BYTES (32 MB by default)"},
    422: {
        "model": ErrorBody,
        "description": f"Not an object with 1 to {MAX_RECORDS:,} records, or an Idempotency-Key already used "
        "with a different body. Bad records do not fail the request: they are reported in their results.",
    },
}
_BATCH_NOTES = f"""
Up to {MAX_RECORDS:,} records. Each record is validated and written on its own (in a
savepoint): a bad record is `rejected` with its field errors and never spoils the others;
the request is one transaction. Results come in the order of `records`.
"""


@router.post(
    "/customers/batch",
    tags=["customers"],
    response_model=BatchResult,
    summary="Create or update many customers",
    description=_BATCH_NOTES
    + """
Each record is a customer like `POST /customers` and needs an email or an external id.
It is matched by any of its external ids (a merged customer leads to the customer it was
merged into), else by email. A matched customer gets only the fields sent (like `PATCH`):
`updated`, or `unchanged` when nothing differed. External ids are added, never replaced;
consents are appended only when they differ from the current state. No match: `created`.
""",
    responses=_BATCH_RESPONSES,
)
def customers_batch(batch: CustomerBatch, session: SessionDep, principal: Importer, idempotent: Idempotent):
    return idempotent.run(
        session,
        lambda: (
            200,
            service.upsert_customers(session, records=batch.records, user_id=principal.user_id).model_dump(mode="json"),
        ),
    )


@router.post(
    "/orders/batch",
    tags=["orders"],
    response_model=BatchResult,
    summary="Record many orders",
    description=_BATCH_NOTES
    + """
Each record is an order like `POST /orders` with a required `external_id` (the upsert key);
the customer is `customer_id` or `customer: {source, external_id}` (an unknown one may match
by `email`, which then gets the external id), lines by `sku` or `product_id`.
`unknown_customers` and `unknown_products` say whether references Patron does not know are
`reject`ed (default) or created as stubs (reported in the record's `stubs`).

An order already recorded with that `external_id`: identical -> `unchanged`; a different
status, channel, placed_at or store -> `updated`; different amounts, lines or customer ->
`rejected` (orders are not edited after the fact: record a return or refund instead).
""",
    responses=_BATCH_RESPONSES,
)
def orders_batch(batch: OrderBatch, session: SessionDep, _: Importer, idempotent: Idempotent):
    return idempotent.run(
        session,
        lambda: (
            200,
            service.upsert_orders(
                session,
                records=batch.records,
                unknown_customers=batch.unknown_customers,
                unknown_products=batch.unknown_products,
            ).model_dump(mode="json"),
        ),
    )


async def signed_body(
    request: Request,
    signature: Annotated[
        str | None,
        Header(
            alias=service.SIGNATURE_HEADER,
            description="`t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' keyed with PATRON_WEBHOOK_SECRET>`",
        ),
    ] = None,
) -> bytes:
    """The raw body, once its signature checks out: webhooks authenticate by signature, not token."""
    body = await request.body()
    service.verify_signature(secret=request.app.state.settings.webhook_secret, header=signature, body=body)
    return body


signed_body.authenticates_by = "signature"  # read by the deny-by-default test in place of a permission
SignedBody = Annotated[bytes, Depends(signed_body)]


@router.post(
    "/webhooks/orders",
    tags=["webhooks"],
    response_model=RecordResult,
    status_code=201,
    summary="Receive an order pushed by a shop (signed)",
    description="""
The body is one order record, exactly as in `POST /orders/batch`, upserted by `external_id`
the same way, so a retried delivery changes nothing. Customers Patron does not know are
created as stubs (from `customer`: source, external_id, email, name) because shops push
orders of new customers; unknown SKUs are rejected.

Authenticated by signature instead of a bearer token: send `X-Patron-Signature:
t=<unix seconds>,v1=<hex>` where the hex is HMAC-SHA256 of `<t>.<raw body>` keyed with
`PATRON_WEBHOOK_SECRET`. Timestamps more than 5 minutes from the server's clock are refused
(replay protection). Disabled (503) while the secret is unset.
""",
    responses={
        200: {"model": RecordResult, "description": "The order was updated, or was already recorded as sent"},
        401: {"model": ErrorBody, "description": "Missing, malformed, wrong or stale signature"},
        409: {"model": ErrorBody, "description": "Collided with a concurrent delivery of the same order: retry"},
        422: {"model": ErrorBody, "description": "The record was rejected: detail lists each reason"},
        503: {"model": ErrorBody, "description": "Webhooks are disabled (PATRON_WEBHOOK_SECRET unset)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderRecord"}}},
        }
    },
)
def order_webhook(body: SignedBody, session: SessionDep):
    status, result = service.receive_order(session, body=body)
    return JSONResponse(result.model_dump(mode="json"), status_code=status)
