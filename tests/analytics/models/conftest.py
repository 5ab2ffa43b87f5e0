"""Fitted models on the CDNOW calibration summary, shared by the tests of this package."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import BGNBD, GammaGamma, ParetoNBD
from tests.analytics.models.helpers import cdnow_summary


@pytest.fixture(scope="session")
def cdnow() -> dict[str, np.ndarray]:
    return cdnow_summary()


@pytest.fixture(scope="session")
def bgnbd(cdnow) -> BGNBD:
    return BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="session")
def pareto(cdnow) -> ParetoNBD:
    return ParetoNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="session")
def gamma_gamma(cdnow) -> GammaGamma:
    return GammaGamma().fit(cdnow["frequency"], cdnow["monetary_value"])
