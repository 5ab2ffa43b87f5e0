"""The signed-in web clients of tests/web, for the duplicates pages."""

from tests.web.conftest import admin_web, anonymous, web  # noqa: F401
