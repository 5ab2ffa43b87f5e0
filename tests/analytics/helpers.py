"""Helpers for the analyze tests: committed data in a fresh database, and the CDNOW sample loaded
through the real importer.

analyze() reads the operational data through DuckDB's own connection, which sees committed rows
only, so these helpers write with session_scope (committing) into a database of the test's own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from patron.db import session_scope
from patron.imports import service as imports
from patron.models import AnalysisRun, CustomerScore, Order
from patron.models.enums import ImportKind
from patron.orders import service as orders
from patron.orders.schemas import OrderCreate, OrderReturnCreate
from tests.factories import create_customer

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"
CDNOW_AS_OF = date(1998, 6, 30)
CDNOW_CALIBRATION_END = date(1997, 9, 30)  # 39 weeks from 1997-01-01, as published
CDNOW_HOLDOUT_DAYS = (CDNOW_AS_OF - CDNOW_CALIBRATION_END).days  # 273


def at(y: int, m: int, d: int, hour: int = 12) -> datetime:
    return datetime(y, m, d, hour, tzinfo=UTC)


def add_order(session: Session, customer, when: datetime, total: str | Decimal = "10.00", *, status="fulfilled"):
    """An order that is just a total (no lines), through the orders service."""
    data = OrderCreate(
        customer_id=customer.id, placed_at=when, channel="online", status=status, subtotal=Decimal(total)
    )
    return orders.create_order(session, data=data)


def refund(session: Session, order, amount: str | Decimal, when: datetime) -> None:
    orders.record_return(
        session, order.id, data=OrderReturnCreate(kind="refund", amount=Decimal(amount), returned_at=when)
    )


def add_raw_order(session: Session, customer, when: datetime, total: str) -> Order:
    """An order the API would refuse (placed in the future, negative total), as a buggy till or import could leave."""
    value = Decimal(total)
    order = Order(
        customer_id=customer.id, placed_at=when, channel="online", status="fulfilled", currency="EUR",
        subtotal=value, total=value,
    )  # fmt: skip
    session.add(order)
    session.flush()
    return order


def build(engine: Engine, histories: list[list[tuple]]) -> list[int]:
    """One customer per history; a history is [(datetime, total), ...] (empty: never bought). Returns ids."""
    ids = []
    with session_scope(engine) as session:
        for history in histories:
            customer = create_customer(session)
            for when, total in history:
                add_order(session, customer, when, total)
            ids.append(customer.id)
    return ids


def scores_of(engine: Engine, run_id: int) -> dict[int, CustomerScore]:
    with session_scope(engine) as session:
        rows = session.scalars(select(CustomerScore).where(CustomerScore.run_id == run_id)).all()
        return {row.customer_id: row for row in rows}


def count_scores(engine: Engine, run_id: int) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).where(CustomerScore.run_id == run_id))


def load_run(engine: Engine, run_id: int) -> AnalysisRun:
    with session_scope(engine) as session:
        return session.get(AnalysisRun, run_id)


def import_cdnow(engine: Engine) -> None:
    """The CDNOW sample through `patron import orders FILE --preset cdnow`'s service calls."""
    with session_scope(engine) as session:
        run_id = imports.start(session, kind=ImportKind.orders, path=CDNOW, preset_name="cdnow").id
    run = imports.execute(engine, run_id)
    assert run.status == "completed" and run.rejected == 0, run.message


def cdnow_purchase_days() -> dict[str, set[date]]:
    """Each CDNOW customer's purchase days, read straight from the file (not through the database)."""
    days: dict[str, set[date]] = defaultdict(set)
    for line in CDNOW.read_text().splitlines():
        if line.strip():
            master, _sample, day, _cds, _dollars = line.split()
            days[master].add(date(int(day[:4]), int(day[4:6]), int(day[6:])))
    return days
