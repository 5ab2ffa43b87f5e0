"""Customer pages: the searchable list and the create/edit forms (the 360 page: patron.customer360)."""

from __future__ import annotations

import zoneinfo
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from patron.api.deps import PathId, SessionDep
from patron.customers import service
from patron.customers.schemas import CustomerCreate, CustomerUpdate
from patron.errors import Conflict, ValidationFailed
from patron.models.enums import AgeBand, ContactChannel, Gender, IncomeBand, MaritalStatus
from patron.web.auth import PageCustomerWriter, PageReader
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import render

router = APIRouter(prefix="/customers", include_in_schema=False)

CustomerId = PathId
PAGE_SIZE = 25

SORT_OPTIONS = [
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("last_name", "Last name A–Z"),
    ("-last_name", "Last name Z–A"),
    ("email", "Email A–Z"),
]


def _options(enum_cls) -> list[tuple[str, str]]:
    return [(m.value, m.value.replace("_", " ").replace("-", " ").capitalize()) for m in enum_cls]


CHOICES: dict[str, Any] = {
    "gender": _options(Gender),
    "age_band": [(m.value, m.value) for m in AgeBand],
    "income_band": _options(IncomeBand),
    "marital_status": _options(MaritalStatus),
    "preferred_channel": _options(ContactChannel),
    "countries": sorted(phonenumbers.SUPPORTED_REGIONS),
    "time_zones": sorted(zoneinfo.available_timezones()),
    "sorts": SORT_OPTIONS,
}

# The fields the create and edit forms carry, in form order.
FORM_FIELDS = (
    "first_name", "last_name", "email", "phone", "birthday", "gender",
    "address_line", "city", "region", "postal_code", "country",
    "age_band", "income_band", "marital_status", "household_size", "children",
    "interests", "preferred_channel", "language", "time_zone",
)  # fmt: skip


# --- list ---------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def customer_list(
    request: Request,
    session: SessionDep,
    _: PageReader,
    q: str = "",
    country: str = "",
    city: str = "",
    gender: str = "",
    sort: str = "-created_at",
    cursor: str = "",
) -> HTMLResponse:
    """Search by name, email or phone; filter by country, city and gender; page with a cursor."""
    filters = {"q": q.strip()[:200], "country": country.strip().upper(), "city": city.strip(), "gender": gender}
    if gender and gender not in set(Gender):
        raise ValidationFailed([{"field": "gender", "message": f"choose one of {', '.join(Gender)}"}])
    page = service.list_customers(
        session, sort=sort, limit=PAGE_SIZE, cursor=cursor or None, **{k: v or None for k, v in filters.items()}
    )
    kept = {k: v for k, v in {**filters, "sort": sort}.items() if v and not (k == "sort" and v == "-created_at")}
    return render(
        request,
        "customers/list.html",
        {
            "title": "Customers",
            "active": "customers",
            "customers": page.items,
            "filters": {**filters, "sort": sort},
            "filtered": any(filters.values()),
            "choices": CHOICES,
            "next_url": f"/customers?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None,
            "first_url": f"/customers?{urlencode(kept)}" if cursor else None,
        },
    )


# --- create and edit ----------------------------------------------------------------------


@router.get("/new", response_class=HTMLResponse)
def new_customer_form(request: Request, _: PageCustomerWriter) -> HTMLResponse:
    """An empty customer form."""
    return _form_page(request, customer=None, values={}, errors={})


@router.post("/new", response_class=HTMLResponse)
def create_customer(request: Request, session: SessionDep, principal: PageCustomerWriter, form: FormDep) -> Response:
    """Create from the form; empty inputs are left out so defaults apply."""
    data = _form_payload(form, partial=False)
    try:
        customer = service.create_customer(session, data=CustomerCreate(**data), user_id=principal.user_id)
    except (ValidationError, ValidationFailed, Conflict) as exc:
        raise _form_error(request, exc, customer=None, form=form) from None
    return RedirectResponse(f"/customers/{customer.id}", status_code=303)


@router.get("/{customer_id}/edit", response_class=HTMLResponse)
def edit_customer_form(request: Request, session: SessionDep, _: PageCustomerWriter, customer_id: CustomerId):
    """The customer form filled with the stored values (the survivor's, for a merged customer)."""
    customer = service.get_customer(session, customer_id)
    if customer.merged_into_id is not None:
        return RedirectResponse(f"/customers/{customer.merged_into_id}/edit", status_code=303)
    return _form_page(request, customer=customer, values=_stored_values(customer), errors={})


@router.post("/{customer_id}/edit", response_class=HTMLResponse)
def update_customer(
    request: Request, session: SessionDep, _: PageCustomerWriter, form: FormDep, customer_id: CustomerId
) -> Response:
    """Update only the fields present in the submitted form; a blank input clears its field."""
    customer = service.get_customer(session, customer_id)
    data = _form_payload(form, partial=True)
    try:
        service.update_customer(session, customer_id, data=CustomerUpdate(**data))
    except (ValidationError, ValidationFailed, Conflict) as exc:
        raise _form_error(request, exc, customer=customer, form=form) from None
    return RedirectResponse(f"/customers/{customer_id}", status_code=303)


def _form_payload(form: FormData, *, partial: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in FORM_FIELDS:
        if name not in form:
            continue
        value = text(form, name)
        if not value and not partial:
            continue
        data[name] = [t for t in (s.strip() for s in value.split(",")) if t] if name == "interests" else value
    return data


def _stored_values(customer) -> dict[str, str]:
    values = {}
    for name in FORM_FIELDS:
        value = getattr(customer, name)
        if value is None:
            values[name] = ""
        elif name == "interests":
            values[name] = ", ".join(value)
        elif hasattr(value, "isoformat"):
            values[name] = value.isoformat()
        else:
            values[name] = str(getattr(value, "value", value))
    return values


def _form_page(request: Request, *, customer, values: dict[str, str], errors: dict[str, str], status: int = 200):
    title = f"Edit {customer.full_name or customer.email or f'customer {customer.id}'}" if customer else "New customer"
    return render(
        request,
        "customers/form.html",
        {
            "title": title,
            "active": "customers",
            "customer": customer,
            "values": values,
            "errors": errors,
            "choices": CHOICES,
            "action": f"/customers/{customer.id}/edit" if customer else "/customers/new",
        },
        status_code=status,
    )


def _form_error(request: Request, exc: Exception, *, customer, form: FormData) -> PageResponse:
    """The form again with what was typed and each message beside its field (409 for duplicates)."""
    values = {name: text(form, name) for name in FORM_FIELDS}
    status = 409 if isinstance(exc, Conflict) else 422
    errors: dict[str, str] = {}
    for field, message in field_errors(exc).items():
        # A message about a field the form does not show goes above the form, not nowhere.
        key = field if field in FORM_FIELDS else ""
        errors[key] = f"{errors[key]}; {message}" if key in errors else message
    return PageResponse(_form_page(request, customer=customer, values=values, errors=errors, status=status))
