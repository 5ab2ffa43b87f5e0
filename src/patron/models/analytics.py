"""Analysis runs and what they compute per customer (scores, purchase-history insights)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, Float, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, JSONType, Money, UTCDateTime, utcnow
from patron.models.enums import AnalysisStatus, ChurnBand, RfmSegment, db_enum


class AnalysisRun(Base):
    """One `patron analyze`: the fitted models, their validation and how long it took.

    Every run keeps its customers' scores, so trends over runs can be shown.
    """

    __tablename__ = "analysis_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[AnalysisStatus] = mapped_column(db_enum(AnalysisStatus), default=AnalysisStatus.running)
    requested_model: Mapped[str] = mapped_column(String(20))  # auto | bgnbd | pareto
    model: Mapped[str | None] = mapped_column(String(20))  # the one used for the scores
    # Horizon, discount rate, margin, time unit, calibration split: what the figures mean.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # {"bgnbd": {"params": ..., "standard_errors": ..., "log_likelihood": ...}, "gamma_gamma": ...}
    fits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Holdout report: predicted vs actual by calibration purchases and over time, per model.
    validation: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tracking_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    buyers: Mapped[int] = mapped_column(Integer, default=0)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerScore(Base):
    """A customer's summary, RFM and model predictions as of one run.

    No foreign keys: a run writes a row for every customer (a million at a time), and
    PostgreSQL checks a foreign key with one trigger call per row, which took longer than
    the whole rest of the write (1M rows: 16 s against 5 s). Only analyze() writes these
    rows, with ids it has just read; triggers created by migration 0003 delete a
    customer's or a run's rows when the customer or run is deleted (ON DELETE CASCADE).
    """

    __tablename__ = "customer_scores"
    __table_args__ = (Index("ix_customer_scores_customer_id_as_of", "customer_id", "as_of"),)

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    orders: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)  # repeat purchase days
    recency_days: Mapped[float | None] = mapped_column(Float)  # first to last purchase
    age_days: Mapped[float | None] = mapped_column(Float)  # first purchase to as_of (T)
    days_since_last: Mapped[float | None] = mapped_column(Float)
    revenue: Mapped[Decimal] = mapped_column(Money)
    average_spend: Mapped[Decimal | None] = mapped_column(Money)  # per repeat purchase day
    r_score: Mapped[int | None] = mapped_column(SmallInteger)
    f_score: Mapped[int | None] = mapped_column(SmallInteger)
    m_score: Mapped[int | None] = mapped_column(SmallInteger)
    # Not indexed: segment questions are asked of one run (the primary key's run_id prefix),
    # and an index over every run's rows cost about 1.5 s of each million-row write.
    rfm_segment: Mapped[RfmSegment | None] = mapped_column(db_enum(RfmSegment))
    expected_30: Mapped[float | None] = mapped_column(Float)
    expected_90: Mapped[float | None] = mapped_column(Float)
    expected_365: Mapped[float | None] = mapped_column(Float)
    p_alive: Mapped[float | None] = mapped_column(Float)
    churn_band: Mapped[ChurnBand | None] = mapped_column(db_enum(ChurnBand))
    expected_spend: Mapped[Decimal | None] = mapped_column(Money)
    clv: Mapped[Decimal | None] = mapped_column(Money)


class CustomerInsight(Base):
    """What a customer's purchase history says about them (latest analysis only).

    No foreign key, for the reason given on CustomerScore; a trigger (migration 0003)
    deletes a customer's row with the customer.
    """

    __tablename__ = "customer_insights"

    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    favourite_category: Mapped[str | None] = mapped_column(String(300))
    favourite_brand: Mapped[str | None] = mapped_column(String(100))
    brand_loyalty: Mapped[float | None] = mapped_column(Float)  # top brand's share in the top category
    discount_share: Mapped[float | None] = mapped_column(Float)  # share of spend bought on discount
    price_index: Mapped[float | None] = mapped_column(Float)  # paid / category average price
    premium_share: Mapped[float | None] = mapped_column(Float)
    preferred_channel: Mapped[str | None] = mapped_column(String(20))
    has_children_signal: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
