"""Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they and what
will they do next?", Management Science 33(1); expressions from Fader & Hardie (2005), "A note on
deriving the Pareto/NBD model and related expressions" (brucehardie.com note 009).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); his lifetime is exponential
with rate mu ~ Gamma(s, beta).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, exprel, gammaln

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
from patron.analytics.models.series import power_series_by_group, require_complete


class ParetoNBD(LikelihoodModel):
    """The Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987)."""

    param_names = ("r", "alpha", "s", "beta")

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> ParetoNBD:
        """Maximum-likelihood estimates of r, alpha, s, beta from per-customer (x, t_x, T) summaries."""
        self.params_ = None
        self.converged_ = False
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=True)
        w = check_weights(weights, x.size)
        (x, t_x, age), w = merge_rows(w, x, t_x, age)
        data = _FitData(x, t_x, age, w)
        mean_x = wsum(w, x) / data.total
        mean_age = wsum(w, age) / data.total
        scale = max(mean_age, 1e-6)
        start = np.array([1.0, scale / max(mean_x, 1e-2), 1.0, scale])
        self._maximize(data.log_likelihood, start, data.total)
        return self

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray | float:
        """P(customer still alive at T | x, t_x, T) (Fader & Hardie 2005 note, section 5)."""
        params = self._params()
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
        return scalar_or_array(_p_alive(params, x, t_x, age))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray | float:
        """E[purchases in (T, T + t] | x, t_x, T] for each customer (Fader & Hardie 2005 note, section 6)."""
        params = self._params()
        horizon = check_horizon(t)
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
        x, t_x, age, horizon = np.broadcast_arrays(x, t_x, age, horizon)
        return scalar_or_array(_p_alive(params, x, t_x, age) * _alive_expectation(params, x, age, horizon))

    def expected_purchases_new(self, t: Any) -> np.ndarray | float:
        """E[X(t)]: expected repeat purchases in (0, t] of a new customer (Fader & Hardie 2005 note, section 4)."""
        params = self._params()
        horizon = check_horizon(t)
        zero = np.zeros_like(horizon)
        return scalar_or_array(_alive_expectation(params, zero, zero, horizon))

    def _conditional_curve(self, frequency: Any, recency: Any, T: Any) -> PurchaseCurve:
        params = self._params()
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
        shape = x.shape
        x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
        alive = _p_alive(params, x, t_x, age)

        def at(t: float) -> np.ndarray:
            # Closed form per customer: no grouping needed.
            return _alive_expectation(params, x, age, np.full(x.shape, float(t)))

        return PurchaseCurve(alive, np.arange(x.size), at, shape)

    def _negative_log_likelihood(self, theta: np.ndarray, frequency, recency, T, weights=None):
        """Mean negative log-likelihood and its gradient at theta (for tests of the analytic gradient)."""
        x, t_x, age = check_rfm(frequency, recency, T, for_fit=True)
        data = _FitData(x, t_x, age, check_weights(weights, x.size))
        ll, grad = data.log_likelihood(np.asarray(theta, dtype=float))
        return -ll / data.total, -grad / data.total


class _Pairs:
    """The distinct (x, t) pairs at which G is needed: t = t_x and t = T of every row."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray):
        n = x.size
        (px, self.t), inverse = group_rows(np.concatenate([x, x]), np.concatenate([t_x, age]))
        self.ux, self.code = np.unique(px, return_inverse=True)
        self.at_tx = inverse[:n]
        self.at_age = inverse[n:]


def _log_g(params: tuple[float, ...], pairs: _Pairs, *, gradient: bool):
    """log G(t) at every pair and, optionally, its gradient in (r, alpha, s, beta), where

        integral_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du = G(t) / (r+s+x).

    This is the A_0 term of Fader & Hardie's likelihood (2005 note, section 3) before differencing:
    with m = r+s+x and, for alpha >= beta, z = (alpha-beta)/(alpha+t), it is
    (alpha+t)^-m 2F1(m, s+1; m+1; z). Euler's transformation gives
    (alpha+t)^-(r+x) (beta+t)^-s 2F1(1, r+x; m+1; z), a series with positive coefficients at most 1
    (no overflow, no cancellation, at least as fast as z^k); for alpha < beta the roles swap and
    2F1(m, r+x; m+1; z) becomes (alpha+t)/(beta+t) (...) 2F1(1, s+1; m+1; z). The coefficients
    depend on x only, so they are built once per distinct frequency.
    """
    r, alpha, s, beta = params
    ux, t = pairs.ux, pairs.t
    x = ux[pairs.code]
    swap = alpha < beta
    z = (beta - alpha) / (beta + t) if swap else (alpha - beta) / (alpha + t)

    def coefficients(g: np.ndarray, k: int) -> np.ndarray:
        # c_k = (b)_k / (c)_k with b the first parameter, c = m + 1, and the running sums whose
        # products with c_k are the derivatives in b and c; the last column gives d/dz.
        b = (s + 1.0) if swap else (r + ux[g[0]])
        c = r + s + ux[g[0]] + 1.0
        j = np.arange(k, dtype=float)
        coef = np.empty(k)
        coef[0] = 1.0
        coef[1:] = np.cumprod((b + j[:-1]) / (c + j[:-1]))
        if not gradient:
            return coef[:, None]
        d_b = np.concatenate([[0.0], np.cumsum(1.0 / (b + j[:-1]))])
        d_c = np.concatenate([[0.0], -np.cumsum(1.0 / (c + j[:-1]))])
        d_z = np.append(coef[1:] * j[1:], 0.0)
        return np.stack([coef, coef * d_b, coef * d_c, d_z], axis=1)

    sums, complete = power_series_by_group(coefficients, pairs.code, z)
    series = sums[:, 0]
    log_alpha_t = np.log(alpha + t)
    log_beta_t = np.log(beta + t)
    log_g = -(r + x) * log_alpha_t - s * log_beta_t + np.log(series)
    if swap:
        log_g += log_alpha_t - log_beta_t
    if not gradient:
        return log_g, None, complete
    d_param = sums[:, 1] / series
    d_m = sums[:, 2] / series
    d_z = sums[:, 3] / series
    inv_alpha_t = 1.0 / (alpha + t)
    inv_beta_t = 1.0 / (beta + t)
    if swap:
        g_r = -log_alpha_t + d_m
        g_s = -log_beta_t + d_param + d_m
        g_alpha = -(r + x) * inv_alpha_t + inv_alpha_t - d_z * inv_beta_t
        g_beta = -s * inv_beta_t - inv_beta_t + d_z * (alpha + t) * inv_beta_t**2
    else:
        g_r = -log_alpha_t + d_param + d_m
        g_s = -log_beta_t + d_m
        g_alpha = -(r + x) * inv_alpha_t + d_z * (beta + t) * inv_alpha_t**2
        g_beta = -s * inv_beta_t - d_z * inv_alpha_t
    return log_g, np.stack([g_r, g_alpha, g_s, g_beta]), complete


def _bracket(params: tuple[float, ...], x: np.ndarray, age: np.ndarray, pairs: _Pairs, log_g: np.ndarray):
    """The two terms of the likelihood's bracket (Fader & Hardie 2005 note, section 3), relative to exp(top).

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s
          + s * integral_{t_x}^T (alpha+u)^-(r+x) (beta+u)^-(s+1) du ]
    (the customer is alive at T, or died at some u between t_x and T), and the integral is
    (G(t_x) - G(T)) / m with G from _log_g.
    """
    r, alpha, s, beta = params
    log_g_x, log_g_age = log_g[pairs.at_tx], log_g[pairs.at_age]
    m = r + s + x
    log_alpha_age = np.log(alpha + age)
    log_beta_age = np.log(beta + age)
    log_alive = -(r + x) * log_alpha_age - s * log_beta_age
    top = np.maximum(log_alive, log_g_x)
    alive = np.exp(log_alive - top)
    g_x = np.exp(log_g_x - top)
    g_age = np.exp(log_g_age - top)
    # G(t_x) >= G(T) exactly; rounding may cross when t_x is within an ulp of T.
    died = np.maximum(s / m * (g_x - g_age), 0.0)
    return {
        "top": top, "alive": alive, "died": died, "g_x": g_x, "g_age": g_age, "m": m,
        "log_alpha_age": log_alpha_age, "log_beta_age": log_beta_age,
    }  # fmt: skip


class _FitData:
    """Merged rows plus per-frequency totals for the x-only terms of the likelihood."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, w: np.ndarray):
        self.x, self.t_x, self.age, self.w = x, t_x, age, w
        self.total = float(w.sum())
        self.ux, code = np.unique(x, return_inverse=True)
        self.wx = np.bincount(code, weights=w, minlength=self.ux.size)
        self.pairs = _Pairs(x, t_x, age)

    def log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood (Fader & Hardie 2005 note, section 3) and its analytic gradient."""
        r, alpha, s, beta = theta
        ux, wx, total, w = self.ux, self.wx, self.total, self.w
        ll = wsum(wx, gammaln(r + ux)) + total * (-gammaln(r) + r * np.log(alpha) + s * np.log(beta))
        grad = np.array(
            [
                wsum(wx, digamma(r + ux)) + total * (-digamma(r) + np.log(alpha)),
                total * r / alpha,
                total * np.log(beta),
                total * s / beta,
            ]
        )
        log_g, grad_g, complete = _log_g((r, alpha, s, beta), self.pairs, gradient=True)
        if not complete.all():
            return np.nan, np.full(4, np.nan)
        x, age = self.x, self.age
        parts = _bracket((r, alpha, s, beta), x, age, self.pairs, log_g)
        bracket = parts["alive"] + parts["died"]
        ll += wsum(w, parts["top"] + np.log(bracket))
        # d log(bracket) = (d alive + d died) / bracket, summed with the weights w:
        #   d alive = alive * dlog alive,
        #   d died  = s/m (g_x dlogG(t_x) - g_age dlogG(T)) + died (dlog s - dlog m);
        # the dlogG terms are per (x, t) pair, so their weights are summed per pair first.
        v = w / bracket
        v_alive = v * parts["alive"]
        v_died_m = v * parts["died"] / parts["m"]
        share = v * s / parts["m"]
        n_pairs = self.pairs.t.size
        per_pair = np.bincount(self.pairs.at_tx, weights=share * parts["g_x"], minlength=n_pairs)
        per_pair -= np.bincount(self.pairs.at_age, weights=share * parts["g_age"], minlength=n_pairs)
        grad += np.einsum("ij,j->i", grad_g, per_pair)
        sum_died_m = v_died_m.sum()
        grad += np.array(
            [
                -wsum(v_alive, parts["log_alpha_age"]) - sum_died_m,
                -wsum(v_alive * (r + x), 1.0 / (alpha + age)),
                -wsum(v_alive, parts["log_beta_age"]) + wsum(v, parts["died"]) / s - sum_died_m,
                -s * wsum(v_alive, 1.0 / (beta + age)),
            ]
        )
        return float(ll), grad


def _p_alive(params: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Share of the likelihood's bracket that comes from being alive at T (Fader & Hardie 2005 note, section 5)."""
    shape = x.shape
    x, t_x, age = (np.ravel(v) for v in np.broadcast_arrays(x, t_x, age))
    pairs = _Pairs(x, t_x, age)
    log_g, _, complete = _log_g(params, pairs, gradient=False)
    require_complete(complete, "Pareto/NBD P(alive)", "alpha and beta differ by many orders of magnitude")
    parts = _bracket(params, x, age, pairs, log_g)
    alive = parts["alive"] / (parts["alive"] + parts["died"])
    return alive.reshape(shape)


def _alive_expectation(params: tuple[float, ...], x: np.ndarray, age: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]
    (Fader & Hardie 2005 note, section 6; with T = 0, x = 0 it is E[X(t)] of section 4).

    Written as (r+x)/(alpha+T) (beta+T) L exprel(-(s-1) L) with L = log1p(t/(beta+T)), which is
    the same expression without the 0/0 at s = 1.
    """
    r, alpha, s, beta = params
    big_l = np.log1p(t / (beta + age))
    return (r + x) / (alpha + age) * (beta + age) * big_l * exprel(-(s - 1.0) * big_l)
