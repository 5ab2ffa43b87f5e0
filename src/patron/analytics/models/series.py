"""Vectorised power series for the Gaussian hypergeometric terms of the BG/NBD and Pareto/NBD models.

scipy.special.hyp2f1 returns nan, inf or silently wrong values once its parameters grow with a
customer's frequency (the BG/NBD conditional expectation has c - a - b = a - 1 - r - x, very
negative for heavy buyers), and it gives no parameter derivatives, which the Pareto/NBD
likelihood gradient needs. Each model therefore transforms its 2F1 into a series whose terms are
bounded (see the model modules for the transformations) and sums it here, for many rows at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from patron.errors import ConvergenceError

# Rows x terms per block: keeps the 2-D work arrays around 8 MB however many rows there are.
_BLOCK_ELEMENTS = 1 << 20
_FIRST_BLOCK = 16
_MAX_BLOCK = 512
# Past this many terms the argument is so close to 1 that the caller asked for something absurd
# (a horizon tens of thousands of times the customer's age plus alpha).
MAX_TERMS = 2_000_000
_EPS = 1e-17
_RESCALE_ABOVE = 1e200

Ratio = Callable[[np.ndarray, np.ndarray], np.ndarray]


class SeriesSums:
    """Sum of a series (also as log|sum|), the sum of |terms|, and weighted sums for derivatives."""

    def __init__(self, n: int, n_weighted: int):
        self.total = np.zeros(n)
        self.log_total = np.full(n, -np.inf)
        # Sum of |terms| / |sum|: the factor by which cancellation magnifies rounding errors.
        self.cancellation = np.ones(n)
        self.weighted = [np.zeros(n) for _ in range(n_weighted)]
        self.k_weighted = np.zeros(n)
        self.complete = np.ones(n, dtype=bool)


def sum_series(
    log_first: np.ndarray,
    sign_first: np.ndarray,
    ratio: Ratio,
    ratio_bound: np.ndarray,
    *,
    increments: Sequence[Ratio] = (),
    min_steps: int = 0,
    max_terms: int = MAX_TERMS,
) -> SeriesSums:
    """Sum_k term_k per row, where term_0 = sign*exp(log_first) and term_{k+1} = term_k * ratio(k, rows).

    ratio(ks, rows) returns the (len(rows), len(ks)) matrix of term_{k+1}/term_k for the steps ks.
    ratio_bound[i] < 1 must bound |ratio| for every step after the first min_steps, so that once a
    term is small the tail is known to be smaller still (a geometric bound).
    Each increment d gives D_k = sum_{j<k} d(j) and the weighted sum Sum_k term_k D_k: with d the
    derivative of log(term ratio) with respect to a parameter, that weighted sum is the derivative
    of the series with respect to the parameter. k_weighted is Sum_k k*term_k (for d/dz of a power
    series in z). complete[i] is False for rows that hit max_terms.
    """
    sums = SeriesSums(log_first.shape[0], len(increments))
    live = np.flatnonzero(np.isfinite(log_first) & (sign_first != 0))
    chunk = max(_BLOCK_ELEMENTS // _FIRST_BLOCK, 1)
    for start in range(0, live.size, chunk):
        rows = live[start : start + chunk]
        _sum_rows(rows, log_first, sign_first, ratio, ratio_bound, increments, min_steps, max_terms, sums)
    return sums


def _sum_rows(
    rows: np.ndarray,
    log_first: np.ndarray,
    sign_first: np.ndarray,
    ratio: Ratio,
    ratio_bound: np.ndarray,
    increments: Sequence[Ratio],
    min_steps: int,
    max_terms: int,
    sums: SeriesSums,
) -> None:
    m = rows.size
    # Sums are kept relative to exp(scale) so that a first term below the float range (or terms
    # that grow far above it before they shrink) never underflow or overflow.
    scale = log_first[rows].astype(float)
    last = sign_first[rows].astype(float)
    s = last.copy()
    s_abs = np.abs(last)
    acc = [np.zeros(m) for _ in increments]
    d_last = [np.zeros(m) for _ in increments]
    acc_k = np.zeros(m)
    bound = ratio_bound[rows]
    active = np.arange(m)
    k = 0
    block = _FIRST_BLOCK
    while active.size:
        if k >= max_terms:
            sums.complete[rows[active]] = False
            break
        ks = np.arange(k, k + block, dtype=float)
        sub = rows[active]
        rat = ratio(ks, sub)
        terms = np.cumprod(rat, axis=1)
        terms *= last[active, None]
        s[active] += terms.sum(axis=1)
        s_abs[active] += np.abs(terms).sum(axis=1)
        acc_k[active] += np.einsum("ij,j->i", terms, ks + 1.0)
        d_max = np.zeros(active.size)
        for j, inc in enumerate(increments):
            cum = np.cumsum(inc(ks, sub), axis=1)
            cum += d_last[j][active, None]
            acc[j][active] += np.einsum("ij,ij->i", terms, cum)
            d_last[j][active] = cum[:, -1]
            d_max = np.maximum(d_max, np.abs(cum[:, -1]))
        new_last = terms[:, -1]
        last[active] = new_last
        k += block
        rho = np.maximum(np.abs(rat[:, -1]), bound[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = np.where(rho < 1.0, np.abs(new_last) * rho / (1.0 - rho), np.inf) * (1.0 + d_max)
        done = (tail <= _EPS * np.abs(s[active])) | (new_last == 0.0)
        if k < min_steps:
            done[:] = False
        big = s_abs[active] > _RESCALE_ABOVE
        if big.any():
            rows_big = active[big]
            factor = s_abs[rows_big]
            s[rows_big] /= factor
            s_abs[rows_big] /= factor
            last[rows_big] /= factor
            acc_k[rows_big] /= factor
            for a in acc:
                a[rows_big] /= factor
            scale[rows_big] += np.log(factor)
        active = active[~done]
        if active.size:
            fits = max(_FIRST_BLOCK, _BLOCK_ELEMENTS // active.size)
            block = int(min(_MAX_BLOCK, max(_FIRST_BLOCK, 2 * block), fits))
    sums.total[rows] = _unscale(s, scale)
    with np.errstate(divide="ignore"):
        sums.log_total[rows] = np.log(np.abs(s)) + scale
        sums.cancellation[rows] = s_abs / np.abs(s)
    sums.k_weighted[rows] = _unscale(acc_k, scale)
    for j, a in enumerate(acc):
        sums.weighted[j][rows] = _unscale(a, scale)


def _unscale(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.sign(values) * np.exp(np.log(np.abs(values)) + scale)


def require_complete(complete: np.ndarray, what: str, why: str) -> None:
    """Raise ConvergenceError when some rows of a series needed more than MAX_TERMS terms."""
    if not complete.all():
        raise ConvergenceError(
            f"{what}: the hypergeometric series did not converge within {MAX_TERMS:,} terms "
            f"for {int((~complete).sum())} row(s); its argument is too close to 1 ({why})"
        )


def power_series_by_group(
    coefficients: Callable[[np.ndarray, int], np.ndarray],
    group: np.ndarray,
    z: np.ndarray,
    *,
    eps: float = 1e-18,
    max_terms: int = MAX_TERMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum_k C_g[k, j] z^k for each row (its group g) and each column j of the coefficient matrix.

    For series whose coefficients depend on the row only through a small number of groups (the
    customer's frequency) and whose coefficients are at most 1 in absolute value with 0 <= z < 1:
    the tail after K terms is below z^K / (1 - z). coefficients(g, K) returns the (K, J) matrix for
    the groups g (an array of one group). Rows of a group share one matrix, so a block of rows is
    one matrix product of their powers of z with it. Returns the (n, J) sums and a completeness flag.
    """
    n = z.size
    with np.errstate(divide="ignore"):
        need = np.where(z > 0, np.ceil((np.log(eps) + np.log1p(-z)) / np.log(np.where(z > 0, z, 0.5))), 0.0) + 1.0
    complete = need <= max_terms
    # At least two terms: the derivative in z of a series is its second coefficient at z = 0.
    need = np.clip(need, 2, max_terms).astype(np.int64)
    order = np.lexsort((-need, group))
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    out: np.ndarray | None = None
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        g = group[rows[0]]
        coef = coefficients(np.array([g]), int(need[rows[0]]))
        if out is None:
            out = np.zeros((n, coef.shape[1]))
        start = 0
        while start < rows.size:
            k = int(need[rows[start]])
            take = max(1, _BLOCK_ELEMENTS // max(k, 1))
            block = rows[start : start + take]
            powers = np.empty((block.size, k))
            powers[:, 0] = 1.0
            if k > 1:
                powers[:, 1:] = z[block, None]
                np.cumprod(powers[:, 1:], axis=1, out=powers[:, 1:])
            out[block] = np.einsum("ik,kj->ij", powers, coef[:k])
            start += take
    if out is None:
        out = np.zeros((n, 1))
    return out, complete
