"""Pareto/NBD: the likelihood against numerical integration and the note's 2F1 form, gradient, scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln, hyp2f1

from patron.analytics.models import ConvergenceError, ParetoNBD
from tests.analytics.models.helpers import numeric_gradient

CDNOW_PARAMS = (0.553, 10.578, 0.606, 11.669)  # alpha < beta
SWAPPED = (0.553, 11.669, 0.606, 10.578)  # alpha > beta
PARAMS = [CDNOW_PARAMS, SWAPPED, (0.8, 5.0, 1.3, 5.0), (2.0, 100.0, 0.3, 1.0), (0.3, 1.0, 3.0, 80.0)]
CUSTOMERS = [(0, 0.0, 38.86), (1, 1.71, 38.86), (2, 30.43, 38.86), (7, 12.0, 30.0), (40, 29.0, 30.0), (3, 5.0, 5.0)]


def fitted(params) -> ParetoNBD:
    model = ParetoNBD()
    model.params_ = dict(zip(("r", "alpha", "s", "beta"), params, strict=True))
    return model


def log_likelihood_by_quadrature(params, x, t_x, T):
    """log L from the model's definition: alive at T, or dead at some u in (t_x, T], integrated over u."""
    r, alpha, s, beta = params
    # Relative to (alpha+T)^-(r+x) (beta+T)^-s, so quad sees numbers near 1.
    alive = 1.0

    def dead_at(u):
        return ((alpha + u) / (alpha + T)) ** -(r + x) * ((beta + u) / (beta + T)) ** -(s + 1) / (beta + T)

    died, _ = quad(dead_at, t_x, T, epsabs=0, epsrel=1e-13, limit=200)
    log_scale = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    front = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return front + log_scale + np.log(alive + s * died)


def a0_from_the_note(params, x, t_x, T):
    """A_0 exactly as Fader & Hardie (2005 note, section 3) write it, with scipy's 2F1."""
    r, alpha, s, beta = params
    m = r + s + x
    if alpha >= beta:
        top, b_param = alpha, s + 1
    else:
        top, b_param = beta, r + x
    diff = abs(alpha - beta)
    return (
        hyp2f1(m, b_param, m + 1, diff / (top + t_x)) / (top + t_x) ** m
        - hyp2f1(m, b_param, m + 1, diff / (top + T)) / (top + T) ** m
    )


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize(("x", "t_x", "T"), CUSTOMERS)
def test_likelihood_equals_numerical_integration(params, x, t_x, T):
    nll, _ = ParetoNBD()._negative_log_likelihood(np.array(params), [x], [t_x], [T])
    assert -nll == pytest.approx(log_likelihood_by_quadrature(params, x, t_x, T), rel=1e-11, abs=1e-11)


@pytest.mark.parametrize("params", [CDNOW_PARAMS, SWAPPED])
@pytest.mark.parametrize(("x", "t_x", "T"), CUSTOMERS[:4])
def test_probability_alive_equals_the_notes_formula(params, x, t_x, T):
    r, alpha, s, beta = params
    odds = s / (r + s + x) * (alpha + T) ** (r + x) * (beta + T) ** s * a0_from_the_note(params, x, t_x, T)
    assert fitted(params).probability_alive(x, t_x, T) == pytest.approx(1 / (1 + odds), rel=1e-10)


@pytest.mark.parametrize("params", PARAMS)
def test_conditional_expectation_equals_its_posterior_integral(params):
    """Given alive at T, lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T) independently, and
    the expected purchases in (T, T+t] are E[lambda] E[(1 - exp(-mu t)) / mu]."""
    r, alpha, s, beta = params
    model = fitted(params)
    for x, t_x, T in CUSTOMERS:
        rate = beta + T
        for t in (1.0, 39.0, 500.0):

            def f(mu, t=t, rate=rate):
                # (1 - exp(-mu t)) / mu times the gamma density without its mu^(s-1) factor.
                lost = t if mu == 0 else -np.expm1(-mu * t) / mu
                return lost * np.exp(s * np.log(rate) - rate * mu - gammaln(s))

            # The density's mu^(s-1) singularity at 0 goes to quad's algebraic weight.
            head, _ = quad(f, 0, 1 / rate, weight="alg", wvar=(s - 1, 0), epsabs=0, epsrel=1e-12)
            tail, _ = quad(lambda mu, f=f: f(mu) * mu ** (s - 1), 1 / rate, np.inf, epsabs=0, epsrel=1e-12)
            expected = model.probability_alive(x, t_x, T) * (r + x) / (alpha + T) * (head + tail)
            assert model.expected_purchases(t, x, t_x, T) == pytest.approx(expected, rel=1e-9)


def test_expected_purchases_new_equal_the_mean_of_x_t():
    r, alpha, s, beta = CDNOW_PARAMS
    t = np.array([1.0, 39.0, 78.0])
    expected = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    np.testing.assert_allclose(fitted(CDNOW_PARAMS).expected_purchases_new(t), expected, rtol=1e-12)


def test_expected_purchases_have_no_gap_at_s_equal_one():
    at_one = fitted((0.5, 10.0, 1.0, 12.0)).expected_purchases(39.0, 3, 20.0, 38.0)
    near = fitted((0.5, 10.0, 1.0 + 1e-9, 12.0)).expected_purchases(39.0, 3, 20.0, 38.0)
    assert np.isfinite(at_one) and at_one == pytest.approx(near, rel=1e-8)


def test_probability_alive_is_one_right_after_a_purchase_and_falls_with_silence(pareto):
    assert pareto.probability_alive(4, 20.0, 20.0) == pytest.approx(1.0, rel=1e-14)
    T = np.linspace(20, 100, 40)
    alive = pareto.probability_alive(np.full(40, 4.0), np.full(40, 20.0), T)
    assert np.all(np.diff(alive) < 0) and np.all(alive > 0)


def test_expected_purchases_grow_with_the_horizon(pareto, cdnow):
    x, t_x, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    previous = pareto.expected_purchases(0.0, x, t_x, T)
    assert np.all(previous == 0)
    for t in [1.0, 10.0, 52.0, 300.0]:
        current = pareto.expected_purchases(t, x, t_x, T)
        assert np.all(current > previous)
        previous = current


@pytest.mark.parametrize(
    "theta", [[0.5, 10.0, 0.6, 12.0], [0.5, 14.0, 0.6, 3.0], [0.9, 7.0, 1.4, 7.0], [0.2, 0.5, 2.0, 60.0]]
)
def test_analytic_gradient_equals_finite_differences(cdnow, theta):
    # alpha < beta, alpha > beta, alpha == beta (where the two forms meet) and a far-apart pair.
    model = ParetoNBD()
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    theta = np.array(theta)
    _, gradient = model._negative_log_likelihood(theta, *args)
    numeric = numeric_gradient(lambda th: model._negative_log_likelihood(th, *args)[0], theta)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)


def test_weighted_fit_equals_fit_on_repeated_rows(cdnow):
    rng = np.random.default_rng(8)
    n = 600
    x, t_x, T = cdnow["frequency"][:n], cdnow["recency"][:n], cdnow["T"][:n]
    counts = rng.integers(1, 4, size=n)
    weighted = ParetoNBD().fit(x, t_x, T, weights=counts)
    repeated = ParetoNBD().fit(np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(T, counts))
    for name in weighted.params_:
        assert weighted.params_[name] == pytest.approx(repeated.params_[name], rel=1e-7)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-12)


def test_changing_the_time_unit_rescales_alpha_and_beta(pareto, cdnow):
    days = ParetoNBD().fit(cdnow["frequency"], 7 * cdnow["recency"], 7 * cdnow["T"])
    for name, factor in (("r", 1), ("alpha", 7), ("s", 1), ("beta", 7)):
        assert days.params_[name] == pytest.approx(factor * pareto.params_[name], rel=1e-5)


def test_absurd_parameters_raise_instead_of_returning_garbage():
    model = fitted((0.5, 1e8, 0.5, 1e-3))
    with pytest.raises(ConvergenceError, match="alpha and beta differ"):
        model.probability_alive(0, 0.0, 1.0)
