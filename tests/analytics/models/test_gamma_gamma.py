"""Gamma-Gamma: the likelihood against its mixture integral, the conditional expectation, fitting rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import gamma as gamma_dist

from patron.analytics.models import GammaGamma
from tests.analytics.models.helpers import numeric_gradient


def fitted(p=6.25, q=3.74, gamma=15.44) -> GammaGamma:
    model = GammaGamma()
    model.params_ = {"p": p, "q": q, "gamma": gamma}
    return model


@pytest.mark.parametrize(("x", "m"), [(1, 20.0), (3, 35.5), (12, 7.25)])
def test_likelihood_equals_the_mixture_integral(x, m):
    """The average of x Gamma(p, nu) spends is Gamma(p x, nu x); nu ~ Gamma(q, gamma) across customers."""
    p, q, g = 6.25, 3.74, 15.44

    def density(nu):
        return gamma_dist.pdf(m, p * x, scale=1 / (nu * x)) * gamma_dist.pdf(nu, q, scale=1 / g)

    reference, _ = quad(density, 0, np.inf, epsabs=0, epsrel=1e-12, limit=200)
    nll, _ = GammaGamma()._negative_log_likelihood(np.array([p, q, g]), [x], [m])
    assert -nll == pytest.approx(np.log(reference), rel=1e-10)


def test_expected_spend_is_the_posterior_mean():
    model = fitted()
    p, q, g = 6.25, 3.74, 15.44
    x, m = 4, 22.0
    # Posterior of nu given (x, m) is Gamma(q + p x, gamma + x m); the mean spend is p / nu.
    posterior = gamma_dist(q + p * x, scale=1 / (g + x * m))
    expected, _ = quad(lambda nu: p / nu * posterior.pdf(nu), 0, np.inf, epsabs=0, epsrel=1e-12)
    assert model.expected_average_spend(x, m) == pytest.approx(expected, rel=1e-9)


def test_expected_spend_without_repeat_purchases_is_the_population_mean():
    model = fitted()
    population = 6.25 * 15.44 / (3.74 - 1)
    np.testing.assert_allclose(model.expected_average_spend([0, 0], [0.0, 123.0]), population, rtol=1e-14)


def test_expected_spend_lies_between_own_average_and_population_mean_and_moves_towards_own():
    model = fitted()
    population = 6.25 * 15.44 / (3.74 - 1)
    x = np.arange(1, 30)
    spend = model.expected_average_spend(x, np.full(x.size, 80.0))
    assert np.all((spend > population) & (spend < 80.0))
    assert np.all(np.diff(spend) > 0)


def test_expected_spend_needs_q_above_one():
    with pytest.raises(ValueError, match="q <= 1"):
        fitted(q=0.9).expected_average_spend(2, 10.0)


def test_customers_without_repeat_purchases_are_left_out_of_the_fit(gamma_gamma, cdnow):
    x, m = cdnow["frequency"], cdnow["monetary_value"]
    repeat = GammaGamma().fit(x[x > 0], m[x > 0])
    for name in repeat.params_:
        assert gamma_gamma.params_[name] == pytest.approx(repeat.params_[name], rel=1e-10)
    assert gamma_gamma.n_customers_ == repeat.n_customers_ == (x > 0).sum()


@pytest.mark.parametrize("theta", [[6.0, 3.5, 15.0], [1.2, 9.0, 200.0], [20.0, 1.5, 2.0]])
def test_analytic_gradient_equals_finite_differences(cdnow, theta):
    x, m = cdnow["frequency"], cdnow["monetary_value"]
    args = (x[x > 0], m[x > 0])
    model = GammaGamma()
    theta = np.array(theta)
    _, gradient = model._negative_log_likelihood(theta, *args)
    numeric = numeric_gradient(lambda th: model._negative_log_likelihood(th, *args)[0], theta)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)


def test_weighted_fit_equals_fit_on_repeated_rows(cdnow):
    x, m = cdnow["frequency"], cdnow["monetary_value"]
    x, m = x[x > 0][:400], m[x > 0][:400]
    counts = np.random.default_rng(3).integers(1, 5, size=x.size)
    weighted = GammaGamma().fit(x, m, weights=counts)
    repeated = GammaGamma().fit(np.repeat(x, counts), np.repeat(m, counts))
    for name in weighted.params_:
        assert weighted.params_[name] == pytest.approx(repeated.params_[name], rel=1e-7)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-12)


def test_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(21)
    p, q, g = 4.0, 5.0, 30.0
    x = rng.integers(1, 10, size=50_000).astype(float)
    nu = rng.gamma(q, 1 / g, size=x.size)
    m = rng.gamma(p * x, 1 / (nu * x))
    model = GammaGamma().fit(x, m)
    for name, value in {"p": p, "q": q, "gamma": g}.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name], name
