from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.models.base import Base, JSONType, Money, UTCDateTime, utcnow
from patron.models.enums import ProductTier, db_enum


class Product(Base):
    """Something sold. Category is a '/'-separated path so prefixes select sub-trees."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category_path: Mapped[str] = mapped_column(String(300), default="", index=True)
    brand: Mapped[str | None] = mapped_column(String(100), index=True)
    tier: Mapped[ProductTier | None] = mapped_column(db_enum(ProductTier))
    price: Mapped[Decimal] = mapped_column(Money)
    unit_cost: Mapped[Decimal | None] = mapped_column(Money)
    launched_on: Mapped[date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
