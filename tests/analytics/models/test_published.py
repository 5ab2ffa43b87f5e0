"""The models against published figures for the CDNOW sample (39-week calibration period, weeks).

Parameters and log-likelihoods: Fader, Hardie & Lee (2005), "Counting your customers the easy
way", Marketing Science 24(2) (BG/NBD and, for comparison, Pareto/NBD), and Fader, Hardie & Lee
(2005), "RFM and CLV", JMR 42(4) (Gamma-Gamma). Expected purchases: Hardie's BG/NBD spreadsheet
(brucehardie.com note 004), as quoted in lifetimes' test suite.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.analytics.models.helpers import sig3_equal


def test_summary_matches_published_data(cdnow):
    assert cdnow["id"].size == 2357
    # The first customer's row as printed in the BG/NBD spreadsheet: x = 2, t_x = 30.43, T = 38.86.
    assert cdnow["frequency"][0] == 2
    assert cdnow["recency"][0] == pytest.approx(30.43, abs=0.005)
    assert cdnow["T"][0] == pytest.approx(38.86, abs=0.005)
    # Everyone made a first purchase in the first quarter of 1997 (T between 27 and 39 weeks).
    assert cdnow["T"].min() >= 26.9 and cdnow["T"].max() <= 39


@pytest.mark.parametrize(("name", "published"), [("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)])
def test_bgnbd_parameters(bgnbd, name, published):
    assert sig3_equal(bgnbd.params_[name], published), (name, bgnbd.params_[name], published)


def test_bgnbd_log_likelihood(bgnbd):
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert bgnbd.converged_


@pytest.mark.parametrize(("name", "published"), [("r", 0.553), ("alpha", 10.578), ("s", 0.606), ("beta", 11.669)])
def test_pareto_nbd_parameters(pareto, name, published):
    assert sig3_equal(pareto.params_[name], published), (name, pareto.params_[name], published)


def test_pareto_nbd_log_likelihood(pareto):
    assert pareto.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)


@pytest.mark.parametrize(("name", "published"), [("p", 6.25), ("q", 3.74), ("gamma", 15.44)])
def test_gamma_gamma_parameters(gamma_gamma, name, published):
    assert sig3_equal(gamma_gamma.params_[name], published), (name, gamma_gamma.params_[name], published)


def test_gamma_gamma_uses_repeat_buyers_only(gamma_gamma, cdnow):
    assert gamma_gamma.n_customers_ == (cdnow["frequency"] > 0).sum()


@pytest.mark.parametrize(
    ("weeks", "published"), [(1.0, 0.0532), (3.0, 0.1506), (31.8571, 1.0405), (32.0, 1.0437), (78.0, 1.8576)]
)
def test_bgnbd_expected_purchases_of_a_new_customer(bgnbd, weeks, published):
    assert sig3_equal(bgnbd.expected_purchases_new(weeks), published)


def test_bgnbd_conditional_expectation_worked_example(bgnbd):
    # Customer 1 (x = 2, t_x = 30.43, T = 38.86): 1.226 purchases expected in the next 39 weeks.
    assert sig3_equal(bgnbd.expected_purchases(39, 2, 30.43, 38.86), 1.226)


def test_bgnbd_tracking_curve_is_vectorised(bgnbd):
    weeks = np.arange(0.0, 79.0)
    curve = bgnbd.expected_purchases_new(weeks)
    assert curve.shape == weeks.shape
    assert curve[0] == 0
    assert np.all(np.diff(curve) > 0)
    assert curve[78] == pytest.approx(bgnbd.expected_purchases_new(78.0), rel=1e-14)
