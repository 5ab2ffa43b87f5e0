"""What the analytics API takes and returns: analysis runs and customers' scores."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patron.analytics.service import MAX_HORIZON_DAYS
from patron.models import AnalysisRun as AnalysisRunRow
from patron.models import CustomerScore as CustomerScoreRow
from patron.models.enums import AnalysisStatus, ChurnBand, RfmSegment


class AnalysisRunCreate(BaseModel):
    """Options of one analysis; every field may be left out."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(default=None, description="Score as of this day (UTC); default today.")
    model: Literal["auto", "bgnbd", "pareto"] = Field(
        default="auto", description="Purchase model; auto keeps the one with the lower holdout RMSE."
    )
    horizon_days: int = Field(default=365, ge=1, le=MAX_HORIZON_DAYS, description="CLV horizon in days.")
    discount_rate: float = Field(default=0.10, ge=0, le=1, description="Annual discount rate for CLV (0.10 = 10%).")
    margin: float | None = Field(
        default=1.0, gt=0, le=1, description="Share of revenue kept as profit; null: from the products' unit costs."
    )
    holdout_days: int | None = Field(
        default=None, ge=0, le=36_500, description="Days held out to check the models; 0 skips; null: a third."
    )


class AnalysisRunSummary(BaseModel):
    """One analysis run, without its fits and validation report."""

    id: int
    as_of: date
    status: AnalysisStatus = Field(description="partial: RFM stored, but no (or incomplete) predictions; see message.")
    requested_model: str
    model: str | None = Field(description="The purchase model the scores come from.")
    customers: int
    buyers: int = Field(description="Customers with at least one purchase up to as_of.")
    equity: float | None = Field(description="Sum of every customer's CLV over the run's horizon.")
    message: str | None = Field(description="What was left out or could not be done, one sentence a line.")
    actor: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None = Field(description="Wall time of the run.")

    @classmethod
    def fields_of(cls, run: AnalysisRunRow) -> dict[str, Any]:
        clv = (run.fits or {}).get("clv") or {}
        return {
            "id": run.id,
            "as_of": run.as_of,
            "status": run.status,
            "requested_model": run.requested_model,
            "model": run.model,
            "customers": run.customers,
            "buyers": run.buyers,
            "equity": clv.get("equity"),
            "message": run.message,
            "actor": run.actor,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "seconds": (run.timings or {}).get("total"),
        }

    @classmethod
    def of(cls, run: AnalysisRunRow) -> AnalysisRunSummary:
        return cls(**cls.fields_of(run))


class AnalysisRun(AnalysisRunSummary):
    """One analysis run with what it fitted, how the models did on the holdout, and its timings."""

    settings: dict[str, Any] = Field(description="Horizon, discount rate, margin, time unit, holdout as requested.")
    fits: dict[str, Any] = Field(
        description="Per model: params, standard_errors, log_likelihood (time unit: days); clv: equity and mean."
    )
    validation: dict[str, Any] = Field(
        description="Holdout report: calibration_end, holdout_days, per-model metrics (rmse, mae, totals), "
        "by_frequency, tracking (weekly actual and expected repeat purchases), chosen; or skipped: the reason."
    )
    timings: dict[str, float] = Field(description="Seconds per step, and total.")
    tracking_png: str | None = Field(description="URL of the validation plot, when there is one.")

    @classmethod
    def of(cls, run: AnalysisRunRow) -> AnalysisRun:
        return cls(
            **cls.fields_of(run),
            settings=run.settings or {},
            fits=run.fits or {},
            validation=run.validation or {},
            timings=run.timings or {},
            tracking_png=f"/api/v1/analytics/runs/{run.id}/tracking.png" if run.tracking_png else None,
        )


class AnalysisRunPage(BaseModel):
    items: list[AnalysisRunSummary]
    next_cursor: str | None


class CustomerScore(BaseModel):
    """A customer's figures as of one run. Time is in days; money in the shop's currency."""

    run_id: int
    as_of: date
    model: str | None = Field(description="The run's purchase model.")
    orders: int
    frequency: int = Field(description="Repeat purchase days.")
    recency_days: float | None = Field(description="First to last purchase.")
    age_days: float | None = Field(description="First purchase to as_of.")
    days_since_last: float | None
    revenue: Decimal
    average_spend: Decimal | None = Field(description="Per repeat purchase day.")
    r_score: int | None
    f_score: int | None
    m_score: int | None
    rfm_segment: RfmSegment | None
    expected_30: float | None
    expected_90: float | None
    expected_365: float | None
    p_alive: float | None
    churn_band: ChurnBand | None
    expected_spend: Decimal | None
    clv: Decimal | None

    @classmethod
    def of(cls, score: CustomerScoreRow, run: AnalysisRunRow) -> CustomerScore:
        fields = {name: getattr(score, name) for name in cls.model_fields if name != "model"}
        return cls(**fields, model=run.model)


class CustomerScoreHistory(BaseModel):
    customer_id: int = Field(description="The live customer (a merged id leads to its survivor).")
    items: list[CustomerScore] = Field(description="Oldest as_of first.")
