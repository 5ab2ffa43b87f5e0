"""What every customer-base model shares: input checks, merging identical rows, and the maximum-likelihood fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

from patron.errors import ConvergenceError

__all__ = [
    "ConvergenceError",
    "LikelihoodModel",
    "PurchaseCurve",
    "as_array",
    "check_horizon",
    "check_rfm",
    "check_weights",
    "group_rows",
    "merge_rows",
    "scalar_or_array",
    "wsum",
]

# Log-parameters stay inside this box: exp(+-30) spans every sensible unit of time and money, and
# a fit that ends on the box edge has run off towards a degenerate model (reported, not returned).
_LOG_BOUND = 30.0
_HESSIAN_STEP = 1e-5


def as_array(name: str, values: Any) -> np.ndarray:
    """Values as a float array, rejecting non-numeric and non-finite input with a clear message."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if array.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a one-dimensional array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_horizon(t: Any) -> np.ndarray:
    """Validated prediction horizon(s) t >= 0."""
    horizon = as_array("t", t)
    if (horizon < 0).any():
        raise ValueError("t (the prediction horizon) must be >= 0")
    return horizon


def scalar_or_array(values: np.ndarray) -> np.ndarray | float:
    """A float for 0-d results (all inputs were scalars), else the array."""
    return float(values) if values.ndim == 0 else values


class PurchaseCurve:
    """Expected purchases of a fixed set of customers as a function of the horizon t.

    E[purchases in (T, T+t]] = p_alive * at(t)[inverse]: at() works on groups of customers (the
    distinct (frequency, T) pairs for BG/NBD), so a curve evaluated at many horizons
    (customer_lifetime_value) pays for the grouping and for P(alive) once.
    """

    def __init__(self, p_alive: np.ndarray, inverse: np.ndarray, at: Callable[[float], np.ndarray], shape=None):
        self.p_alive = p_alive
        self.inverse = inverse
        self.at = at
        self.shape = p_alive.shape if shape is None else shape

    def expected(self, t: float) -> np.ndarray:
        """Expected purchases of every customer in (T, T + t]."""
        return (self.p_alive * self.at(t)[self.inverse]).reshape(self.shape)


def _first_bad(mask: np.ndarray) -> str:
    where = np.flatnonzero(np.atleast_1d(mask))
    return f"{where.size} row(s), first at index {int(where[0])}"


def check_rfm(frequency: Any, recency: Any, T: Any, *, for_fit: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (frequency, recency, T) arrays; for_fit demands equal-length, non-empty 1-D arrays."""
    x = as_array("frequency", frequency)
    t_x = as_array("recency", recency)
    age = as_array("T", T)
    if for_fit:
        if x.ndim != 1 or t_x.ndim != 1 or age.ndim != 1:
            raise ValueError("frequency, recency and T must be one-dimensional arrays")
        if not (x.size == t_x.size == age.size):
            raise ValueError(
                f"frequency, recency and T must have the same length (got {x.size}, {t_x.size} and {age.size})"
            )
        if x.size == 0:
            raise ValueError("frequency, recency and T are empty: there is nothing to fit")
    else:
        try:
            x, t_x, age = np.broadcast_arrays(x, t_x, age)
        except ValueError:
            raise ValueError(
                f"frequency, recency and T must have the same length (got {x.size}, {t_x.size} and {age.size})"
            ) from None
    if (x < 0).any():
        raise ValueError(f"frequency must be >= 0; negative in {_first_bad(x < 0)}")
    if (x != np.floor(x)).any():
        raise ValueError(f"frequency counts repeat purchases and must be whole; not in {_first_bad(x != np.floor(x))}")
    if (t_x < 0).any():
        raise ValueError(f"recency must be >= 0; negative in {_first_bad(t_x < 0)}")
    if (age < 0).any():
        raise ValueError(f"T must be >= 0; negative in {_first_bad(age < 0)}")
    if (t_x > age).any():
        raise ValueError(f"recency must not exceed T (the last purchase is within the period); {_first_bad(t_x > age)}")
    bad = (x == 0) & (t_x > 0)
    if bad.any():
        raise ValueError(f"recency must be 0 when frequency is 0 (no repeat purchase to be recent); {_first_bad(bad)}")
    return x, t_x, age


def wsum(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b) without BLAS: OpenBLAS threads its dot product, and on a busy machine its spinning
    threads made a fit five times slower than this single-threaded loop."""
    return float(np.einsum("i,i->", a, b))


def check_weights(weights: Any, n: int) -> np.ndarray:
    """Validated non-negative weights (counts of customers) of length n; ones when None."""
    if weights is None:
        return np.ones(n)
    w = as_array("weights", weights)
    if w.ndim != 1 or w.size != n:
        raise ValueError(f"weights must have one value per customer (got {w.size} for {n} customers)")
    if (w < 0).any():
        raise ValueError(f"weights must be >= 0; negative in {_first_bad(w < 0)}")
    if not (w > 0).any():
        raise ValueError("weights are all zero: there is nothing to fit")
    return w


def group_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of equal-length columns, and for each input row the index of its distinct row.

    Not np.unique(np.stack(columns, axis=1), axis=0): that sorts an opaque byte view and takes
    about 2.7 s on a million rows. Whole-number columns (days, counts) are packed into one int64
    key (a lookup table when there are few possible keys, else one sort); other columns get one
    lexicographic sort (~0.3 s).
    """
    n = columns[0].size
    if n == 0:
        return [c[:0] for c in columns], np.zeros(0, dtype=np.intp)
    packed = _packed_key(columns)
    if packed is not None:
        key, span = packed
        if span <= 8 * n:
            # Few possible keys: a presence table instead of a sort.
            present = np.zeros(span, dtype=bool)
            present[key] = True
            rank = np.cumsum(present) - 1
            inverse = rank[key]
            firsts = np.empty(int(rank[-1]) + 1, dtype=np.intp)
            firsts[inverse] = np.arange(n)
            return [c[firsts] for c in columns], inverse
        order = np.argsort(key)
        sorted_key = key[order]
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    else:
        order = np.lexsort(columns[::-1])
        new = np.zeros(n, dtype=bool)
        new[0] = True
        for c in columns:
            sorted_c = c[order]
            new[1:] |= sorted_c[1:] != sorted_c[:-1]
    group_of_sorted = np.cumsum(new) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group_of_sorted
    firsts = order[new]
    return [c[firsts] for c in columns], inverse


def _packed_key(columns: tuple[np.ndarray, ...]) -> tuple[np.ndarray, int] | None:
    """One int64 per row that separates rows as the columns do, and the number of possible keys;
    None unless every column holds whole numbers."""
    key = None
    span_total = 1
    for c in columns:
        lo, hi = float(c.min()), float(c.max())
        span = int(hi - lo) + 1
        span_total *= span
        if span_total > 2**62 or not (c == np.floor(c)).all():
            return None
        part = (c - lo).astype(np.int64)
        key = part if key is None else key * span + part
    return key, span_total


def merge_rows(weights: np.ndarray, *columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows merged into one row whose weight is their summed weight; zero weights dropped.

    The likelihood is a weighted sum over rows, so this is exact, and summaries built from dates
    repeat the same (frequency, recency, T) many times: the fit then costs per distinct row.
    """
    keep = weights > 0
    if not keep.all():
        columns = tuple(c[keep] for c in columns)
        weights = weights[keep]
    unique, inverse = group_rows(*columns)
    return unique, np.bincount(inverse, weights=weights, minlength=unique[0].size)


LogLikelihood = Callable[[np.ndarray], tuple[float, np.ndarray]]


class LikelihoodModel:
    """Shared estimator contract: hyperparameters in __init__, results in attributes ending in '_'.

    penalizer adds penalizer * sum(params**2) to the mean negative log-likelihood (lifetimes'
    penalizer_coef, but on the parameters in the data's own time unit). max_iter bounds the
    L-BFGS-B iterations. tol is the largest gradient of the mean negative log-likelihood with
    respect to the log-parameters accepted at the end; a larger one raises ConvergenceError.
    """

    param_names: tuple[str, ...] = ()

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 1000, tol: float = 1e-6):
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    def __repr__(self) -> str:
        if getattr(self, "params_", None) is None:
            return f"{type(self).__name__}(penalizer={self.penalizer}, max_iter={self.max_iter}, tol={self.tol})"
        fitted = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({fitted})"

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters, as scikit-learn's get_params."""
        return {"penalizer": self.penalizer, "max_iter": self.max_iter, "tol": self.tol}

    def set_params(self, **params: Any) -> LikelihoodModel:
        """Change hyperparameters, as scikit-learn's set_params."""
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"{type(self).__name__} has no hyperparameter {key!r}")
            setattr(self, key, value)
        return self

    def _check_hyperparameters(self) -> None:
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be a finite number >= 0, got {self.penalizer!r}")
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive whole number, got {self.max_iter!r}")
        if not (self.tol > 0):
            raise ValueError(f"tol must be > 0, got {self.tol!r}")

    def _params(self) -> tuple[float, ...]:
        params = getattr(self, "params_", None)
        if params is None:
            raise ValueError(f"{type(self).__name__} is not fitted yet: call fit() first")
        return tuple(params[name] for name in self.param_names)

    def _maximize(self, log_likelihood: LogLikelihood, start: np.ndarray, total_weight: float) -> None:
        """Maximum likelihood on log-parameters; sets params_, standard_errors_, covariance_, log_likelihood_.

        log_likelihood(theta) returns the weighted total log-likelihood and its analytic gradient
        with respect to theta. The optimiser sees the mean over customers (lifetimes' scale, so that
        its penalizer means the same) plus penalizer * sum(theta**2).
        """
        self._check_hyperparameters()
        penalizer = float(self.penalizer)

        def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
            theta = np.exp(u)
            with np.errstate(all="ignore"):
                ll, grad = log_likelihood(theta)
            value = -ll / total_weight + penalizer * float(theta @ theta)
            gradient = (-grad / total_weight + 2.0 * penalizer * theta) * theta
            if not (np.isfinite(value) and np.isfinite(gradient).all()):
                # L-BFGS-B backtracks from a huge finite value; an inf or nan would end the search.
                return 1e300, np.zeros_like(u)
            return value, gradient

        u0 = np.clip(np.log(start), -_LOG_BOUND + 1, _LOG_BOUND - 1)
        result = minimize(
            objective,
            u0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * u0.size,
            options={"maxiter": int(self.max_iter), "ftol": 1e-15, "gtol": 1e-11, "maxls": 50},
        )
        name = type(self).__name__
        if result.status == 1:
            raise ConvergenceError(
                f"{name}: the optimiser stopped after {result.nit} iterations (max_iter={self.max_iter}) "
                "before converging",
                detail={"message": str(result.message)},
            )
        u = result.x
        value, gradient = objective(u)
        if value >= 1e300:
            raise ConvergenceError(f"{name}: the log-likelihood is not finite at the optimiser's end point")
        # Polish with Newton steps on a finite-difference Hessian of the analytic gradient:
        # L-BFGS-B stops on relative decrease, which on a flat ridge can leave the parameters
        # short of full precision.
        hessian = _hessian(objective, u)
        u_start = u
        for _ in range(8):
            if np.abs(gradient).max() < 1e-13:
                break
            try:
                step = -np.linalg.solve(hessian, gradient)
            except np.linalg.LinAlgError:
                break
            trial = np.clip(u + step, -_LOG_BOUND, _LOG_BOUND)
            trial_value, trial_gradient = objective(trial)
            better = np.abs(trial_gradient).max() < np.abs(gradient).max()
            if not (better and trial_value <= value + 1e-12 * abs(value)):
                break
            u, value, gradient = trial, trial_value, trial_gradient
        if np.abs(u - u_start).max() > 1e-4:
            # Far enough from where the Hessian was taken for the standard errors to notice.
            hessian = _hessian(objective, u)
        theta = np.exp(u)
        on_bound = np.abs(u) >= _LOG_BOUND - 1e-6
        if on_bound.any():
            names = ", ".join(n for n, b in zip(self.param_names, on_bound, strict=True) if b)
            raise ConvergenceError(
                f"{name}: {names} ran off to 0 or infinity; the data do not identify the model "
                "(for example there are no repeat purchases)",
                detail={"params": dict(zip(self.param_names, theta.tolist(), strict=True))},
            )
        if np.abs(gradient).max() > self.tol:
            raise ConvergenceError(
                f"{name}: the optimiser ended with gradient {np.abs(gradient).max():.3g} > tol={self.tol} "
                f"({result.message})",
                detail={"params": dict(zip(self.param_names, theta.tolist(), strict=True))},
            )
        # Hessian of the total penalised negative log-likelihood in natural parameters, from the
        # log-parameter one: d2f/dtheta2 = (d2f/du2 - diag(df/du)) / (theta theta^T).
        hessian_theta = total_weight * (hessian - np.diag(gradient)) / np.outer(theta, theta)
        hessian_theta = (hessian_theta + hessian_theta.T) / 2
        try:
            np.linalg.cholesky(hessian_theta)
        except np.linalg.LinAlgError:
            raise ConvergenceError(
                f"{name}: the end point is not a maximum of the likelihood (its Hessian is not positive "
                "definite); the data do not identify the parameters",
                detail={"params": dict(zip(self.param_names, theta.tolist(), strict=True))},
            ) from None
        covariance = np.linalg.inv(hessian_theta)
        ll, _ = log_likelihood(theta)
        self.params_ = dict(zip(self.param_names, theta.tolist(), strict=True))
        self.covariance_ = covariance
        self.standard_errors_ = dict(zip(self.param_names, np.sqrt(np.diag(covariance)).tolist(), strict=True))
        self.log_likelihood_ = float(ll)
        self.converged_ = True
        self.n_iter_ = int(result.nit)


def _hessian(objective: Callable[[np.ndarray], tuple[float, np.ndarray]], u: np.ndarray) -> np.ndarray:
    """Central differences of the analytic gradient."""
    k = u.size
    h = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = _HESSIAN_STEP
        h[:, j] = (objective(u + e)[1] - objective(u - e)[1]) / (2 * _HESSIAN_STEP)
    return (h + h.T) / 2
