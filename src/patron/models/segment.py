"""Segments (rules, static lists, clusters), their members, and periodic snapshots of membership."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, JSONType, UTCDateTime, utcnow
from patron.models.enums import SegmentKind, db_enum


class Segment(Base):
    """A named group of customers.

    dynamic: `rule` (a JSON tree, see patron.segments.rules) is evaluated on every use;
    static: a list of members kept in segment_members (a snapshot of a rule, or a CSV);
    cluster: one cluster of a behavioural clustering, its members kept like a static list
    and its profile in `cluster`.
    """

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[SegmentKind] = mapped_column(db_enum(SegmentKind))
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Built-in segments carry a stable key so a fresh install (or an upgrade) adds them once.
    builtin_key: Mapped[str | None] = mapped_column(String(50), unique=True)
    # Cluster segments: {"run": ..., "cluster": n, "k": ..., "method": ..., "label": ..., "means": {...}}
    cluster: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Which example of segmentation it illustrates (demographic, geographic, behavioural, benefits).
    category: Mapped[str | None] = mapped_column(String(30))
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SegmentMember(Base):
    """A customer on a static list or in a cluster segment."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_customer_id", "customer_id"),)

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentSnapshot(Base):
    """Every segment's membership at one moment, so the next snapshot shows who moved."""

    __tablename__ = "segment_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    taken_by: Mapped[str] = mapped_column(String(200), default="")
    # {segment_id: member count} at the time, also for segments deleted since.
    sizes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    names: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class SegmentSnapshotMember(Base):
    """One customer in one segment at one snapshot.

    No foreign keys to segments or customers: a snapshot is history and keeps its rows
    when a segment or customer is later deleted.
    """

    __tablename__ = "segment_snapshot_members"
    __table_args__ = (Index("ix_segment_snapshot_members_snapshot_customer", "snapshot_id", "customer_id"),)

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("segment_snapshots.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
