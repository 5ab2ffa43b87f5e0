"""Route introspection shared by the deny-by-default tests of the API and the web UI."""

from __future__ import annotations

from fastapi.routing import APIRoute

from patron.users.permissions import Permission


def required_permission(route: APIRoute) -> Permission | None:
    """The permission a route's require(...)/require_page(...) dependency demands, if any."""
    for dep in route.dependant.dependencies:
        found = getattr(dep.call, "required_permission", None)
        if found is not None:
            return found
    return None
