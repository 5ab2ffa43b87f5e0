"""The dashboard page: KPI tiles and three Plotly charts drawn from JSON in the page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from patron.api.deps import SessionDep
from patron.dashboard import service
from patron.web.auth import PageReader
from patron.web.templating import label, render

router = APIRouter(include_in_schema=False)


def chart_data(board: service.Dashboard) -> dict[str, dict]:
    """The three charts as plain JSON-able series (money as numbers: display only)."""
    return {
        "revenue": {
            "type": "bar",
            "months": [p.month for p in board.revenue_by_month],
            "x": [p.label for p in board.revenue_by_month],
            "y": [float(p.value) for p in board.revenue_by_month],
            "y_title": "Revenue",
        },
        "customers": {
            "type": "line",
            "months": [p.month for p in board.new_customers_by_month],
            "x": [p.label for p in board.new_customers_by_month],
            "y": [int(p.value) for p in board.new_customers_by_month],
            "y_title": "New customers",
        },
        "channels": {
            "type": "pie",
            "labels": [label(p.channel) for p in board.orders_by_channel],
            "values": [p.orders for p in board.orders_by_channel],
            "revenue": [float(p.revenue) for p in board.orders_by_channel],
        },
    }


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, _: PageReader) -> HTMLResponse:
    """KPI tiles and charts for the last 12 months."""
    board = service.overview(session)
    return render(
        request,
        "dashboard/index.html",
        {"title": "Dashboard", "active": "dashboard", "board": board, "charts": chart_data(board)},
    )
