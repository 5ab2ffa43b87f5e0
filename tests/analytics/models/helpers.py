"""Test helpers: CDNOW calibration summaries from the raw purchase log, simulated customers, checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample.txt"
CALIBRATION_END = np.datetime64("1997-09-30")


def cdnow_summary() -> dict[str, np.ndarray]:
    """Per-customer (x, t_x, T, average repeat spend) for the 39-week calibration period, in weeks.

    Purchases on the same day are one transaction (their dollars summed). x counts the repeat
    transaction days up to 1997-09-30; t_x and T are days from the first purchase to the last
    calibration purchase and to 1997-09-30, divided by 7. That puts a 1 January customer at
    T = 272/7 = 38.86 weeks, the published summary's convention (counting 30 September itself would
    give 39 weeks and estimates that miss the published ones in the third digit). monetary_value is
    the mean spend of the repeat transactions in the period (lifetimes' convention), 0 when x = 0.
    """
    raw = np.loadtxt(CDNOW)
    customer = raw[:, 1].astype(np.int64)
    ymd = raw[:, 2].astype(np.int64)
    day = np.array([f"{v // 10000:04d}-{v // 100 % 100:02d}-{v % 100:02d}" for v in ymd], dtype="datetime64[D]")
    dollars = raw[:, 4]
    # One transaction per customer and day.
    keys, inverse = np.unique(np.stack([customer, day.astype(np.int64)], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    spend = np.bincount(inverse, weights=dollars)
    cust, days = keys[:, 0], keys[:, 1]
    end = CALIBRATION_END.astype(np.int64)
    ids, first_index = np.unique(cust, return_index=True)
    first_day = days[first_index]
    which = np.searchsorted(ids, cust)
    in_calibration = days <= end
    repeat = in_calibration & (days > first_day[which])
    x = np.bincount(which, weights=repeat, minlength=ids.size)
    last_day = first_day.copy()
    np.maximum.at(last_day, which[in_calibration], days[in_calibration])
    repeat_spend = np.bincount(which, weights=np.where(repeat, spend, 0.0), minlength=ids.size)
    return {
        "id": ids,
        "frequency": x,
        "recency": (last_day - first_day) / 7.0,
        "T": (end - first_day) / 7.0,
        "monetary_value": np.divide(repeat_spend, x, out=np.zeros(ids.size), where=x > 0),
    }


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, seed: int) -> dict[str, np.ndarray]:
    """Summaries of n customers drawn from the BG/NBD process (continuous time, ages up to 52 weeks)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1.0, 52.0, size=n)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    possible = rng.poisson(lam * age)
    x = np.minimum(possible, rng.geometric(p))
    t_x = np.where(x > 0, age * rng.beta(np.maximum(x, 1), possible - x + 1), 0.0)
    return {"frequency": x.astype(float), "recency": t_x, "T": age}


def sig3_equal(value: float, published: float) -> bool:
    """True when value rounds to the published figure at three significant digits."""
    unit = 10.0 ** (np.floor(np.log10(abs(published))) - 2)
    return abs(value - published) <= 0.5 * unit


def numeric_gradient(f, theta: np.ndarray, rel_step: float = 1e-3) -> np.ndarray:
    """Five-point central differences of a scalar function (error O(h^4))."""
    grad = np.empty(theta.size)
    for j in range(theta.size):
        h = rel_step * theta[j]
        e = np.zeros(theta.size)
        e[j] = h
        grad[j] = (f(theta - 2 * e) - 8 * f(theta - e) + 8 * f(theta + e) - f(theta + 2 * e)) / (12 * h)
    return grad
