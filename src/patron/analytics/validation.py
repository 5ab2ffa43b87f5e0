"""Holdout validation of the purchase models: predicted against actual repeat purchases.

The data up to as_of is split at calibration_end = as_of - holdout_days. Models fitted
on the calibration period predict, for every customer who had bought by then, the
repeat purchases (purchase days) of the holdout period; the report compares them with
what happened:

- by the number of calibration repeat purchases (0, 1, ..., 6, 7+): customers, mean
  actual and mean predicted holdout purchases per group, and the totals (the actual
  total is the customers' holdout purchase days);
- per customer: RMSE and MAE of the prediction. RMSE is the metric `--model auto`
  minimises;
- over time, the classic tracking plot (Fader, Hardie & Lee 2005, fig. 3): expected
  repeat purchases on day d are sum_s n_s * (E[X(d - s)] - E[X(d - s - 1)]), where n_s
  customers made their first purchase on day s and E[X(t)] is the model's expected
  repeat purchases of a new customer in (0, t]. Every cohort counts, including those
  first buying in the holdout; the series are summed per week from the first purchase
  day. The tracking error is the relative error of the cumulative count at as_of.
"""

from __future__ import annotations

import io
import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

GROUPS = 7  # 0..6 repeat purchases, then 7+
MIN_HOLDOUT_DAYS = 28
MIN_CALIBRATION_DAYS = 56


def choose_holdout(first_day: date | None, as_of: date, holdout_days: int | None) -> tuple[int | None, str | None]:
    """The holdout length in days, or None and the reason there is no holdout check.

    Default: the last third of the days from the first purchase to as_of, in whole weeks,
    at least MIN_HOLDOUT_DAYS, leaving at least MIN_CALIBRATION_DAYS of calibration.
    """
    if holdout_days == 0:
        return None, "holdout validation skipped (holdout of 0 days requested)"
    if first_day is None:
        return None, "no holdout validation: there are no purchases"
    span = (as_of - first_day).days
    if holdout_days is not None:
        if holdout_days >= span:
            return None, (
                f"no holdout validation: a {holdout_days}-day holdout leaves no calibration period "
                f"(purchases span {span} days up to {as_of})"
            )
        return holdout_days, None
    if span < MIN_HOLDOUT_DAYS + MIN_CALIBRATION_DAYS:
        return None, (
            f"no holdout validation: purchases span {span} days; at least "
            f"{MIN_HOLDOUT_DAYS + MIN_CALIBRATION_DAYS} are needed for a {MIN_HOLDOUT_DAYS}-day holdout"
        )
    return max(MIN_HOLDOUT_DAYS, (span // 3) // 7 * 7), None


def by_frequency(frequency: np.ndarray, actual: np.ndarray, predicted: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Customers, mean actual and mean predicted holdout purchases per calibration repeat count (0..6, 7+)."""
    group = np.minimum(frequency.astype(np.int64), GROUPS)
    counts = np.bincount(group, minlength=GROUPS + 1)
    sums = np.bincount(group, weights=actual, minlength=GROUPS + 1)
    predicted_sums = {name: np.bincount(group, weights=p, minlength=GROUPS + 1) for name, p in predicted.items()}
    rows = []
    for g in range(GROUPS + 1):
        n = int(counts[g])
        rows.append(
            {
                "frequency": str(g) if g < GROUPS else f"{GROUPS}+",
                "customers": n,
                "actual_total": float(sums[g]),
                "actual_mean": float(sums[g] / n) if n else None,
                "predicted_total": {name: float(s[g]) for name, s in predicted_sums.items()},
                "predicted_mean": {name: (float(s[g] / n) if n else None) for name, s in predicted_sums.items()},
            }
        )
    return rows


def tracking(
    daily: pl.DataFrame, expected_new: dict[str, np.ndarray], *, start: date, calibration_end: date
) -> dict[str, Any]:
    """Weekly and cumulative actual vs expected repeat purchases from the first purchase day.

    daily: daily_transactions(unit="days") from start, one row per day; expected_new[model]:
    E[X(t)] for t = 0, 1, ..., len(daily) - 1 days.
    """
    n_days = daily.height
    first = daily["first_purchases"].to_numpy().astype(float)
    actual = daily["repeat_purchases"].to_numpy().astype(float)
    week = np.arange(n_days) // 7
    weeks = int(week[-1]) + 1 if n_days else 0
    out: dict[str, Any] = {
        "week_start": [(start + timedelta(days=7 * w)).isoformat() for w in range(weeks)],
        "calibration_weeks": min(weeks, math.ceil(((calibration_end - start).days + 1) / 7)),
        "actual": np.bincount(week, weights=actual, minlength=weeks).tolist(),
        "expected": {},
    }
    holdout = np.arange(n_days) > (calibration_end - start).days
    out["holdout_actual"] = float(actual[holdout].sum())
    out["holdout_expected"] = {}
    for name, curve in expected_new.items():
        cumulative = _convolve(first, curve)[:n_days]
        per_day = np.diff(cumulative, prepend=0.0)
        out["expected"][name] = np.bincount(week, weights=per_day, minlength=weeks).tolist()
        out["holdout_expected"][name] = float(per_day[holdout].sum())
    return out


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size * b.size <= 4_000_000:
        return np.convolve(a, b)
    from scipy.signal import fftconvolve

    return fftconvolve(a, b)


def metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Per-customer RMSE and MAE, and the totals with their relative error."""
    error = predicted - actual
    total_actual = float(actual.sum())
    total_predicted = float(predicted.sum())
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "total_actual": total_actual,
        "total_predicted": total_predicted,
        "total_error": (total_predicted - total_actual) / total_actual if total_actual else None,
    }


LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD"}
COLOURS = {"bgnbd": "tab:blue", "pareto": "tab:orange"}


def tracking_png(report: dict[str, Any]) -> bytes:
    """The validation report as a PNG: weekly and cumulative tracking, and the by-frequency comparison."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    track = report["tracking"]
    weeks = np.arange(len(track["actual"]))
    cut = track["calibration_weeks"] - 0.5
    # Fixed margins: the constrained layout engine measured every label first, ~40% of the
    # plot's time (0.3 s of a run).
    fig = Figure(figsize=(10, 10), dpi=90)
    ax_week, ax_cum, ax_freq = fig.subplots(3, 1)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.06, top=0.96, hspace=0.42)
    ax_week.plot(weeks, track["actual"], color="black", label="actual")
    ax_cum.plot(weeks, np.cumsum(track["actual"]), color="black", label="actual")
    for name, series in track["expected"].items():
        ax_week.plot(weeks, series, color=COLOURS.get(name), linestyle="--", label=LABELS.get(name, name))
        ax_cum.plot(weeks, np.cumsum(series), color=COLOURS.get(name), linestyle="--", label=LABELS.get(name, name))
    for ax, title in ((ax_week, "Repeat purchases per week"), (ax_cum, "Cumulative repeat purchases")):
        ax.axvline(cut, color="grey", linestyle=":", label=f"calibration end {report['calibration_end']}")
        ax.set_title(title)
        ax.set_xlabel(f"week since {track['week_start'][0] if track['week_start'] else ''}")
        ax.legend(loc="best", fontsize="small")
    rows = report["by_frequency"]
    x = np.arange(len(rows))
    models = list(track["expected"])
    width = 0.8 / (len(models) + 1)
    ax_freq.bar(x, [r["actual_mean"] or 0.0 for r in rows], width, color="black", label="actual")
    for i, name in enumerate(models):
        ax_freq.bar(
            x + (i + 1) * width,
            [r["predicted_mean"][name] or 0.0 for r in rows],
            width,
            color=COLOURS.get(name),
            label=LABELS.get(name, name),
        )
    ax_freq.set_xticks(x + width * len(models) / 2, [r["frequency"] for r in rows])
    ax_freq.set_title(f"Mean repeat purchases in the {report['holdout_days']}-day holdout")
    ax_freq.set_xlabel("repeat purchases in calibration")
    ax_freq.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
