"""REST API for customers: CRUD, search and consent (the 360 view: patron.customer360)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from patron.api.deps import CustomerDeleter, CustomerWriter, PathId, Reader, SessionDep
from patron.customers import service
from patron.customers.schemas import (
    Consent,
    ConsentChange,
    Customer,
    CustomerCreate,
    CustomerPage,
    CustomerUpdate,
)
from patron.models.enums import Gender

router = APIRouter(prefix="/customers", tags=["customers"])
Limit = Annotated[int, Query(ge=1, le=500)]
MOVED: dict[int | str, dict] = {
    307: {
        "description": "The customer was merged into another: the same request on the survivor",
        "headers": {"Location": {"description": "The survivor's URL", "schema": {"type": "string"}}},
    }
}


def to_survivor(request: Request, session, customer_id: int) -> RedirectResponse | None:
    """A 307 to the same read on the survivor when `customer_id` was merged into another customer."""
    survivor = service.resolve_customer_id(session, customer_id)
    if survivor == customer_id:
        return None
    # /api/v1/customers/{id}/rest -> the same with the survivor's id (as typed, "007" is id 7 too).
    prefix, _, rest = request.url.path.partition("/customers/")
    _, slash, tail = rest.partition("/")
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{prefix}/customers/{survivor}{slash}{tail}{query}", status_code=307)


@router.get("", response_model=CustomerPage, summary="List and search customers")
def list_customers(
    session: SessionDep,
    _: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Name, email or phone (prefix).")] = None,
    email: str | None = None,
    phone: str | None = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    city: str | None = None,
    gender: Gender | None = None,
    acquisition_channel: str | None = None,
    external_source: str | None = None,
    external_id: str | None = None,
    sort: Annotated[
        str, Query(description="created_at, updated_at, last_name, email or id; '-' for descending.")
    ] = "-created_at",
    limit: Limit = 50,
    cursor: str | None = None,
):
    page = service.list_customers(
        session,
        sort=sort,
        limit=limit,
        cursor=cursor,
        q=q,
        email=email,
        phone=phone,
        country=country,
        city=city,
        gender=gender,
        acquisition_channel=acquisition_channel,
        external_source=external_source,
        external_id=external_id,
    )
    return CustomerPage(items=page.items, next_cursor=page.next_cursor)


@router.post("", response_model=Customer, status_code=201, summary="Create a customer")
def create_customer(data: CustomerCreate, session: SessionDep, principal: CustomerWriter):
    return service.create_customer(session, data=data, user_id=principal.user_id)


@router.get("/{customer_id}", response_model=Customer, summary="Read a customer", responses=MOVED)
def get_customer(customer_id: PathId, session: SessionDep, _: Reader, request: Request):
    if moved := to_survivor(request, session, customer_id):
        return moved
    return service.get_customer(session, customer_id)


@router.patch("/{customer_id}", response_model=Customer, summary="Update the fields sent")
def update_customer(customer_id: PathId, data: CustomerUpdate, session: SessionDep, _: CustomerWriter):
    return service.update_customer(session, customer_id, data=data)


@router.delete("/{customer_id}", status_code=204, summary="Delete a customer and their history")
def delete_customer(customer_id: PathId, session: SessionDep, _: CustomerDeleter):
    service.delete_customer(session, customer_id)
    return Response(status_code=204)


@router.get(
    "/{customer_id}/consents", response_model=list[Consent], summary="Current consent, or its history", responses=MOVED
)
def list_consents(customer_id: PathId, session: SessionDep, _: Reader, request: Request, history: bool = False):
    if moved := to_survivor(request, session, customer_id):
        return moved
    if history:
        return service.consent_history(session, customer_id)
    return service.current_consents(session, customer_id)


@router.post("/{customer_id}/consents", response_model=Consent, status_code=201, summary="Record a consent decision")
def record_consent(customer_id: PathId, change: ConsentChange, session: SessionDep, principal: CustomerWriter):
    return service.record_consent(session, customer_id, change=change, user_id=principal.user_id)
