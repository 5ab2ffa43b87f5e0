"""Customer-base models: patron.analytics.models against lifetimes 0.11.3 on the same 1M customers.

    uv run --with lifetimes==0.11.3 python benchmarks/bench_models.py            # 1,000,000 customers
    uv run --with lifetimes==0.11.3 python benchmarks/bench_models.py --customers 200000
    uv run python benchmarks/bench_models.py                                     # ours only (no lifetimes)

Generates per-customer summaries from a BG/NBD process (vectorised numpy, fixed seed): first
purchases spread over two years, time in days, purchase days rounded up to whole days as a
summary built from dated orders would have them; spend per transaction from the Gamma-Gamma
model. Then, in the same run and on the same arrays, times (a) patron's BGNBD + GammaGamma fit
and scoring, and (b) lifetimes' BetaGeoFitter + GammaGammaFitter fit and the same scoring:
expected purchases in the next 30, 90 and 365 days, P(alive), expected spend per transaction and
a 12-month CLV (30-day steps, 1% per month). Prints both times, their ratio, and the largest
relative difference between the two sets of parameters and scores, and the gradient of the
likelihood at both end points. Pareto/NBD is timed separately: ours on all customers, and both on the
first --pareto-customers of them, because lifetimes' ParetoNBDFitter (Nelder-Mead without gradients,
tolerance 1e-4 on a random start) is much slower.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from machine_info import machine  # benchmarks/ is on sys.path when a script runs

from patron.analytics.models import BGNBD, GammaGamma, ParetoNBD, customer_lifetime_value

TRUE_BGNBD = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}  # CDNOW-like, in days
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
HORIZONS = (30.0, 90.0, 365.0)
CLV_MONTHS, CLV_STEP, CLV_DISCOUNT = 12, 30.0, 0.01


def simulate(customers: int, seed: int = 2024) -> dict[str, np.ndarray]:
    """Frequency, recency, T (days) and average repeat spend of customers from BG/NBD and Gamma-Gamma."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = TRUE_BGNBD.values()
    age = rng.integers(0, 730, size=customers).astype(float)
    lam = rng.gamma(r, 1.0 / alpha, size=customers)
    p = rng.beta(a, b, size=customers)
    # Repeat purchases until death: the customer dies right after his J-th repeat purchase,
    # J ~ Geometric(p); without death he would make N ~ Poisson(lambda T) in (0, T].
    deaths_after = rng.geometric(p)
    possible = rng.poisson(lam * age)
    x = np.minimum(possible, deaths_after)
    # The x-th of N uniform purchase times in (0, T) is T * Beta(x, N - x + 1).
    t_x = np.where(x > 0, age * rng.beta(np.maximum(x, 1), possible - x + 1), 0.0)
    t_x = np.minimum(np.ceil(t_x), age)  # day of the last purchase; never day 0 for a repeat purchase
    gp, gq, gg = TRUE_GG.values()
    nu = rng.gamma(gq, 1.0 / gg, size=customers)
    # The mean of x Gamma(p, nu) values is Gamma(p x, nu x).
    spend = np.where(x > 0, rng.gamma(gp * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1))), 0.0)
    return {"frequency": x.astype(float), "recency": t_x, "T": age, "monetary_value": np.round(spend, 2)}


def run_patron(data: dict[str, np.ndarray]) -> tuple[float, dict, dict]:
    """Fit and score with patron.analytics.models; returns seconds, parameters, scores."""
    x, t_x, age, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
    t0 = time.perf_counter()
    bgnbd = BGNBD().fit(x, t_x, age)
    gamma_gamma = GammaGamma().fit(x, m)
    t_fit = time.perf_counter()
    scores = {f"E[{h:g}]": bgnbd.expected_purchases(h, x, t_x, age) for h in HORIZONS}
    scores["P(alive)"] = bgnbd.probability_alive(x, t_x, age)
    scores["spend"] = gamma_gamma.expected_average_spend(x, m)
    scores["CLV"] = customer_lifetime_value(
        bgnbd, x, t_x, age, scores["spend"], horizon=CLV_MONTHS * CLV_STEP, discount_rate=CLV_DISCOUNT, step=CLV_STEP
    )
    t_end = time.perf_counter()
    params = {**bgnbd.params_, **{f"gg_{k}": v for k, v in gamma_gamma.params_.items()}}
    print(f"patron:    fit {t_fit - t0:6.2f} s, scoring {t_end - t_fit:6.2f} s, total {t_end - t0:6.2f} s")
    return t_end - t0, params, scores


def run_lifetimes(data: dict[str, np.ndarray]) -> tuple[float, dict, dict] | None:
    """The same with lifetimes 0.11.3, or None when it is not installed."""
    try:
        import pandas as pd
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except ImportError as exc:
        print(f"lifetimes is not importable ({exc}); run with: uv run --with lifetimes==0.11.3 python {__file__}")
        return None
    # No shims needed for lifetimes 0.11.3 with numpy 2.4 / pandas 3 / scipy 1.17 for these calls
    # (only lifetimes.datasets breaks, on the removed pkg_resources, and it is not used here).
    warnings.filterwarnings("ignore", module="lifetimes")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    x = pd.Series(data["frequency"])
    t_x = pd.Series(data["recency"])
    age = pd.Series(data["T"])
    m = pd.Series(data["monetary_value"])
    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(x, t_x, age)
    repeat = x > 0
    ggf = GammaGammaFitter().fit(x[repeat], m[repeat])
    t_fit = time.perf_counter()
    scores = {f"E[{h:g}]": bgf.conditional_expected_number_of_purchases_up_to_time(h, x, t_x, age) for h in HORIZONS}
    scores["P(alive)"] = bgf.conditional_probability_alive(x, t_x, age)
    scores["spend"] = ggf.conditional_expected_average_profit(x, m)
    scores["CLV"] = ggf.customer_lifetime_value(
        bgf, x, t_x, age, m, time=CLV_MONTHS, discount_rate=CLV_DISCOUNT, freq="D"
    )
    t_end = time.perf_counter()
    params = {**dict(bgf.params_), **{f"gg_{k}": v for k, v in dict(ggf.params_).items()}}
    params["gg_gamma"] = params.pop("gg_v")
    print(f"lifetimes: fit {t_fit - t0:6.2f} s, scoring {t_end - t_fit:6.2f} s, total {t_end - t0:6.2f} s")
    return t_end - t0, params, {k: np.asarray(v, dtype=float) for k, v in scores.items()}


def compare_pareto(data: dict[str, np.ndarray], customers: int) -> None:
    """Pareto/NBD fit of the first `customers` customers, ours against lifetimes' ParetoNBDFitter."""
    import pandas as pd
    from lifetimes import ParetoNBDFitter

    x, t_x, age = (data[k][:customers] for k in ("frequency", "recency", "T"))
    t0 = time.perf_counter()
    ours = ParetoNBD().fit(x, t_x, age)
    t_ours = time.perf_counter() - t0
    np.random.seed(0)  # lifetimes starts Nelder-Mead from a random point
    t0 = time.perf_counter()
    theirs = ParetoNBDFitter().fit(pd.Series(x), pd.Series(t_x), pd.Series(age))
    t_theirs = time.perf_counter() - t0
    diff = max(abs(ours.params_[k] - theirs.params_[k]) / abs(theirs.params_[k]) for k in ours.params_)
    print(
        f"Pareto/NBD fit of {customers:,} customers: patron {t_ours:.2f} s, lifetimes {t_theirs:.2f} s "
        f"({t_theirs / t_ours:.0f}x); max relative parameter difference {diff:.1e}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--pareto-customers", type=int, default=20_000)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    t0 = time.perf_counter()
    data = simulate(args.customers, args.seed)
    x = data["frequency"]
    distinct = np.unique(np.stack([x, data["recency"], data["T"]]), axis=1).shape[1]
    print(
        f"Data: {args.customers:,} customers ({int((x > 0).sum()):,} repeat buyers, {distinct:,} distinct "
        f"(x, t_x, T) rows), simulated in {time.perf_counter() - t0:.1f} s"
    )
    ours_seconds, ours_params, ours_scores = run_patron(data)
    t0 = time.perf_counter()
    pareto = ParetoNBD().fit(data["frequency"], data["recency"], data["T"])
    pareto_fit = time.perf_counter() - t0
    pareto.probability_alive(data["frequency"], data["recency"], data["T"])
    print(
        f"patron ParetoNBD (not in the comparison): fit {pareto_fit:.2f} s, P(alive) "
        f"{time.perf_counter() - t0 - pareto_fit:.2f} s; params "
        + ", ".join(f"{k}={v:.4g}" for k, v in pareto.params_.items())
    )
    print("true:      " + ", ".join(f"{k}={v:g}" for k, v in {**TRUE_BGNBD, **TRUE_GG}.items()))
    print("patron:    " + ", ".join(f"{k}={v:.6g}" for k, v in ours_params.items()))
    peer = run_lifetimes(data)
    if peer is None:
        return 0
    peer_seconds, peer_params, peer_scores = peer
    print("lifetimes: " + ", ".join(f"{k}={v:.6g}" for k, v in peer_params.items()))
    param_diff = max(abs(ours_params[k] - peer_params[k]) / abs(peer_params[k]) for k in ours_params)
    # How close each end point is to the maximum: the gradient of the mean log-likelihood with
    # respect to the log-parameters, from the same code for both.
    summaries = (data["frequency"], data["recency"], data["T"])
    bg_names = ("r", "alpha", "a", "b")
    for who, params in (("patron's", ours_params), ("lifetimes'", peer_params)):
        theta = np.array([params[k] for k in bg_names])
        gradient = BGNBD()._negative_log_likelihood(theta, *summaries)[1] * theta
        print(f"BG/NBD gradient (mean log-likelihood, log-parameters) at {who} end point: {np.abs(gradient).max():.1e}")
    print()
    print(f"{'':<12}{'patron s':>10}{'lifetimes s':>13}{'ratio':>8}")
    print(f"{'fit+score':<12}{ours_seconds:>10.2f}{peer_seconds:>13.2f}{peer_seconds / ours_seconds:>7.1f}x")
    print(f"max relative parameter difference: {param_diff:.2e}")
    for name, ours in ours_scores.items():
        theirs = peer_scores[name]
        ok = np.isfinite(theirs)
        rel = np.abs(ours[ok] - theirs[ok]) / np.maximum(np.abs(theirs[ok]), 1e-12)
        print(f"  {name:<10} max relative difference {rel.max():.2e}; lifetimes non-finite: {int((~ok).sum()):,}")
    compare_pareto(data, args.pareto_customers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
