"""BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284.

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each purchase he drops
out with probability p ~ Beta(a, b). A customer is summarised by x repeat purchases, the time t_x
of the last one and his age T, all measured from his first purchase.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, expit, exprel, gammaln

from patron.analytics.models.base import (
    LikelihoodModel,
    PurchaseCurve,
    check_horizon,
    check_rfm,
    check_weights,
    group_rows,
    merge_rows,
    scalar_or_array,
    wsum,
)
from patron.analytics.models.series import require_complete, sum_series


class BGNBD(LikelihoodModel):
    """The beta-geometric/NBD model of repeat purchasing (Fader, Hardie & Lee 2005)."""

    param_names = ("r", "alpha", "a", "b")

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> BGNBD:
        """Maximum-likelihood estimates of r, alpha, a, b from per-customer (x, t_x, T) summaries."""
        self.params_ = None
        self.converged_ = False
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=True)
        w = check_weights(weights, x.size)
        (x, t_x, age), w = merge_rows(w, x, t_x, age)
        data = _FitData(x, t_x, age, w)
        mean_x = wsum(w, x) / data.total
        mean_age = wsum(w, age) / data.total
        # Start where the mean purchase rate r/alpha matches the data's, for any unit of time.
        start = np.array([1.0, max(mean_age, 1e-6) / max(mean_x, 1e-2), 1.0, 1.0])
        self._maximize(data.log_likelihood, start, data.total)
        return self

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray | float:
        """P(customer still alive at T | x, t_x, T); 1 for customers without repeat purchases."""
        params = self._params()
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
        return scalar_or_array(_p_alive(params, x, t_x, age))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray | float:
        """E[purchases in (T, T + t] | x, t_x, T] for each customer (FHL 2005, eq. 10)."""
        params = self._params()
        horizon = check_horizon(t)
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
        if horizon.ndim == 0:
            return scalar_or_array(self._conditional_curve_checked(params, x, t_x, age).expected(float(horizon)))
        x, t_x, age, horizon = np.broadcast_arrays(x, t_x, age, horizon)
        (gx, gage, gt), inverse = group_rows(x, age, horizon)
        alive = _p_alive(params, x, t_x, age)
        return scalar_or_array(alive * _alive_expectation(params, gx, gage, gt)[inverse])

    def expected_purchases_new(self, t: Any) -> np.ndarray | float:
        """E[X(t)]: expected repeat purchases in (0, t] of a customer who just made a first purchase (eq. 9)."""
        params = self._params()
        horizon = check_horizon(t)
        zero = np.zeros_like(horizon)
        return scalar_or_array(_alive_expectation(params, zero, zero, horizon))

    def _conditional_curve(self, frequency: Any, recency: Any, T: Any) -> PurchaseCurve:
        params = self._params()
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
        return self._conditional_curve_checked(params, x, t_x, age)

    @staticmethod
    def _conditional_curve_checked(params: tuple[float, ...], x, t_x, age) -> PurchaseCurve:
        shape = x.shape
        x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
        (gx, gage), inverse = group_rows(x, age)

        def at(t: float) -> np.ndarray:
            return _alive_expectation(params, gx, gage, np.full(gx.shape, float(t)))

        return PurchaseCurve(_p_alive(params, x, t_x, age), inverse, at, shape)

    def _negative_log_likelihood(self, theta: np.ndarray, frequency, recency, T, weights=None):
        """Mean negative log-likelihood and its gradient at theta (for tests of the analytic gradient)."""
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=True)
        data = _FitData(x, t_x, age, check_weights(weights, x.size))
        ll, grad = data.log_likelihood(np.asarray(theta, dtype=float))
        return -ll / data.total, -grad / data.total


class _FitData:
    """Merged rows plus the per-frequency totals that the x-only terms of the likelihood need."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, w: np.ndarray):
        self.x, self.t_x, self.age, self.w = x, t_x, age, w
        self.total = float(w.sum())
        self.ux, code = np.unique(x, return_inverse=True)
        self.wx = np.bincount(code, weights=w, minlength=self.ux.size)
        repeat = x > 0
        self.repeat = repeat
        self.w_repeat = w[repeat]
        self.x_repeat = x[repeat]
        self.tx_repeat = t_x[repeat]
        self.age_repeat = age[repeat]
        # Customers without repeat purchases contribute -r*log(alpha+T) only.
        self.w_zero = w[~repeat]
        self.age_zero = age[~repeat]

    def log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood of FHL (2005) eq. 6 and its analytic gradient in (r, alpha, a, b)."""
        r, alpha, a, b = theta
        ux, wx, total = self.ux, self.wx, self.total
        # Terms that depend on x only: Gamma(r+x)/Gamma(r) alpha^r and B(a, b+x)/B(a, b).
        ll = wsum(wx, gammaln(r + ux) + gammaln(b + ux) - gammaln(a + b + ux))
        ll += total * (-gammaln(r) + r * np.log(alpha) - gammaln(b) + gammaln(a + b))
        dig_abx = digamma(a + b + ux)
        g_r = wsum(wx, digamma(r + ux)) + total * (-digamma(r) + np.log(alpha))
        g_alpha = total * r / alpha
        g_a = -wsum(wx, dig_abx) + total * digamma(a + b)
        g_b = wsum(wx, digamma(b + ux) - dig_abx) + total * (digamma(a + b) - digamma(b))

        w0, age0 = self.w_zero, self.age_zero
        log_age0 = np.log(alpha + age0)
        ll -= r * wsum(w0, log_age0)
        g_r -= wsum(w0, log_age0)
        g_alpha -= r * wsum(w0, 1.0 / (alpha + age0))

        # Repeat buyers: L = A * [(alpha+T)^-(r+x) + a/(b+x-1) (alpha+t_x)^-(r+x)] (eq. 6, the second
        # term is B(a+1, b+x-1)/B(a, b+x) = a/(b+x-1) times the first's prefactor); in logs,
        # -(r+x) log(alpha+T) + softplus(d) with d the log-ratio of the two terms.
        w, x, t_x, age = self.w_repeat, self.x_repeat, self.tx_repeat, self.age_repeat
        rx = r + x
        inv_age = 1.0 / (alpha + age)
        inv_tx = 1.0 / (alpha + t_x)
        log_age = np.log(alpha + age)
        gap = np.log1p((age - t_x) * inv_tx)  # log(alpha+T) - log(alpha+t_x), exact for t_x near T
        bx = b + x - 1.0
        d = np.log(a) - np.log(bx) + rx * gap
        dead = expit(d)  # share of the likelihood from "dropped out after the last purchase"
        ll += wsum(w, np.logaddexp(0.0, d) - rx * log_age)
        wd = w * dead
        g_r += wsum(wd, gap) - wsum(w, log_age)
        g_alpha += wsum(wd, rx * (inv_age - inv_tx)) - wsum(w, rx * inv_age)
        g_a += wd.sum() / a
        g_b -= wsum(wd, 1.0 / bx)
        return float(ll), np.array([g_r, g_alpha, g_a, g_b])


def _p_alive(params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    The reciprocal of FHL 2005 eq. 10's denominator (also Fader, Hardie & Lee, "Computing P(alive)
    using the BG/NBD model", brucehardie.com note 021).
    """
    r, alpha, a, b = params
    repeat = x > 0
    with np.errstate(divide="ignore"):
        d = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * np.log1p((age - t_x) / (alpha + t_x))
    return np.where(repeat, expit(-d), 1.0)


def _alive_expectation(params: tuple[float, ...], x: np.ndarray, age: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T, x, T]: FHL 2005 eq. 10 without its P(alive) factor.

    Eq. 10 is (a+b+x-1)/(a-1) * [1 - Q] with Q = (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z),
    z = t/(alpha+T+t). Euler's transformation turns Q into (1-z)^(a-1) 2F1(g, a-1; c; z) with
    g = a+b-1-r and c = a+b+x-1: its first two parameters no longer grow with x, its terms stay
    bounded, and since (a-1)_k = (a-1)(a)_(k-1) the 1/(a-1) cancels, so a = 1 is not special:

        result = c L exprel(-(a-1) L) - (1-z)^(a-1) sum_{k>=1} (g)_k (a)_(k-1) / ((c+1)_(k-1) k!) z^k

    with L = -log(1-z) = log1p(t/(alpha+T)).
    """
    r, alpha, a, b = params
    x, age, t = np.broadcast_arrays(np.asarray(x, float), np.asarray(age, float), np.asarray(t, float))
    shape = x.shape
    x, age, t = x.ravel(), age.ravel(), t.ravel()
    w = t / (alpha + age)
    big_l = np.log1p(w)
    z = w / (1.0 + w)
    c = a + b + x - 1.0
    g = a + b - 1.0 - r
    with np.errstate(divide="ignore"):
        log_first = np.log(abs(g)) + np.log(z) - (a - 1.0) * big_l
    sign_first = np.sign(g) * (z > 0)

    def ratio(ks: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # term_(k+1)/term_k of the sum above, with ks counting from its first term (k = 1).
        scalar = (g + ks + 1.0) * (a + ks) / (ks + 2.0)
        return scalar[None, :] * z[rows, None] / (c[rows, None] + ks[None, :] + 1.0)

    # (g+k) changes sign near k = -g; the geometric tail bound holds only past that point.
    min_steps = int(np.ceil(-g)) + 2 if g < -1 else 0
    sums = sum_series(log_first, sign_first, ratio, z, min_steps=min_steps)
    require_complete(sums.complete, "BG/NBD expected purchases", _TOO_LONG)
    result = c * big_l * exprel(-(a - 1.0) * big_l) - sums.total
    # With r far above a + b (g << 0) the terms alternate with binomial-sized magnitudes and
    # cancel; those rows are summed again from eq. 10's own series, whose terms are all positive.
    rounding = np.finfo(float).eps * sums.cancellation * np.abs(sums.total)
    lossy = rounding > _LOSS * np.abs(result)
    if lossy.any() and a != 1.0:
        result[lossy] = _eq10_positive_series(params, x[lossy], z[lossy], big_l[lossy])
    # Rounding can leave a tiny negative value for t near 0.
    return np.maximum(result, 0.0).reshape(shape)


_TOO_LONG = "a horizon t far longer than alpha + T, the customer's age"
# Accept a series whose cancellation leaves relative errors below this.
_LOSS = 1e-10


def _eq10_positive_series(params: tuple[float, ...], x: np.ndarray, z: np.ndarray, big_l: np.ndarray) -> np.ndarray:
    """FHL 2005 eq. 10 (without P(alive)) from 2F1(r+x, b+x; a+b+x-1; z) itself, summed in logs.

    Its terms are positive, so nothing cancels, but it needs about (r+x) z/(1-z) terms, which is
    why it is only the fallback; (a+b+x-1)/(a-1) (1 - Q) is then evaluated as -expm1(log Q)/(a-1).
    """
    r, _, a, b = params
    big_a = r + x
    big_b = b + x
    c = a + b + x - 1.0

    def ratio(ks: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return (big_a[rows, None] + ks) * (big_b[rows, None] + ks) / ((c[rows, None] + ks) * (ks + 1.0)) * z[rows, None]

    sums = sum_series(np.zeros(x.shape), np.ones(x.shape), ratio, z)
    require_complete(sums.complete, "BG/NBD expected purchases", _TOO_LONG)
    log_q = -big_a * big_l + sums.log_total
    # The sum is negative only when c < 0 (a + b < 1 and x = 0).
    one_minus_q = np.where(sums.total > 0, -np.expm1(log_q), 1.0 + np.exp(log_q))
    return c * one_minus_q / (a - 1.0)
