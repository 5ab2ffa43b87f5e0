"""Form plumbing shared by pages: the checked form, field errors, and error re-renders."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from patron.errors import PatronError
from patron.validation import error_list


class PageResponse(Exception):
    """Raised by a page to answer with `response` *and* roll the request's transaction back.

    Used when a form is re-rendered with errors: raising (rather than returning) lets the
    session dependency roll back anything half-done, then the handler sends the page.
    """

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


def get_form(request: Request) -> FormData:
    """The POSTed form, already CSRF-checked by the router dependency."""
    form = getattr(request.state, "form", None)
    if form is None:  # only reachable if a page router was mounted without verify_csrf
        raise RuntimeError("form read without CSRF verification")
    return form


FormDep = Annotated[FormData, Depends(get_form)]


def field_errors(exc: ValidationError | PatronError) -> dict[str, str]:
    """{field: message} for a form; nested paths ('interests.0') are shown on their top field.

    Errors that belong to no field land under "" and are shown above the form.
    """
    if isinstance(exc, ValidationError):
        items = error_list(exc)
    elif isinstance(getattr(exc, "errors", None), list):
        items = exc.errors
    else:
        detail = exc.detail if isinstance(exc.detail, dict) else {}
        items = [{"field": str(detail.get("field", "")), "message": exc.message}]
    out: dict[str, str] = {}
    for item in items:
        field = item["field"].split(".", 1)[0]
        field = "" if field == "body" else field
        out[field] = f"{out[field]}; {item['message']}" if field in out else item["message"]
    return out


def text(form: FormData, name: str) -> str:
    """A single text value from the form, stripped; missing means ''."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
