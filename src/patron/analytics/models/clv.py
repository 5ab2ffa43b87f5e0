"""Customer lifetime value from a transaction model and an expected spend per transaction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from patron.analytics.models.base import as_array, check_rfm


def customer_lifetime_value(
    transaction_model: Any,
    frequency: Any,
    recency: Any,
    T: Any,
    expected_spend: Any,
    *,
    horizon: float,
    discount_rate: float,
    margin: float = 1.0,
    step: float = 1.0,
) -> np.ndarray:
    """Discounted value of each customer's expected purchases over the next `horizon` time units.

    sum_{k=1}^{horizon/step} margin * spend * (E[X(k step)] - E[X((k-1) step)]) / (1 + discount_rate)^k,
    with E[X(t)] the model's expected purchases in (T, T+t] given (frequency, recency, T), the
    discount rate per step, and time in the unit the model was fitted in. This is the discounted
    form of Fader, Hardie & Lee's (2005, JMR) CLV, and with step=30 days, horizon=12*30 it is
    lifetimes' customer_lifetime_value(time=12, freq="D").
    """
    horizon = float(horizon)
    step = float(step)
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be > 0, got {step}")
    if not (math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be > 0, got {horizon}")
    periods = round(horizon / step)
    if periods < 1 or abs(periods * step - horizon) > 1e-9 * horizon:
        raise ValueError(f"horizon ({horizon}) must be a whole number of steps ({step})")
    if not (math.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError(f"discount_rate must be > -1, got {discount_rate}")
    if not math.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin}")
    x, t_x, age = check_rfm(frequency, recency, T, for_fit=False)
    spend = as_array("expected_spend", expected_spend)
    try:
        x, t_x, age, spend = np.broadcast_arrays(x, t_x, age, spend)
    except ValueError:
        raise ValueError(
            f"expected_spend must have one value per customer (got {spend.size} for {x.size} customers)"
        ) from None
    shape = x.shape
    curve = getattr(transaction_model, "_conditional_curve", None)
    if curve is not None:
        # A model of this package: group customers once, then one cheap evaluation per period.
        expected = curve(x, t_x, age).expected
    else:

        def expected(t: float) -> np.ndarray:
            return np.asarray(transaction_model.expected_purchases(t, x, t_x, age), dtype=float)

    total = np.zeros(shape)
    previous = np.zeros(shape)
    for k in range(1, periods + 1):
        current = np.asarray(expected(k * step)).reshape(shape)
        total += (current - previous) / (1.0 + discount_rate) ** k
        previous = current
    return margin * spend * total
