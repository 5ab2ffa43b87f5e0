"""BG/NBD: internal consistency, independent references for eq. 10, gradient, weights, recovery."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import betaln, hyp2f1
from scipy.stats import beta as beta_dist

from patron.analytics.models import BGNBD
from tests.analytics.models.helpers import numeric_gradient, simulate_bgnbd


def fitted(r=0.243, alpha=4.414, a=0.793, b=2.426) -> BGNBD:
    """A model with given parameters, as if fitted (to test the formulas on their own)."""
    model = BGNBD()
    model.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
    return model


def direct_eq10(params, t, x, t_x, T):
    """FHL (2005) eq. 10 written out with scipy's 2F1: fine for small x, overflows for large x."""
    r, alpha, a, b = params
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return numerator / (1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def integral_eq10(params, t, x, t_x, T):
    """Eq. 10 from its definition: P(alive) * E[(1 - e^(-lambda p t)) / p] over the posterior of
    lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x), integrated numerically over p."""
    r, alpha, a, b = params
    w = t / (alpha + T)

    def f(p):
        # (1 - (1 + p w)^-(r+x)) / p, which tends to (r+x) w as p -> 0.
        return (r + x) * w if p == 0 else -np.expm1(-(r + x) * np.log1p(p * w)) / p

    value, _ = quad(f, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-12, limit=200)
    alive = 1.0 if x == 0 else 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    return alive * value / np.exp(betaln(a, b + x))


@pytest.mark.parametrize("x", [0, 1, 2, 5, 10])
@pytest.mark.parametrize("t", [0.5, 10.0, 39.0, 104.0])
def test_expected_purchases_equal_the_published_formula_where_scipy_copes(x, t):
    model = fitted()
    t_x, T = (0.0 if x == 0 else 20.0), 38.86
    ours = model.expected_purchases(t, x, t_x, T)
    assert ours == pytest.approx(direct_eq10(tuple(model.params_.values()), t, x, t_x, T), rel=1e-9)


@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"), [(150, 37.0, 38.86, 52.0), (400, 38.0, 39.0, 39.0), (60, 2.0, 3.0, 500.0)]
)
def test_expected_purchases_stay_accurate_for_heavy_buyers(x, t_x, T, t):
    model = fitted()
    reference = integral_eq10(tuple(model.params_.values()), t, x, t_x, T)
    assert model.expected_purchases(t, x, t_x, T) == pytest.approx(reference, rel=1e-8)


@pytest.mark.parametrize(
    "params",
    [
        (0.5, 3.0, 1.0, 2.0),  # a = 1: eq. 10's 0/0
        (0.5, 3.0, 2.5, 0.7),  # a > 1
        (2.0, 1.0, 0.3, 0.4),  # a + b < 1
        (40.0, 9.0, 0.6, 1.1),  # r >> a + b: the transformed series alternates...
        (100.0, 30.0, 2.0, 1.0),  # ...and cancels completely unless summed another way
    ],
)
def test_expected_purchases_for_other_parameter_regimes(params):
    model = fitted(*params)
    for x, t_x, T, t in [(0, 0.0, 10.0, 5.0), (0, 0.0, 1.0, 5000.0), (3, 4.0, 10.0, 30.0), (12, 9.0, 10.0, 1.0)]:
        reference = integral_eq10(params, t, x, t_x, T)
        assert model.expected_purchases(t, x, t_x, T) == pytest.approx(reference, rel=1e-8), (x, t_x, T, t)


@pytest.mark.parametrize("params", [(0.5, 3.0, 50.0, 5.0), (0.5, 3.0, 200.0, 300.0)])
def test_expected_purchases_with_a_narrow_dropout_distribution(params):
    # a, b large: quad's algebraic weight loses accuracy there, so integrate the Beta density.
    r, alpha, a, b = params
    model = fitted(*params)
    for x, t_x, T, t in [(0, 0.0, 1.0, 5000.0), (5, 3.0, 4.0, 1000.0), (300, 30.0, 31.0, 200.0)]:
        w = t / (alpha + T)
        posterior = beta_dist(a, b + x)

        def f(p, posterior=posterior, w=w, x=x):
            return posterior.pdf(p) * -np.expm1(-(r + x) * np.log1p(p * w)) / p

        lo, hi = posterior.ppf(1e-15), posterior.ppf(1 - 1e-15)
        value, _ = quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=200, points=[posterior.mean()])
        alive = 1.0 if x == 0 else 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
        assert model.expected_purchases(t, x, t_x, T) == pytest.approx(alive * value, rel=1e-10)


def test_expected_purchases_new_equal_eq9():
    model = fitted()
    r, alpha, a, b = model.params_.values()
    t = np.array([1.0, 13.0, 52.0, 260.0])
    eq9 = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    np.testing.assert_allclose(model.expected_purchases_new(t), eq9, rtol=1e-10)


def test_expected_purchases_new_start_at_the_mean_purchase_rate():
    model = fitted()
    h = 1e-6
    assert model.expected_purchases_new(h) / h == pytest.approx(0.243 / 4.414, rel=1e-5)


def test_expected_purchases_grow_with_the_horizon_and_start_at_zero(bgnbd, cdnow):
    x, t_x, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    previous = bgnbd.expected_purchases(0.0, x, t_x, T)
    assert np.all(previous == 0)
    for t in [1.0, 5.0, 20.0, 52.0, 200.0]:
        current = bgnbd.expected_purchases(t, x, t_x, T)
        assert np.all(current > previous)
        previous = current


def test_expected_purchases_accept_a_horizon_per_customer(bgnbd, cdnow):
    x, t_x, T = cdnow["frequency"][:50], cdnow["recency"][:50], cdnow["T"][:50]
    t = np.linspace(1, 100, 50)
    one_by_one = [bgnbd.expected_purchases(t[i], x[i], t_x[i], T[i]) for i in range(50)]
    np.testing.assert_allclose(bgnbd.expected_purchases(t, x, t_x, T), one_by_one, rtol=1e-13)


def test_probability_alive_is_one_without_repeat_purchases(bgnbd):
    np.testing.assert_array_equal(bgnbd.probability_alive([0, 0, 0], [0, 0, 0], [0.0, 10.0, 1000.0]), 1.0)


def test_probability_alive_falls_with_silence_and_rises_with_recency(bgnbd):
    T = np.linspace(20, 200, 50)
    alive = bgnbd.probability_alive(np.full(50, 5.0), np.full(50, 20.0), T)
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(np.diff(alive) < 0)
    t_x = np.linspace(1, 50, 50)
    alive = bgnbd.probability_alive(np.full(50, 5.0), t_x, np.full(50, 50.0))
    assert np.all(np.diff(alive) > 0)


def test_probability_alive_has_the_closed_form(bgnbd):
    r, alpha, a, b = bgnbd.params_.values()
    expected = 1 / (1 + a / (b + 3 - 1) * ((alpha + 39) / (alpha + 12.5)) ** (r + 3))
    assert bgnbd.probability_alive(3, 12.5, 39) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("theta", [[0.3, 5.0, 0.8, 2.0], [1.5, 0.7, 3.0, 9.0], [0.05, 40.0, 0.2, 0.3]])
def test_analytic_gradient_equals_finite_differences(cdnow, theta):
    model = BGNBD()
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    theta = np.array(theta)
    _, gradient = model._negative_log_likelihood(theta, *args)
    numeric = numeric_gradient(lambda th: model._negative_log_likelihood(th, *args)[0], theta)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)


def test_weighted_fit_equals_fit_on_repeated_rows(cdnow):
    rng = np.random.default_rng(5)
    n = 800
    x, t_x, T = cdnow["frequency"][:n], cdnow["recency"][:n], cdnow["T"][:n]
    counts = rng.integers(1, 4, size=n)
    weighted = BGNBD().fit(x, t_x, T, weights=counts)
    repeated = BGNBD().fit(np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(T, counts))
    for name in weighted.params_:
        assert weighted.params_[name] == pytest.approx(repeated.params_[name], rel=1e-8)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-12)
    # And the weighted likelihood itself, without the row merging of fit():
    theta = np.array(list(weighted.params_.values()))
    mean_weighted, _ = BGNBD()._negative_log_likelihood(theta, x, t_x, T, counts)
    mean_repeated, _ = BGNBD()._negative_log_likelihood(
        theta, np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(T, counts)
    )
    assert mean_weighted == pytest.approx(mean_repeated, rel=1e-12)


def test_zero_weights_drop_customers(cdnow):
    x, t_x, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    keep = np.arange(x.size) % 3 != 0
    dropped = BGNBD().fit(x, t_x, T, weights=keep.astype(float))
    subset = BGNBD().fit(x[keep], t_x[keep], T[keep])
    for name in subset.params_:
        assert dropped.params_[name] == pytest.approx(subset.params_[name], rel=1e-8)


def test_changing_the_time_unit_only_rescales_alpha(bgnbd, cdnow):
    days = BGNBD().fit(cdnow["frequency"], 7 * cdnow["recency"], 7 * cdnow["T"])
    assert days.params_["alpha"] == pytest.approx(7 * bgnbd.params_["alpha"], rel=1e-6)
    for name in ("r", "a", "b"):
        assert days.params_[name] == pytest.approx(bgnbd.params_[name], rel=1e-6)
    # The likelihood is a density in the x purchase times: each costs log 7 in days.
    assert days.log_likelihood_ == pytest.approx(bgnbd.log_likelihood_ - np.log(7) * cdnow["frequency"].sum(), abs=1e-6)
    assert days.probability_alive(2, 7 * 30.43, 7 * 38.86) == pytest.approx(
        bgnbd.probability_alive(2, 30.43, 38.86), rel=1e-6
    )


def test_standard_errors_match_an_independent_hessian(bgnbd, cdnow):
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    n = cdnow["frequency"].size
    theta = np.array(list(bgnbd.params_.values()))

    def nll(th):
        return n * BGNBD()._negative_log_likelihood(th, *args)[0]

    # Second differences of the likelihood values alone (no gradient code involved).
    h = 1e-3 * theta
    hessian = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * h[i], np.eye(4)[j] * h[j]
            hessian[i, j] = (
                nll(theta + ei + ej) - nll(theta + ei - ej) - nll(theta - ei + ej) + nll(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    expected = np.sqrt(np.diag(np.linalg.inv(hessian)))
    np.testing.assert_allclose(list(bgnbd.standard_errors_.values()), expected, rtol=1e-3)


def test_fit_recovers_simulated_parameters():
    truth = {"r": 0.4, "alpha": 3.0, "a": 0.7, "b": 2.0}
    data = simulate_bgnbd(100_000, *truth.values(), seed=11)
    model = BGNBD().fit(data["frequency"], data["recency"], data["T"])
    for name, value in truth.items():
        z = (model.params_[name] - value) / model.standard_errors_[name]
        assert abs(z) < 4, (name, model.params_[name], value, model.standard_errors_[name])


def test_penalizer_shrinks_the_parameters(bgnbd, cdnow):
    penalized = BGNBD(penalizer=0.1).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    plain = np.array(list(bgnbd.params_.values()))
    shrunk = np.array(list(penalized.params_.values()))
    assert (shrunk**2).sum() < (plain**2).sum()
    assert penalized.log_likelihood_ < bgnbd.log_likelihood_


def test_estimator_contract(cdnow):
    model = BGNBD(penalizer=0.01, max_iter=500)
    assert model.get_params() == {"penalizer": 0.01, "max_iter": 500, "tol": 1e-6}
    assert not hasattr(model, "params_")
    with pytest.raises(ValueError, match="not fitted"):
        model.probability_alive(1, 1, 2)
    assert model.fit(cdnow["frequency"], cdnow["recency"], cdnow["T"]) is model
    assert set(model.params_) == {"r", "alpha", "a", "b"}
    assert set(model.standard_errors_) == set(model.params_)
    assert all(v > 0 for v in model.standard_errors_.values())
    assert model.converged_ is True
    assert isinstance(model.log_likelihood_, float)
    assert model.set_params(penalizer=0.0) is model and model.penalizer == 0.0


def test_scalar_inputs_give_floats(bgnbd):
    assert isinstance(bgnbd.probability_alive(1, 2.0, 5.0), float)
    assert isinstance(bgnbd.expected_purchases(10, 1, 2.0, 5.0), float)
    assert isinstance(bgnbd.expected_purchases_new(10), float)
