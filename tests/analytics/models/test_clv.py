"""customer_lifetime_value: the discounted sum over periods of expected purchases times spend."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import customer_lifetime_value


def test_without_discount_it_is_spend_times_expected_purchases(bgnbd, pareto, cdnow):
    x, t_x, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    spend = np.linspace(5, 80, x.size)
    for model in (bgnbd, pareto):
        clv = customer_lifetime_value(model, x, t_x, T, spend, horizon=52, discount_rate=0.0)
        np.testing.assert_allclose(clv, spend * model.expected_purchases(52, x, t_x, T), rtol=1e-10)


def test_it_equals_the_period_by_period_sum(bgnbd, gamma_gamma, cdnow):
    x, t_x, T, m = cdnow["frequency"], cdnow["recency"], cdnow["T"], cdnow["monetary_value"]
    spend = gamma_gamma.expected_average_spend(x, m)
    # Twelve 4-week periods at 1% per period, 30% margin.
    expected = np.zeros(x.size)
    for k in range(1, 13):
        bought = bgnbd.expected_purchases(4.0 * k, x, t_x, T) - bgnbd.expected_purchases(4.0 * (k - 1), x, t_x, T)
        expected += 0.3 * spend * bought / 1.01**k
    clv = customer_lifetime_value(bgnbd, x, t_x, T, spend, horizon=48, discount_rate=0.01, margin=0.3, step=4)
    np.testing.assert_allclose(clv, expected, rtol=1e-10)


def test_discounting_lowers_the_value_and_margin_scales_it(bgnbd, cdnow):
    x, t_x, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    plain = customer_lifetime_value(bgnbd, x, t_x, T, 10.0, horizon=52, discount_rate=0.0, step=4)
    discounted = customer_lifetime_value(bgnbd, x, t_x, T, 10.0, horizon=52, discount_rate=0.02, step=4)
    assert np.all(discounted < plain)
    half = customer_lifetime_value(bgnbd, x, t_x, T, 10.0, horizon=52, discount_rate=0.02, step=4, margin=0.5)
    np.testing.assert_allclose(half, discounted / 2, rtol=1e-14)


def test_any_model_with_expected_purchases_works(bgnbd, cdnow):
    class Wrapped:
        def expected_purchases(self, t, frequency, recency, T):
            return bgnbd.expected_purchases(t, frequency, recency, T)

    x, t_x, T = cdnow["frequency"][:100], cdnow["recency"][:100], cdnow["T"][:100]
    ours = customer_lifetime_value(bgnbd, x, t_x, T, 20.0, horizon=26, discount_rate=0.01, step=2)
    theirs = customer_lifetime_value(Wrapped(), x, t_x, T, 20.0, horizon=26, discount_rate=0.01, step=2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)


def test_one_customer_gives_a_scalar_shaped_result(bgnbd):
    clv = customer_lifetime_value(bgnbd, 2, 30.43, 38.86, 25.0, horizon=39, discount_rate=0.0)
    assert float(clv) == pytest.approx(25.0 * bgnbd.expected_purchases(39, 2, 30.43, 38.86), rel=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 10, "discount_rate": 0.0, "step": 3}, "whole number of steps"),
        ({"horizon": 0, "discount_rate": 0.0}, "horizon must be > 0"),
        ({"horizon": 10, "discount_rate": 0.0, "step": -1}, "step must be > 0"),
        ({"horizon": 10, "discount_rate": -1.5}, "discount_rate must be > -1"),
    ],
)
def test_bad_arguments(bgnbd, kwargs, message):
    with pytest.raises(ValueError, match=message):
        customer_lifetime_value(bgnbd, [1, 2], [1.0, 2.0], [3.0, 4.0], [10.0, 10.0], **kwargs)


def test_spend_must_match_the_customers(bgnbd):
    with pytest.raises(ValueError, match="one value per customer"):
        customer_lifetime_value(bgnbd, [1, 2], [1.0, 2.0], [3.0, 4.0], [10.0, 10.0, 1.0], horizon=4, discount_rate=0)
