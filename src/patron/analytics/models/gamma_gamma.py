"""Gamma-Gamma model of spend per transaction: Fader, Hardie & Lee (2005), "RFM and CLV: using
iso-value curves for customer base analysis", Journal of Marketing Research 42(4), 415-430; the
expressions as written in Fader & Hardie (2013), "The Gamma-Gamma model of monetary value"
(brucehardie.com note 025).

Each transaction's value is Gamma(p, nu); nu varies across customers as Gamma(q, gamma). lifetimes
calls gamma "v". A customer is summarised by x repeat transactions and their average value m.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from patron.analytics.models.base import LikelihoodModel, as_array, check_weights, wsum


def _check_spend(frequency: Any, monetary_value: Any, *, for_fit: bool) -> tuple[np.ndarray, np.ndarray]:
    x = as_array("frequency", frequency)
    m = as_array("monetary_value", monetary_value)
    if for_fit:
        if x.ndim != 1 or m.ndim != 1:
            raise ValueError("frequency and monetary_value must be one-dimensional arrays")
        if x.size != m.size:
            raise ValueError(f"frequency and monetary_value must have the same length (got {x.size} and {m.size})")
        if x.size == 0:
            raise ValueError("frequency and monetary_value are empty: there is nothing to fit")
    else:
        try:
            x, m = np.broadcast_arrays(x, m)
        except ValueError:
            raise ValueError(
                f"frequency and monetary_value must have the same length (got {x.size} and {m.size})"
            ) from None
    if (x < 0).any():
        raise ValueError("frequency must be >= 0")
    if (x != np.floor(x)).any():
        raise ValueError("frequency counts repeat purchases and must be whole")
    if (m[x > 0] <= 0).any():
        raise ValueError("monetary_value must be > 0 for customers with frequency > 0 (their average spend)")
    if (m < 0).any():
        raise ValueError("monetary_value must be >= 0")
    return x, m


class GammaGamma(LikelihoodModel):
    """Average spend per transaction, shrunk towards the population mean (Fader, Hardie & Lee 2005)."""

    param_names = ("p", "q", "gamma")

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> GammaGamma:
        """Maximum-likelihood estimates of p, q, gamma from repeat buyers' average spend.

        Customers with frequency 0 carry no spend information (their monetary_value, usually 0, is
        not an average of repeat transactions) and are left out; n_customers_ says how many were used.
        """
        self.params_ = None
        self.converged_ = False
        x, m = _check_spend(frequency, monetary_value, for_fit=True)
        w = check_weights(weights, x.size)
        used = (x > 0) & (w > 0)
        if not used.any():
            raise ValueError("GammaGamma needs customers with frequency > 0 (repeat buyers); there are none")
        data = _FitData(x[used], m[used], w[used])
        self.n_customers_ = float(w[used].sum())
        # Method of moments on the average spends: mean = p gamma/(q-1) for any p; start at q = 3.
        mean_spend = wsum(data.w, data.m) / data.total
        start = np.array([1.0, 3.0, 2.0 * mean_spend])
        self._maximize(data.log_likelihood, start, data.total)
        return self

    def expected_average_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray | float:
        """E[spend per transaction | x, m]: a weighted mean of the customer's m and the population mean.

        (p gamma + p x m)/(p x + q - 1) (note 025, eq. 5); for frequency 0 it is the population mean
        p gamma/(q - 1). Requires q > 1 (otherwise the population mean is infinite).
        """
        p, q, gamma = self._params()
        x, m = _check_spend(frequency, monetary_value, for_fit=False)
        if q <= 1:
            raise ValueError(f"expected spend is infinite for q <= 1 (fitted q = {q:.4g})")
        result = p * (gamma + x * m) / (p * x + q - 1.0)
        return float(result) if result.ndim == 0 else result

    def _negative_log_likelihood(self, theta: np.ndarray, frequency, monetary_value, weights=None):
        """Mean negative log-likelihood and its gradient at theta (for tests of the analytic gradient)."""
        x, m = _check_spend(frequency, monetary_value, for_fit=True)
        w = check_weights(weights, x.size)
        data = _FitData(x, m, w)
        ll, grad = data.log_likelihood(np.asarray(theta, dtype=float))
        return -ll / data.total, -grad / data.total


class _FitData:
    """Rows with x > 0, with the sums that do not depend on the parameters computed once."""

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray):
        self.x, self.m, self.w = x, m, w
        self.total = float(w.sum())
        self.ux, code = np.unique(x, return_inverse=True)
        self.wx = np.bincount(code, weights=w, minlength=self.ux.size)
        self.mx = m * x
        self.wx_x = w * x
        log_m = np.log(m)
        # sum w (p x - 1) log m + p x log x  =  p * sum w x log(m x)  -  sum w log m
        self.sum_wx_log_mx = wsum(self.wx_x, log_m + np.log(x))
        self.sum_w_log_m = wsum(w, log_m)

    def log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood of the average spends (note 025, eq. 1a) and its gradient.

        f(m | p, q, gamma, x) = Gamma(px+q) / (Gamma(px) Gamma(q)) gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)
        """
        p, q, gamma = theta
        ux, wx, total = self.ux, self.wx, self.total
        pux = p * ux
        ll = wsum(wx, gammaln(pux + q) - gammaln(pux)) + total * (q * np.log(gamma) - gammaln(q))
        ll += p * self.sum_wx_log_mx - self.sum_w_log_m
        log_gm = np.log(gamma + self.mx)
        s_wx_log = wsum(self.wx_x, log_gm)
        s_w_log = wsum(self.w, log_gm)
        ll -= p * s_wx_log + q * s_w_log
        inv = 1.0 / (gamma + self.mx)
        dig = digamma(pux + q)
        g_p = wsum(wx * ux, dig - digamma(pux)) + self.sum_wx_log_mx - s_wx_log
        g_q = wsum(wx, dig) + total * (np.log(gamma) - digamma(q)) - s_w_log
        g_gamma = total * q / gamma - wsum(p * self.wx_x + q * self.w, inv)
        return float(ll), np.array([g_p, g_q, g_gamma])
