"""Placeholder pages for the areas that are planned but not built yet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from patron.web.auth import PageReader
from patron.web.templating import render

router = APIRouter(include_in_schema=False)

# path -> (title, what the area will do); each domain replaces its entry when it lands.
COMING_SOON: dict[str, tuple[str, str]] = {
    "campaigns": ("Campaigns", "Send offers by email and SMS to a segment and measure what they changed."),
    "feedback": ("Feedback", "Surveys and NPS, with follow-up only where you want it."),
    "tickets": ("Tickets", "Complaints and service recovery, linked to the customer's timeline."),
    "settings": ("Settings", "Users, roles, API tokens and channel configuration."),
}


def _coming_soon_page(area: str):
    title, blurb = COMING_SOON[area]

    def page(request: Request, _: PageReader) -> HTMLResponse:
        return render(request, "coming_soon.html", {"title": title, "blurb": blurb, "active": area})

    page.__name__ = f"{area}_coming_soon"
    return page


for _area in COMING_SOON:
    router.add_api_route(f"/{_area}", _coming_soon_page(_area), methods=["GET"], response_class=HTMLResponse)
