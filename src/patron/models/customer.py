from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint, func
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, aliased, mapped_column, relationship

from patron.models.base import Base, JSONType, Money, UTCDateTime, utcnow
from patron.models.enums import (
    AgeBand,
    ContactChannel,
    Gender,
    IncomeBand,
    MaritalStatus,
    db_enum,
)


class Customer(Base):
    """A consumer the business sells to: contact data, demographics and acquisition."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_last_name_first_name", "last_name", "first_name"),
        Index("ix_customers_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    # Stored lower-cased; the unique index is what reports a duplicate (409).
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    birthday: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[Gender | None] = mapped_column(db_enum(Gender))

    address_line: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100), index=True)
    region: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2), index=True)  # ISO 3166-1 alpha-2
    postal_code: Mapped[str | None] = mapped_column(String(20))

    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    # Kept separately from birth_year: many sources only ever know the band.
    age_band: Mapped[AgeBand | None] = mapped_column(db_enum(AgeBand))
    income_band: Mapped[IncomeBand | None] = mapped_column(db_enum(IncomeBand))
    marital_status: Mapped[MaritalStatus | None] = mapped_column(db_enum(MaritalStatus))
    household_size: Mapped[int | None] = mapped_column(SmallInteger)
    children: Mapped[int | None] = mapped_column(SmallInteger)
    interests: Mapped[list[str]] = mapped_column(JSONType, default=list)

    acquired_at: Mapped[date | None] = mapped_column(Date)
    acquisition_channel: Mapped[str | None] = mapped_column(String(50))
    acquisition_cost: Mapped[Decimal | None] = mapped_column(Money)
    preferred_channel: Mapped[ContactChannel | None] = mapped_column(db_enum(ContactChannel))
    language: Mapped[str | None] = mapped_column(String(35))  # BCP 47 tag
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA name

    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Set when this record was merged into another: the survivor. Merged records are kept
    # (hidden from lists) so their external ids still lead to the survivor and a merge
    # can be undone.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    external_ids: Mapped[list[CustomerExternalId]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        order_by="CustomerExternalId.source",
        lazy="selectin",
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    # The customer this one is now: itself, or the one it was merged into. One level is
    # enough: a merge refuses a customer already merged, and re-points at the survivor the
    # customers that were merged into the duplicate (identity.service.MOVES), so no chains.
    @hybrid_property
    def survivor_id(self) -> int:
        return self.merged_into_id if self.merged_into_id is not None else self.id

    @survivor_id.inplace.expression
    @classmethod
    def _survivor_id_expression(cls):
        return func.coalesce(cls.merged_into_id, cls.id)


class CustomerExternalId(Base):
    """The customer's id in another system (shop, POS, old CRM): one per source."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        UniqueConstraint("customer_id", "source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(100))

    customer: Mapped[Customer] = relationship(back_populates="external_ids")


class CustomerMerge(Base):
    """One merge of a duplicate into a survivor: who, when, why, and what moved (for undo)."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Ids of the rows moved to the survivor by table, and the survivor's fields filled
    # from the duplicate with their previous values: exactly what an undo puts back.
    moved: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def survivor_sql(alias: str) -> str:
    """Customer.survivor_id as SQL text over `customers <alias>`, for the importers' hand-written statements."""
    # Compiled from the hybrid so the rule is stated once; it renders the same on every backend.
    return str(aliased(Customer, name=alias).survivor_id.compile())
