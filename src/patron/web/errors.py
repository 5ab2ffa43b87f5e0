"""HTML error pages in the site layout (the API answers JSON for the same errors)."""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    500: "Something went wrong",
    503: "Busy, try again",
}

PLAIN = {
    404: "There is no page at this address. It may have moved, or the link may be mistyped.",
    405: "This address does not accept that kind of request.",
}
SERVER_ERROR = "The server could not finish this request. Try again; if it keeps happening, tell your administrator."


def render_error_page(request: Request, status: int, message: str) -> Response:
    """The error page for `status`; a 401 on a page sends the visitor to sign in instead."""
    from patron.web.auth import login_url
    from patron.web.templating import render

    if status == 401:
        return RedirectResponse(login_url(request), status_code=303)
    if status in PLAIN and message == HTTPStatus(status).phrase:
        # Starlette's bare reason phrases ("Not Found") say less than a sentence can.
        message = PLAIN.get(status, message)
    if status >= 500:
        # Internals stay in the server log, not on the page.
        message = SERVER_ERROR
    title = TITLES.get(status, "Error")
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status_code=status)
