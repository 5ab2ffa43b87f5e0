"""`patron analyze`: per-customer RFM, purchase and spend models, CLV, validation and write-back.

One run reads the operational data through DuckDB (`customer_summaries`,
`daily_transactions`, `purchase_insights`; the insights query goes on while the models
are fitted and the scores written), fits the models of
`patron.analytics.models` in days (frequency = repeat purchase days, recency and T in
days; the parameters' time unit is the day, so alpha and beta are 7 times their weekly
values and r, a, b, s are unit-free), and writes every customer's scores for the run
plus the latest purchase-history insights in bulk, all in the caller's transaction.

What each figure means:

- expected_30/90/365: expected purchase days in the next 30/90/365 days;
- p_alive: the model's probability that the customer is still active (under BG/NBD a
  customer without repeat purchases is alive by assumption, see churn band);
- churn band, from P(alive): low >= 0.7 > medium >= 0.4 > high >= 0.1 > lost. Under
  BG/NBD, customers without repeat purchases have P(alive) = 1 by construction (they
  can only drop out right after a purchase), so their band comes instead from their
  expected purchases in the next 365 days relative to a brand-new customer's, with the
  same thresholds: a one-time buyer who has been silent for long is "lost";
- expected_spend: Gamma-Gamma expected spend per purchase day (population mean for
  customers without repeat purchases; 0 when their repeat purchases net to zero or
  less after returns, and such customers are left out of the Gamma-Gamma fit);
- clv: margin * expected spend * expected purchases, discounted: the horizon is cut
  into about 30-day steps (horizon / round(horizon / 30)) and step k is discounted by
  (1 + annual rate)^(k * step / 365).

`--model auto` fits both purchase models on the calibration period, keeps the one with
the lower per-customer RMSE of holdout purchases and refits it on all data up to as_of;
without a holdout check it keeps the one with the higher log-likelihood (both have four
parameters).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import polars as pl
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from patron import events
from patron.analytics import repository, validation
from patron.analytics.models import BGNBD, GammaGamma, ParetoNBD, customer_lifetime_value
from patron.analytics.reader import RunInputs, read_inputs
from patron.analytics.rfm import rfm_scores
from patron.errors import InvalidInput, NotFound, PatronError
from patron.models import AnalysisRun, CustomerScore
from patron.models.enums import AnalysisStatus, ChurnBand
from patron.pagination import Page, paginate

ModelChoice = Literal["auto", "bgnbd", "pareto"]
MODEL_CHOICES: tuple[str, ...] = ("auto", "bgnbd", "pareto")
MODEL_CLASSES = {"bgnbd": BGNBD, "pareto": ParetoNBD}
HORIZONS = (30, 90, 365)
# (lowest P(alive) of the band, band), best first.
CHURN_THRESHOLDS = ((0.7, ChurnBand.low), (0.4, ChurnBand.medium), (0.1, ChurnBand.high), (0.0, ChurnBand.lost))
MAX_HORIZON_DAYS = 3650
CLV_STEP_DAYS = 30
# NUMERIC(12, 2) holds less than 10^10.
_MONEY_LIMIT = 1e10
Progress = Callable[[str], None]
_NO_PREDICTIONS = "RFM scores are stored, without predictions."


class _Failed(Exception):
    """A model step that could not produce results; its message goes into the run's message."""


def check_options(
    *,
    as_of: date | None,
    model: str,
    horizon_days: int,
    discount_rate: float,
    margin: float | None,
    holdout_days: int | None,
    today: date | None = None,
) -> date:
    """Refuse options that make no sense; returns as_of (today, UTC, when not given)."""
    today = today or datetime.now(UTC).date()
    as_of = today if as_of is None else as_of
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise InvalidInput("as_of must be a date", detail={"field": "as_of"})
    if as_of > today:
        raise InvalidInput(
            f"as_of {as_of} is in the future (today is {today}); scores describe what has happened",
            detail={"field": "as_of"},
        )
    if model not in MODEL_CHOICES:
        raise InvalidInput(f"model must be one of {', '.join(MODEL_CHOICES)}, not {model!r}", detail={"field": "model"})
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise InvalidInput(
            f"horizon_days must be a whole number of days from 1 to {MAX_HORIZON_DAYS}, not {horizon_days!r}",
            detail={"field": "horizon_days"},
        )
    if not (isinstance(discount_rate, int | float) and math.isfinite(discount_rate) and 0 <= discount_rate <= 1):
        raise InvalidInput(
            f"discount_rate is an annual rate from 0 to 1 (0.10 = 10%), not {discount_rate!r}",
            detail={"field": "discount_rate"},
        )
    if margin is not None and not (isinstance(margin, int | float) and math.isfinite(margin) and 0 < margin <= 1):
        raise InvalidInput(
            f"margin is the share of revenue kept as profit, above 0 and at most 1, not {margin!r}",
            detail={"field": "margin"},
        )
    if holdout_days is not None and (
        isinstance(holdout_days, bool) or not isinstance(holdout_days, int) or holdout_days < 0
    ):
        raise InvalidInput(
            f"holdout_days must be a whole number of days >= 0 (0 skips validation), not {holdout_days!r}",
            detail={"field": "holdout_days"},
        )
    return as_of


def analyze(
    session: Session,
    *,
    as_of: date | None = None,
    model: ModelChoice = "auto",
    horizon_days: int = 365,
    discount_rate: float = 0.10,
    margin: float | None = 1.0,
    holdout_days: int | None = None,
    actor: str = "",
    progress: Progress | None = None,
) -> AnalysisRun:
    """Score every customer as of `as_of` and store the run; margin=None takes it from products' unit costs.

    Takes the session (the caller owns the transaction: every write of the run commits
    or rolls back together) and reads the committed operational data through DuckDB on
    the session's database before writing anything (on SQLite in a child process; see
    patron.analytics.reader).
    """
    as_of = check_options(
        as_of=as_of,
        model=model,
        horizon_days=horizon_days,
        discount_rate=discount_rate,
        margin=margin,
        holdout_days=holdout_days,
    )
    started = time.perf_counter()
    run = AnalysisRun(
        as_of=as_of,
        status=AnalysisStatus.running,
        requested_model=model,
        settings={
            "time_unit": "days",
            "horizon_days": horizon_days,
            "discount_rate": discount_rate,
            "margin": margin,
            "holdout_days": holdout_days,
        },
        fits={},
        validation={},
        timings={},
        actor=actor[:200],
    )
    session.add(run)
    session.flush()
    job = _Analysis(session, run, progress or (lambda step: None))
    job.execute(model=model, horizon_days=horizon_days, discount_rate=discount_rate, margin=margin,
                holdout_days=holdout_days)  # fmt: skip
    run.timings = {**job.timings, "total": round(time.perf_counter() - started, 3)}
    run.finished_at = datetime.now(UTC)
    session.flush()
    if run.status == AnalysisStatus.completed:
        events.publish(session, events.AnalysisCompleted(run_id=run.id, customers=run.customers, actor=actor[:200]))
    return run


class _Analysis:
    """The steps of one run; each records its time and any note for the run's message."""

    def __init__(self, session: Session, run: AnalysisRun, progress: Progress):
        self.session = session
        self.run = run
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self._clock = time.perf_counter()

    def _step(self, name: str) -> None:
        self.progress(name)
        self._clock = time.perf_counter()

    def _done(self, name: str) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - self._clock, 3)

    def execute(self, *, model, horizon_days, discount_rate, margin, holdout_days) -> None:
        clock = time.perf_counter()
        inputs = read_inputs(
            self.session.get_bind().engine,
            as_of=self.run.as_of,
            holdout_days=holdout_days,
            cost_margin=margin is None,
            progress=self.progress,
        )
        self.timings.update(inputs.timings)
        self.timings["read"] = round(time.perf_counter() - clock, 3)
        # The purchase insights are still being read: they are waited for at the write.
        with inputs:
            self._analyse(inputs, model=model, horizon_days=horizon_days, discount_rate=discount_rate,
                          margin=margin)  # fmt: skip

    def _analyse(self, inputs: RunInputs, *, model, horizon_days, discount_rate, margin) -> None:
        run, as_of = self.run, self.run.as_of
        summaries = inputs.summaries
        if margin is None:
            margin = inputs.cost_margin
            if margin is None or not 0 < margin <= 1:
                self.notes.append("No usable unit costs on the products sold in the last year: margin 1 is used.")
                margin = 1.0
            run.settings = {**run.settings, "margin": round(margin, 6), "margin_from": "unit costs"}
        run.customers = summaries.height
        buyers = summaries.filter(pl.col("first_purchase").is_not_null())
        run.buyers = buyers.height
        if inputs.orders_after:
            self.notes.append(f"{inputs.orders_after:,} order(s) placed after {as_of} were left out.")
        if summaries.height == 0:
            run.status = AnalysisStatus.completed
            run.message = "\n".join(["There are no customers: nothing to analyse.", *self.notes])
            return
        self._describe_input(buyers)
        # The insights and the scores share the run's connection (one transaction) and each is
        # written as soon as it is ready, whichever comes first: the insights by a thread,
        # the scores here.
        connection = self.session.connection()
        turns = _WriteTurns()
        latest = repository.latest_insights_as_of(self.session)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="patron-analytics-insights-write") as pool:
            if latest is not None and latest > as_of:
                # Insights are the latest picture of each customer: an analysis of an earlier day
                # (a backtest) leaves them alone.
                self.notes.append(f"Purchase-history insights were kept: they are as of {latest}, after {as_of}.")
                insights_written = None
            else:
                insights_written = pool.submit(_write_insights, connection, turns, inputs, as_of)
            try:
                scores, predicted = self._scores(inputs, summaries, buyers, model=model, horizon_days=horizon_days,
                                                 discount_rate=discount_rate, margin=margin)  # fmt: skip
                del summaries, buyers

                def write_scores() -> None:
                    self._step("write")
                    repository.insert_scores(connection, scores)
                    self._done("write")

                turns.write(write_scores)
            except BaseException:
                inputs.close()  # so that a writer still waiting for the insights stops now
                raise
            if insights_written is not None:
                self.timings.update(insights_written.result())
        complete = predicted and "error" not in run.fits.get("gamma_gamma", {})
        run.status = AnalysisStatus.completed if complete else AnalysisStatus.partial
        run.message = "\n".join(self.notes) or None

    def _scores(self, inputs: RunInputs, summaries, buyers, *, model, horizon_days, discount_rate, margin):
        """Every customer's score row (RFM, and predictions when the models allow), and whether predicted."""
        run, as_of = self.run, self.run.as_of
        self._step("rfm")
        rfm = rfm_scores(summaries, as_of=as_of)
        self._done("rfm")
        predictions: pl.DataFrame | None = None
        if buyers.height == 0:
            self.notes.insert(0, f"No customer has bought anything up to {as_of}: no RFM scores or predictions.")
        else:
            chosen = self._validate(inputs, model=model)
            try:
                predictions = self._predict(
                    buyers, model=model, chosen=chosen, horizon_days=horizon_days,
                    discount_rate=discount_rate, margin=margin,
                )  # fmt: skip
            except _Failed as exc:
                self.notes.insert(0, str(exc))
        self._step("write")
        scores = _score_frame(run, summaries, rfm, predictions)
        # Free what the write does not need: at a million customers memory peaks here.
        inputs.summaries = inputs.calibration = inputs.daily = None
        del rfm
        self._guard_money(scores)
        self._done("write")
        return scores, predictions is not None

    # ------------------------------------------------------------------ input checks

    def _describe_input(self, buyers: pl.DataFrame) -> None:
        if buyers.height == 0:
            return
        stats = buyers.select(
            same_day=(pl.col("n_orders") - pl.col("frequency") - 1).sum(),
            not_positive=(pl.col("revenue") <= 0).sum(),
            repeat=(pl.col("frequency") > 0).sum(),
            repeat_not_positive=((pl.col("frequency") > 0) & (pl.col("monetary_value") <= 0)).sum(),
        ).row(0, named=True)
        if stats["same_day"]:
            self.notes.append(
                f"{stats['same_day']:,} order(s) fell on a day their customer had already bought on; "
                "the models count purchase days, so they were merged into that day."
            )
        if stats["not_positive"]:
            self.notes.append(
                f"{stats['not_positive']:,} customer(s) have zero or negative net revenue (returns, free orders)."
            )
        if stats["repeat_not_positive"]:
            self.notes.append(
                f"{stats['repeat_not_positive']:,} repeat buyer(s) whose repeat purchases net to zero or less "
                "were left out of the spend model and get an expected spend of 0."
            )

    # ------------------------------------------------------------------ validation

    def _validate(self, inputs: RunInputs, *, model: str) -> str | None:
        """The holdout check; returns the model `auto` should use, or None to decide on all data."""
        run = self.run
        self._step("validation")
        if inputs.holdout_days is None:
            reason = inputs.holdout_note or "no holdout validation"
            run.validation = {"skipped": reason}
            self.notes.append(reason[0].upper() + reason[1:] + ".")
            self._done("validation")
            return None
        days, calibration_end, calibration = inputs.holdout_days, inputs.calibration_end, inputs.calibration
        first_day = inputs.daily["period_start"].min()
        report: dict[str, Any] = {
            "calibration_end": calibration_end.isoformat(),
            "holdout_days": days,
            "customers": calibration.height,
            "metric": "rmse",
        }
        x = calibration["frequency"].to_numpy().astype(float)
        if not (x > 0).any():
            reason = f"no holdout validation: nobody made a repeat purchase by the calibration end {calibration_end}"
            run.validation = {"skipped": reason, **report}
            self.notes.append(reason[0].upper() + reason[1:] + ".")
            self._done("validation")
            return None
        t_x = calibration["recency"].to_numpy()
        age = calibration["T"].to_numpy()
        actual = calibration["frequency_holdout"].to_numpy().astype(float)
        horizon = float(days)
        candidates = ["bgnbd", "pareto"] if model == "auto" else [model]
        fitted: dict[str, Any] = {}
        report["models"] = {}
        predicted: dict[str, np.ndarray] = {}
        for name in candidates:
            try:
                fitted[name] = _fit_purchase_model(name, x, t_x, age)
                predicted[name] = np.asarray(fitted[name].expected_purchases(horizon, x, t_x, age), dtype=float)
            except _Failed as exc:
                fitted.pop(name, None)
                report["models"][name] = {"error": str(exc)}
                continue
            report["models"][name] = {
                **_fit_json(fitted[name]),
                "metrics": validation.metrics(actual, predicted[name]),
            }
        report["by_frequency"] = validation.by_frequency(x, actual, predicted)
        report["actual_total"] = float(actual.sum())
        chosen = None
        if predicted:
            chosen = min(predicted, key=lambda n: (report["models"][n]["metrics"]["rmse"], candidates.index(n)))
            daily = inputs.daily
            span = daily.height
            curves = {}
            for name in predicted:
                try:
                    curves[name] = np.asarray(fitted[name].expected_purchases_new(np.arange(span, dtype=float)))
                except (PatronError, ValueError, ArithmeticError) as exc:
                    report["models"][name]["tracking_error"] = str(exc)
            report["tracking"] = validation.tracking(daily, curves, start=first_day, calibration_end=calibration_end)
            for name, expected in report["tracking"]["holdout_expected"].items():
                actual_track = report["tracking"]["holdout_actual"]
                report["models"][name]["metrics"]["tracking_error"] = (
                    (expected - actual_track) / actual_track if actual_track else None
                )
            report["chosen"] = chosen
            run.validation = report
            run.tracking_png = validation.tracking_png(report)
        else:
            report["chosen"] = None
            run.validation = report
            self.notes.append("No model converged on the calibration period; the holdout check has no predictions.")
        self._done("validation")
        return chosen

    # ------------------------------------------------------------------ fit and score

    def _predict(self, buyers: pl.DataFrame, *, model, chosen, horizon_days, discount_rate, margin) -> pl.DataFrame:
        run = self.run
        x = buyers["frequency"].to_numpy().astype(float)
        t_x = buyers["recency"].to_numpy()
        age = buyers["T"].to_numpy()
        m = buyers["monetary_value"].to_numpy()
        fits: dict[str, Any] = {"time_unit": "days"}
        run.fits = fits
        self._step("fit")
        if not (x > 0).any():
            self._done("fit")
            raise _Failed(
                "Nobody has made a repeat purchase yet, so the purchase models cannot be fitted: "
                "RFM scores are stored, without predictions."
            )
        fitted: dict[str, Any] = {}
        if model == "auto" and chosen is None:
            # No holdout check decides: fit both and keep the higher log-likelihood.
            order = ["bgnbd", "pareto"]
        elif model == "auto":
            order = [chosen, *(n for n in ("bgnbd", "pareto") if n != chosen)]
        else:
            order = [model]
        for name in order:
            try:
                fitted[name] = _fit_purchase_model(name, x, t_x, age)
            except _Failed as exc:
                fits[name] = {"error": str(exc)}
                continue
            fits[name] = _fit_json(fitted[name])
            if chosen is not None or model != "auto":
                break
        if not fitted:
            self._done("fit")
            errors = "; ".join(f"{n}: {fits[n]['error']}" for n in order)
            raise _Failed(f"The purchase model did not converge ({errors}): {_NO_PREDICTIONS}")
        purchase = max(fitted.values(), key=lambda f: f.log_likelihood_)
        if chosen is not None and chosen not in fitted:
            self.notes.append(f"{chosen} won the holdout check but did not converge on all data; {order[1]} is used.")
        run.model = "bgnbd" if isinstance(purchase, BGNBD) else "pareto"
        spend_model = None
        usable = (x > 0) & (m > 0)
        try:
            spend_model = GammaGamma().fit(x[usable], m[usable])
            if spend_model.params_["q"] <= 1:
                raise _Failed(f"Gamma-Gamma: q = {spend_model.params_['q']:.3g} <= 1 makes the mean spend infinite")
            fits["gamma_gamma"] = {**_fit_json(spend_model), "customers": int(usable.sum())}
        except (PatronError, ValueError, ArithmeticError, _Failed) as exc:
            fits["gamma_gamma"] = {"error": str(exc)}
            spend_model = None
            self.notes.append(f"The spend model did not converge ({exc}): no expected spend or CLV.")
        self._done("fit")

        self._step("score")
        try:
            out = self._score(purchase, spend_model, x, t_x, age, m, horizon_days, discount_rate, margin)
        except (PatronError, ValueError, ArithmeticError) as exc:
            self._done("score")
            raise _Failed(f"Scoring with the fitted model failed ({exc}): {_NO_PREDICTIONS}") from exc
        self._done("score")
        if out["clv"] is not None:
            clv = out["clv"]
            fits["clv"] = {
                "equity": float(np.sum(clv)),
                "mean": float(np.mean(clv)),
                "horizon_days": horizon_days,
                "discount_rate": discount_rate,
                "margin": margin,
            }
        run.fits = dict(fits)  # a new object, so the JSON column is seen as changed
        columns = {"customer_id": buyers["customer_id"]}
        for name, values in out.items():
            columns[name] = pl.Series(name, values, dtype=pl.String if name == "churn_band" else pl.Float64)
        return pl.DataFrame(columns)

    @staticmethod
    def _score(purchase, spend_model, x, t_x, age, m, horizon_days, discount_rate, margin) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for h in HORIZONS:
            out[f"expected_{h}"] = np.asarray(purchase.expected_purchases(float(h), x, t_x, age), dtype=float)
        p_alive = np.asarray(purchase.probability_alive(x, t_x, age), dtype=float)
        out["p_alive"] = p_alive
        activity = p_alive
        if isinstance(purchase, BGNBD):
            # One-time buyers are alive by the model's assumption; rank them by how much of a
            # new customer's expected activity they still have.
            new_365 = float(purchase.expected_purchases_new(365.0))
            ratio = out["expected_365"] / new_365 if new_365 > 0 else np.ones_like(p_alive)
            activity = np.where(x == 0, ratio, p_alive)
        out["churn_band"] = churn_band(activity)
        if spend_model is None:
            out["expected_spend"] = None
            out["clv"] = None
            return out
        has_spend = (x > 0) & (m > 0)
        spend = np.zeros_like(x)
        spend[has_spend] = spend_model.expected_average_spend(x[has_spend], m[has_spend])
        spend[x == 0] = spend_model.expected_average_spend(0.0, 0.0)
        out["expected_spend"] = spend
        periods = max(1, round(horizon_days / CLV_STEP_DAYS))
        step = horizon_days / periods
        rate = (1.0 + discount_rate) ** (step / 365.0) - 1.0
        out["clv"] = customer_lifetime_value(
            purchase, x, t_x, age, spend, horizon=float(horizon_days), discount_rate=rate, margin=margin, step=step
        )
        return out

    def _guard_money(self, scores: pl.DataFrame) -> None:
        for column in ("revenue", "average_spend", "expected_spend", "clv"):
            too_big = scores[column].abs() >= _MONEY_LIMIT
            if too_big.any():
                raise InvalidInput(
                    f"{int(too_big.sum())} customer(s) have a {column} of 10^10 or more, beyond what the scores "
                    "table stores; check the orders' totals"
                )


def churn_band(p_alive: np.ndarray) -> np.ndarray:
    """The churn band (ChurnBand values) for each P(alive): low >= 0.7 > medium >= 0.4 > high >= 0.1 > lost."""
    p = np.asarray(p_alive, dtype=float)
    bands = np.full(p.shape, ChurnBand.lost.value, dtype=object)
    for low, band in reversed(CHURN_THRESHOLDS):
        bands[p >= low] = band.value
    return bands


def _fit_purchase_model(name: str, x: np.ndarray, t_x: np.ndarray, age: np.ndarray):
    try:
        return MODEL_CLASSES[name]().fit(x, t_x, age)
    except (PatronError, ValueError, ArithmeticError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise _Failed(message) from exc


def _fit_json(fitted) -> dict[str, Any]:
    return {
        "params": dict(fitted.params_),
        "standard_errors": dict(fitted.standard_errors_),
        "log_likelihood": fitted.log_likelihood_,
        "iterations": getattr(fitted, "n_iter_", None),
    }


def _money(column: str) -> pl.Expr:
    return pl.col(column).round(2)


def _score_frame(
    run: AnalysisRun, summaries: pl.DataFrame, rfm: pl.DataFrame, predictions: pl.DataFrame | None
) -> pl.DataFrame:
    bought = pl.col("first_purchase").is_not_null()
    frame = summaries.join(rfm, on="customer_id", how="left")
    prediction_columns = [*(f"expected_{h}" for h in HORIZONS), "p_alive", "churn_band", "expected_spend", "clv"]
    if predictions is not None:
        frame = frame.join(predictions, on="customer_id", how="left")
    else:
        frame = frame.with_columns(
            [pl.lit(None, dtype=pl.String).alias("churn_band")]
            + [pl.lit(None, dtype=pl.Float64).alias(c) for c in prediction_columns if c != "churn_band"]
        )
    return frame.select(
        pl.lit(run.id, dtype=pl.Int64).alias("run_id"),
        pl.col("customer_id"),
        pl.lit(run.as_of, dtype=pl.Date).alias("as_of"),
        pl.col("n_orders").fill_null(0).alias("orders"),
        pl.col("frequency").fill_null(0),
        pl.when(bought).then(pl.col("recency")).alias("recency_days"),
        pl.when(bought).then(pl.col("T")).alias("age_days"),
        pl.col("days_since_last"),
        _money("revenue").fill_null(0.0).alias("revenue"),
        pl.when(pl.col("frequency") > 0).then(_money("monetary_value")).alias("average_spend"),
        pl.col("r_score"),
        pl.col("f_score"),
        pl.col("m_score"),
        pl.col("rfm_segment"),
        pl.col("expected_30"),
        pl.col("expected_90"),
        pl.col("expected_365"),
        pl.col("p_alive"),
        pl.col("churn_band"),
        _money("expected_spend").alias("expected_spend"),
        _money("clv").alias("clv"),
    )


class _WriteTurns:
    """Writes from two threads on the run's one connection (one transaction), one at a time.

    A failed write leaves the transaction broken (PostgreSQL refuses every statement after
    it), so a later write raises that failure, the cause, instead of running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failure: BaseException | None = None

    def write(self, action: Callable[[], None]) -> tuple[float, float]:
        """Run action in turn; returns the seconds spent waiting for the turn and in action."""
        asked = time.perf_counter()
        with self._lock:
            started = time.perf_counter()
            if self._failure is not None:
                raise self._failure
            try:
                action()
            except BaseException as exc:
                self._failure = exc
                raise
        return started - asked, time.perf_counter() - started


def _write_insights(connection: Connection, turns: _WriteTurns, inputs: RunInputs, as_of: date) -> dict[str, float]:
    """Replace the stored insights by the run's when they arrive; returns the timings."""
    clock = time.perf_counter()
    frame = _insight_frame(inputs.insights(), as_of)
    waited = time.perf_counter() - clock
    behind_scores, written = turns.write(lambda: repository.replace_insights(connection, frame))
    return {
        **inputs.timings,  # now with the insights query's own time
        "insights_wait": round(waited, 3),
        "insights_behind_scores": round(behind_scores, 3),  # waiting for the scores' write to end
        "insights_write": round(written, 3),
    }


def _insight_frame(insights: pl.DataFrame, as_of: date) -> pl.DataFrame:
    now = datetime.now(UTC)
    return insights.select(
        pl.col("customer_id"),
        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        pl.col("favourite_category").str.slice(0, 300),
        pl.col("favourite_brand").str.slice(0, 100),
        pl.col("brand_loyalty"),
        pl.col("discount_share"),
        pl.col("price_index"),
        pl.col("premium_share"),
        pl.col("preferred_channel").str.slice(0, 20),
        pl.col("has_children_signal").fill_null(False),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("updated_at"),
    )


# --------------------------------------------------------------------------- reading runs


def get_run(session: Session, run_id: int) -> AnalysisRun:
    """The analysis run with this id; 404 if unknown."""
    run = repository.get(session, run_id)
    if run is None:
        raise NotFound(f"analysis run {run_id} not found", detail={"field": "run_id"})
    return run


def list_runs(session: Session, *, limit: int = 50, cursor: str | None = None) -> Page[AnalysisRun]:
    """Analysis runs, newest first."""
    return paginate(
        session,
        repository.list_query(),
        sort_col=AnalysisRun.id,
        id_col=AnalysisRun.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def tracking_png(session: Session, run_id: int) -> bytes:
    """The run's validation plot; 404 when the run has none (no holdout check)."""
    run = get_run(session, run_id)
    if not run.tracking_png:
        reason = (run.validation or {}).get("skipped") or "the run has no holdout validation"
        raise NotFound(f"analysis run {run_id} has no tracking plot: {reason}", detail={"field": "run_id"})
    return run.tracking_png


def customer_scores(session: Session, customer_id: int) -> tuple[int, list[tuple[CustomerScore, AnalysisRun]]]:
    """The live customer's id and their scores across finished runs, oldest first; 404 for an unknown customer.

    A merged customer's id stands for the survivor it was merged into.
    """
    from patron.customers import service as customers

    live_id = customers.resolve_customer_id(session, customer_id)
    return live_id, repository.customer_score_history(session, live_id)


def latest_completed_run(session: Session) -> AnalysisRun | None:
    """The finished run (completed or partial) with the latest as_of."""
    return repository.latest_completed_run(session)
