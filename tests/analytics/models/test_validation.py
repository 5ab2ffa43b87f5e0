"""Bad input is refused with a clear ValueError; fits that do not converge raise ConvergenceError."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import BGNBD, ConvergenceError, GammaGamma, ParetoNBD
from patron.errors import PatronError

RFM_MODELS = [BGNBD, ParetoNBD]


@pytest.mark.parametrize("model", RFM_MODELS)
@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, -1], [1.0, 0.0], [2.0, 2.0], "frequency must be >= 0"),
        ([1, 2], [-1.0, 1.0], [2.0, 2.0], "recency must be >= 0"),
        ([1, 2], [1.0, 1.0], [2.0, -2.0], "T must be >= 0"),
        ([1, 2], [3.0, 1.0], [2.0, 2.0], "recency must not exceed T"),
        ([0, 2], [1.0, 1.0], [2.0, 2.0], "recency must be 0 when frequency is 0"),
        ([1.5, 2], [1.0, 1.0], [2.0, 2.0], "must be whole"),
        ([1, 2, 3], [1.0, 1.0], [2.0, 2.0], "same length"),
        ([], [], [], "empty"),
        ([1, np.nan], [1.0, 1.0], [2.0, 2.0], "NaN"),
        ([[1, 2]], [[1.0, 1.0]], [[2.0, 2.0]], "one-dimensional"),
        (["a", "b"], [1.0, 1.0], [2.0, 2.0], "numeric"),
    ],
)
def test_fit_refuses_bad_summaries(model, frequency, recency, T, message):
    with pytest.raises(ValueError, match=message):
        model().fit(frequency, recency, T)


@pytest.mark.parametrize("model", RFM_MODELS)
def test_fit_refuses_bad_weights(model):
    x, t_x, T = [1, 2], [1.0, 1.0], [2.0, 2.0]
    with pytest.raises(ValueError, match="weights must be >= 0"):
        model().fit(x, t_x, T, weights=[1, -1])
    with pytest.raises(ValueError, match="one value per customer"):
        model().fit(x, t_x, T, weights=[1, 1, 1])
    with pytest.raises(ValueError, match="all zero"):
        model().fit(x, t_x, T, weights=[0, 0])


@pytest.mark.parametrize("model", RFM_MODELS)
def test_scoring_refuses_bad_input(model, bgnbd, pareto):
    fitted = bgnbd if model is BGNBD else pareto
    with pytest.raises(ValueError, match="recency must not exceed T"):
        fitted.probability_alive([1], [5.0], [2.0])
    with pytest.raises(ValueError, match="t \\(the prediction horizon\\) must be >= 0"):
        fitted.expected_purchases(-1, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="same length"):
        fitted.expected_purchases(1, [1, 2], [1.0, 1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="not fitted"):
        model().expected_purchases_new(10)


@pytest.mark.parametrize("model", [BGNBD, ParetoNBD, GammaGamma])
def test_bad_hyperparameters_are_refused_at_fit(model, cdnow):
    args = (
        (cdnow["frequency"], cdnow["monetary_value"])
        if model is GammaGamma
        else (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    )
    with pytest.raises(ValueError, match="penalizer"):
        model(penalizer=-1).fit(*args)
    with pytest.raises(ValueError, match="max_iter"):
        model(max_iter=0).fit(*args)


def test_gamma_gamma_refuses_bad_spend():
    with pytest.raises(ValueError, match="monetary_value must be > 0 for customers with frequency > 0"):
        GammaGamma().fit([1, 2], [10.0, 0.0])
    with pytest.raises(ValueError, match="same length"):
        GammaGamma().fit([1, 2], [10.0])
    with pytest.raises(ValueError, match="empty"):
        GammaGamma().fit([], [])
    with pytest.raises(ValueError, match="frequency must be >= 0"):
        GammaGamma().fit([-1, 2], [10.0, 3.0])
    with pytest.raises(ValueError, match=r"needs customers with frequency > 0 \(repeat buyers\); there are none"):
        GammaGamma().fit([0, 0], [0.0, 0.0])


def test_convergence_error_is_a_patron_error():
    assert issubclass(ConvergenceError, PatronError)


@pytest.mark.parametrize("model", RFM_MODELS)
def test_no_repeat_purchases_cannot_be_fitted(model):
    T = np.linspace(1.0, 40.0, 300)
    zeros = np.zeros(300)
    with pytest.raises(ConvergenceError, match="do not identify"):
        model().fit(zeros, zeros, T)


@pytest.mark.parametrize("model", RFM_MODELS)
def test_one_iteration_is_not_enough(model, cdnow):
    estimator = model(max_iter=1)
    with pytest.raises(ConvergenceError, match="max_iter=1"):
        estimator.fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert estimator.converged_ is False
    assert estimator.params_ is None


def test_gamma_gamma_one_iteration_is_not_enough(cdnow):
    with pytest.raises(ConvergenceError, match="max_iter=1"):
        GammaGamma(max_iter=1).fit(cdnow["frequency"], cdnow["monetary_value"])


def test_series_that_cannot_converge_raise(bgnbd):
    # A horizon 10^12 times the customer's age plus alpha: refused, not answered with garbage.
    with pytest.raises(ConvergenceError, match="too close to 1"):
        bgnbd.expected_purchases(1e12, 0, 0.0, 1.0)
