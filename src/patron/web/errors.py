from fastapi.responses import HTMLResponse


def render_error_page(request, status: int, message: str) -> HTMLResponse:
    from html import escape

    return HTMLResponse(f"<h1>{status}</h1><p>{escape(message)}</p>", status_code=status)
