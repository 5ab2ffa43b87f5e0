"""Analytics fixtures: a local Spark session for the parity tests.

Spark needs pyspark and a Java runtime. Without them the Spark tests are skipped
locally and fail under CI=true, like a missing PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import _unavailable


def _java_missing() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return None
    if shutil.which("java"):
        return None
    return "no Java runtime (java on PATH or JAVA_HOME) for Spark"


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One local Spark session per test module: its ~8 s start-up is paid once."""
    if importlib.util.find_spec("pyspark") is None:
        _unavailable("pyspark is not installed (uv sync --group dev, or the patron[spark] extra)")
    if reason := _java_missing():
        _unavailable(reason)
    from patron.analytics.engine import spark_session

    session = spark_session("patron-tests")
    try:
        yield session
    finally:
        session.stop()
