"""DuckDB over the operational database: hand-computed cases on SQLite and PostgreSQL.

DuckDB reads the database through its own connection, so the data is committed to a
fresh database of this module rather than written inside the rolled-back `session`.
Every expected number below is worked out by hand from the orders listed in `world`
(as_of = 2026-06-30, calibration_end = 2026-03-31).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import make_url

from patron.analytics import queries
from patron.analytics.engine import duckdb_connection, extension_path, libpq_conninfo
from patron.analytics.queries import (
    cohort_retention,
    customer_summaries,
    customer_summaries_with_holdout,
    daily_transactions,
    first_purchase_day,
    purchase_insights,
)
from patron.db import session_scope
from patron.errors import InvalidInput
from patron.models import Order
from patron.orders import service as orders
from patron.orders.schemas import OrderCreate, OrderReturnCreate
from tests.factories import create_customer, create_product

AS_OF = date(2026, 6, 30)
CAL_END = date(2026, 3, 31)


def at(y, m, d, hour=12, minute=0, second=0, tz=UTC) -> datetime:
    return datetime(y, m, d, hour, minute, second, tzinfo=tz)


def _order(session, customer, when, total=None, *, lines=(), status="fulfilled", channel="online"):
    """lines: [(product, quantity, unit_price, line discount)]; without lines the order is just a total."""
    data = OrderCreate(
        customer_id=customer.id,
        placed_at=when,
        channel=channel,
        status=status,
        subtotal=None if lines else Decimal(total),
        lines=[
            {"product_id": p.id, "quantity": q, "unit_price": Decimal(u), "discount": Decimal(d)}
            for p, q, u, d in lines
        ],
    )
    return orders.create_order(session, data=data)


def _refund(session, order, amount, when):
    orders.record_return(
        session, order.id, data=OrderReturnCreate(kind="refund", amount=Decimal(amount), returned_at=when)
    )


def _build(s) -> dict[str, int]:
    puzzles = create_product(s, category_path="Kids/Toys/Puzzles", brand="Playwise", tier="standard")
    kids_wear = create_product(s, category_path="Kids/Clothing", brand="Tiny Town", tier="standard")
    lamp = create_product(s, category_path="Home/Decor", brand="Oakhearth", tier="premium")
    vase = create_product(s, category_path="Home/Decor", brand="Casa Bright", tier="value")
    speaker = create_product(s, category_path="Electronics/Audio", brand=None, tier=None)

    # A: two orders on 2026-01-10 and two on 2026-01-20 (one given in UTC+2 on the 21st,
    # which is still the 20th in UTC), one on 2026-02-01.
    a = create_customer(s)
    _order(s, a, at(2026, 1, 10, 9), "10.00")
    _order(s, a, at(2026, 1, 10, 18), "20.00")
    _order(s, a, at(2026, 1, 20, 10), "30.00")
    _order(s, a, at(2026, 1, 21, 1, 30, tz=timezone(timedelta(hours=2))), "5.00")
    _order(s, a, at(2026, 2, 1), "40.00")

    # B: a single purchase.
    b = create_customer(s)
    _order(s, b, at(2026, 3, 15), "50.00")

    # C: refunds (one before, one after calibration_end, one after as_of), a fully
    # returned order and a cancelled one.
    c = create_customer(s)
    c1 = _order(s, c, at(2026, 2, 1), "100.00")
    _refund(s, c1, "30.00", at(2026, 2, 10))
    _refund(s, c1, "10.00", at(2026, 4, 15))
    _order(s, c, at(2026, 2, 5), "60.00", status="cancelled")
    c3 = _order(s, c, at(2026, 3, 1), "80.00")
    _refund(s, c3, "80.00", at(2026, 3, 5))
    c4 = _order(s, c, at(2026, 4, 1), "25.00")
    _refund(s, c4, "5.00", at(2026, 7, 15))

    # D never bought; E only has a cancelled order.
    d = create_customer(s)
    e = create_customer(s)
    _order(s, e, at(2026, 2, 2), "15.00", status="cancelled")

    # F: one purchase, one after as_of and one dated years ahead (written past the API's check).
    f = create_customer(s)
    _order(s, f, at(2026, 5, 1), "20.00", channel="in_store")
    _order(s, f, at(2026, 7, 5), "99.00")
    s.add(
        Order(
            customer_id=f.id,
            placed_at=at(2031, 1, 1),
            channel="online",
            status="placed",
            currency="USD",
            subtotal=Decimal("77.00"),
            total=Decimal("77.00"),
        )
    )

    # H: purchases around calibration_end and as_of, to the second.
    h = create_customer(s)
    _order(s, h, at(2026, 3, 20), "10.00")
    _order(s, h, at(2026, 3, 31, 23, 59, 59), "20.00")
    _order(s, h, at(2026, 4, 1, 0, 0, 30), "30.00")
    _order(s, h, at(2026, 4, 1, 12), "40.00")
    _order(s, h, at(2026, 6, 30, 22), "50.00")
    _order(s, h, at(2026, 7, 1, 0, 0, 1), "60.00")

    # I and J: order lines for the purchase insights (window: 2025-07-01 .. 2026-06-30).
    i = create_customer(s)
    _order(s, i, at(2025, 1, 1), lines=[(speaker, 1, "500.00", "0")])  # before the window
    _order(s, i, at(2026, 5, 1), lines=[(puzzles, 2, "20.00", "0"), (lamp, 1, "100.00", "10.00")])
    _order(s, i, at(2026, 5, 10), lines=[(vase, 1, "30.00", "0"), (kids_wear, 1, "15.00", "0")], channel="in_store")
    _order(s, i, at(2026, 6, 1), lines=[(lamp, 1, "100.00", "0")])
    _order(s, i, at(2026, 6, 2), lines=[(speaker, 1, "999.00", "0")], status="cancelled", channel="phone")
    j = create_customer(s)
    _order(s, j, at(2026, 6, 10), lines=[(lamp, 1, "80.00", "0"), (speaker, 1, "50.00", "0")], channel="phone")

    # G was merged into A: its own orders (not moved here) must count nowhere.
    g = create_customer(s)
    _order(s, g, at(2026, 1, 5), lines=[(puzzles, 1, "1000.00", "0")])
    g.merged_into_id = a.id
    s.flush()
    return {name: cust.id for name, cust in dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h, i=i, j=j).items()}


@pytest.fixture(scope="module")
def world(database_factory):
    engine = database_factory.new_engine()
    with session_scope(engine) as s:
        ids = _build(s)
    conn = duckdb_connection(engine)
    yield SimpleNamespace(engine=engine, conn=conn, backend=database_factory.backend, **ids)
    conn.close()
    engine.dispose()


def rows_by_id(df: pl.DataFrame) -> dict[int, dict]:
    return {row["customer_id"]: row for row in df.iter_rows(named=True)}


def check(row: dict, **expected) -> None:
    got = {k: row[k] for k in expected}
    want = {k: pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for k, v in expected.items()}
    assert got == want


D = date
NO_PURCHASE = dict(
    first_purchase=None, last_purchase=None, n_orders=0, frequency=0, recency=None, T=None, monetary_value=0.0
)


# --------------------------------------------------------------------------- connection


def test_views_have_one_schema_on_every_backend(world):
    types = dict(world.conn.execute("SELECT column_name, column_type FROM (DESCRIBE orders)").fetchall())
    assert types["placed_at"] == "TIMESTAMP"
    assert types["total"] == "DECIMAL(18,2)"
    assert types["id"] == types["customer_id"] == "BIGINT"
    line_types = dict(world.conn.execute("SELECT column_name, column_type FROM (DESCRIBE products)").fetchall())
    assert line_types["is_active"] == "BOOLEAN"
    # Naive UTC: 01:30 in UTC+2 on the 21st is 23:30 on the 20th.
    stamps = world.conn.execute(
        "SELECT placed_at FROM orders WHERE customer_id = ? ORDER BY placed_at", [world.a]
    ).fetchall()
    assert stamps[3][0] == datetime(2026, 1, 20, 23, 30)
    money = world.conn.execute("SELECT total FROM orders WHERE customer_id = ? ORDER BY id", [world.a]).fetchall()
    assert [m[0] for m in money] == [
        Decimal("10.00"),
        Decimal("20.00"),
        Decimal("30.00"),
        Decimal("5.00"),
        Decimal("40.00"),
    ]


def test_attached_database_is_read_only(world):
    with pytest.raises(duckdb.Error):
        world.conn.execute("DELETE FROM operational.orders")
    assert world.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] > 0


def test_extension_comes_from_the_wheel_not_the_network():
    for backend in ("sqlite", "postgresql"):
        path = extension_path(backend)
        assert path.is_file()
        assert path.name.endswith(".duckdb_extension")
    conn = duckdb.connect()
    try:
        conn.execute(f"LOAD '{extension_path('sqlite')}'")
        loaded = conn.execute(
            "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'sqlite_scanner'"
        ).fetchone()
        assert loaded == (True,)
    finally:
        conn.close()


def test_libpq_conninfo_quotes_what_needs_quoting():
    url = make_url("postgresql+psycopg://o'neil:p%40ss%20word@db.example:5433/shop?sslmode=require")
    info = libpq_conninfo(url)
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(info) == {
        "host": "db.example",
        "port": "5433",
        "user": "o'neil",
        "password": "p@ss word",
        "dbname": "shop",
        "sslmode": "require",
    }


# --------------------------------------------------------------------------- summaries


def test_customer_summaries_by_hand(world):
    df = customer_summaries(world.conn, as_of=AS_OF)
    assert df.columns == [
        "customer_id",
        "first_purchase",
        "last_purchase",
        "n_orders",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "revenue",
    ]
    rows = rows_by_id(df)
    # Every customer but the merged one, buyers or not.
    assert set(rows) == {world.a, world.b, world.c, world.d, world.e, world.f, world.h, world.i, world.j}
    # Same-day orders count once: days 01-10 (30), 01-20 (35), 02-01 (40).
    check(
        rows[world.a],
        first_purchase=D(2026, 1, 10),
        last_purchase=D(2026, 2, 1),
        n_orders=5,
        frequency=2,
        recency=22.0,
        T=171.0,
        monetary_value=37.5,
        revenue=105.0,
    )
    check(rows[world.b], n_orders=1, frequency=0, recency=0.0, T=107.0, monetary_value=0.0, revenue=50.0)
    # 02-01: 100 - 30 - 10 = 60; 03-01: 80 returned = 0; 04-01: 25 (its refund is after as_of).
    check(
        rows[world.c],
        first_purchase=D(2026, 2, 1),
        last_purchase=D(2026, 4, 1),
        n_orders=3,
        frequency=2,
        recency=59.0,
        T=149.0,
        monetary_value=12.5,
        revenue=85.0,
    )
    check(rows[world.d], **NO_PURCHASE, revenue=0.0)
    check(rows[world.e], **NO_PURCHASE, revenue=0.0)
    check(rows[world.f], first_purchase=D(2026, 5, 1), n_orders=1, frequency=0, recency=0.0, T=60.0, revenue=20.0)
    # 03-20 (10), 03-31 (20), 04-01 (30 + 40), 06-30 (50); 07-01 is after as_of.
    check(
        rows[world.h],
        first_purchase=D(2026, 3, 20),
        last_purchase=D(2026, 6, 30),
        n_orders=5,
        frequency=3,
        recency=102.0,
        T=102.0,
        monetary_value=(20 + 70 + 50) / 3,
        revenue=150.0,
    )
    # Line-only orders: 2025-01-01 (500), 05-01 (40 + 90), 05-10 (45), 06-01 (100); 06-02 cancelled.
    check(
        rows[world.i],
        first_purchase=D(2025, 1, 1),
        last_purchase=D(2026, 6, 1),
        n_orders=4,
        frequency=3,
        recency=516.0,
        T=545.0,
        monetary_value=(130 + 45 + 100) / 3,
        revenue=775.0,
    )
    check(rows[world.j], n_orders=1, frequency=0, T=20.0, revenue=130.0)


def test_weeks_divide_days_by_seven(world):
    days = rows_by_id(customer_summaries(world.conn, as_of=AS_OF))
    weeks = rows_by_id(customer_summaries(world.conn, as_of=AS_OF, unit="weeks"))
    check(weeks[world.a], frequency=2, recency=22 / 7, T=171 / 7, monetary_value=37.5)
    check(weeks[world.h], frequency=3, recency=102 / 7, T=102 / 7)
    assert weeks[world.d]["T"] is None
    for cid, row in days.items():
        assert weeks[cid]["frequency"] == row["frequency"]


def test_calibration_and_holdout(world):
    df = customer_summaries(world.conn, as_of=AS_OF, calibration_end=CAL_END)
    assert df.columns[-2:] == ["frequency_holdout", "duration_holdout"]
    rows = rows_by_id(df)
    assert {row["duration_holdout"] for row in rows.values()} == {91.0}
    check(rows[world.a], n_orders=5, frequency=2, recency=22.0, T=80.0, monetary_value=37.5, frequency_holdout=0)
    check(rows[world.b], n_orders=1, frequency=0, T=16.0, frequency_holdout=0)
    # Only the refund booked by calibration_end counts: 02-01 is 70; 03-01 was returned (0).
    check(
        rows[world.c],
        last_purchase=D(2026, 3, 1),
        n_orders=2,
        frequency=1,
        recency=28.0,
        T=58.0,
        monetary_value=0.0,
        revenue=70.0,
        frequency_holdout=1,
    )
    # 23:59:59 on calibration_end is calibration; 00:00:30 the next day is holdout.
    check(
        rows[world.h],
        last_purchase=D(2026, 3, 31),
        n_orders=2,
        frequency=1,
        recency=11.0,
        T=11.0,
        monetary_value=20.0,
        revenue=30.0,
        frequency_holdout=2,
    )
    check(rows[world.i], n_orders=1, frequency=0, T=454.0, revenue=500.0, frequency_holdout=3)
    # First purchase in the holdout period: not part of the calibration cohort.
    for late in (world.f, world.j, world.d):
        check(rows[late], **NO_PURCHASE, revenue=0.0, frequency_holdout=None)

    weeks = rows_by_id(customer_summaries(world.conn, as_of=AS_OF, calibration_end=CAL_END, unit="weeks"))
    check(weeks[world.h], recency=11 / 7, T=11 / 7, frequency_holdout=2, duration_holdout=13.0)


def test_later_as_of_sees_later_orders_and_refunds_but_never_the_future(world):
    rows = rows_by_id(customer_summaries(world.conn, as_of=D(2026, 7, 20)))
    # C's 5.00 refund of 07-15 now counts: 60 + 0 + 20.
    check(rows[world.c], n_orders=3, revenue=80.0, monetary_value=10.0)
    # F's 2031 order stays out; the 07-05 one is in.
    check(rows[world.f], n_orders=2, frequency=1, recency=65.0, T=80.0, monetary_value=99.0, revenue=119.0)


def test_as_of_before_any_purchase_gives_empty_histories(world):
    df = customer_summaries(world.conn, as_of=D(2024, 1, 1))
    assert df.height == 9
    assert df["n_orders"].sum() == 0
    assert df["first_purchase"].null_count() == 9


def test_summaries_with_holdout_are_the_two_summaries(world):
    # One pass for both periods gives exactly the two queries' frames: refunds booked between
    # calibration_end and as_of (C's 04-15) count in the first only, in days and in weeks.
    for unit, as_of, cal_end in [("days", AS_OF, CAL_END), ("weeks", AS_OF, CAL_END), ("days", AS_OF, AS_OF)]:
        summaries, calibration = customer_summaries_with_holdout(
            world.conn, as_of=as_of, calibration_end=cal_end, unit=unit
        )
        assert_frame_equal(summaries, customer_summaries(world.conn, as_of=as_of, unit=unit), check_exact=True)
        assert_frame_equal(
            calibration,
            customer_summaries(world.conn, as_of=as_of, calibration_end=cal_end, unit=unit),
            check_exact=True,
        )
    summaries, calibration = customer_summaries_with_holdout(
        world.conn, as_of=D(2024, 1, 1), calibration_end=D(2023, 6, 1)
    )
    assert summaries["first_purchase"].null_count() == calibration["first_purchase"].null_count() == 9


def test_first_purchase_day(world):
    earliest = customer_summaries(world.conn, as_of=AS_OF)["first_purchase"].min()
    assert first_purchase_day(world.conn, as_of=AS_OF) == earliest == D(2025, 1, 1)
    assert first_purchase_day(world.conn, as_of=D(2024, 1, 1)) is None


def test_argument_checks(world):
    with pytest.raises(InvalidInput):
        customer_summaries(world.conn, as_of=AS_OF, calibration_end=D(2026, 7, 1))
    with pytest.raises(InvalidInput):
        customer_summaries_with_holdout(world.conn, as_of=AS_OF, calibration_end=D(2026, 7, 1))
    with pytest.raises(InvalidInput):
        customer_summaries(world.conn, as_of=AS_OF, unit="months")
    with pytest.raises(InvalidInput):
        customer_summaries(world.conn, as_of=datetime(2026, 6, 30, 12))  # naive
    # An aware datetime is taken as its UTC day.
    aware = customer_summaries(world.conn, as_of=datetime(2026, 7, 1, 1, tzinfo=timezone(timedelta(hours=2))))
    assert aware.equals(customer_summaries(world.conn, as_of=AS_OF))


# --------------------------------------------------------------------------- other queries


def test_daily_transactions(world):
    df = daily_transactions(world.conn, start=D(2026, 1, 1), end=AS_OF)
    assert df.columns == [
        "period",
        "period_start",
        "first_purchases",
        "repeat_purchases",
        "cumulative_repeat_purchases",
    ]
    assert df.height == 181  # every day, with or without purchases
    by_day = {row["period_start"]: row for row in df.iter_rows(named=True)}
    assert by_day[D(2026, 1, 10)]["first_purchases"] == 1
    assert by_day[D(2026, 1, 20)]["repeat_purchases"] == 1  # A's two orders that day count once
    assert by_day[D(2026, 1, 5)]["first_purchases"] == 0  # G is merged
    assert by_day[D(2026, 3, 31)]["repeat_purchases"] == 1
    assert by_day[D(2026, 4, 1)]["repeat_purchases"] == 2  # C and H
    assert by_day[D(2026, 2, 5)]["repeat_purchases"] == 0  # C's cancelled order
    # Repeats: A 2, C 2, H 3, I 3 (its first purchase was in 2025); firsts: A B C F H J.
    assert df["repeat_purchases"].sum() == 10
    assert df["first_purchases"].sum() == 6
    assert df["cumulative_repeat_purchases"].to_list()[-1] == 10
    assert df["cumulative_repeat_purchases"].to_list() == df["repeat_purchases"].cum_sum().to_list()


def test_daily_transactions_first_purchase_comes_from_all_history(world):
    df = daily_transactions(world.conn, start=D(2026, 2, 1), end=D(2026, 2, 28))
    assert df.height == 28
    first = df.row(0, named=True)
    assert (first["period_start"], first["first_purchases"], first["repeat_purchases"]) == (D(2026, 2, 1), 1, 1)


def test_weekly_transactions(world):
    df = daily_transactions(world.conn, start=D(2026, 1, 1), end=AS_OF, unit="weeks")
    assert df.height == 26  # 25 full weeks and a 6-day one
    assert df["period"].to_list() == list(range(26))
    week = df.filter(pl.col("period") == 12).row(0, named=True)
    assert week["period_start"] == D(2026, 3, 26)
    assert week["repeat_purchases"] == 3  # H 03-31, H 04-01, C 04-01
    assert df["repeat_purchases"].sum() == 10


def test_cohort_retention(world):
    df = cohort_retention(world.conn, as_of=AS_OF)
    assert df.columns == ["cohort_month", "months_since", "cohort_size", "active_customers", "retention"]
    sizes = dict(df.group_by("cohort_month").agg(pl.col("cohort_size").first()).iter_rows())
    # I: 2025-01; A: 2026-01 (G, merged, would make it 2); C: 02; B and H: 03; F: 05; J: 06.
    assert sizes == {
        D(2025, 1, 1): 1,
        D(2026, 1, 1): 1,
        D(2026, 2, 1): 1,
        D(2026, 3, 1): 2,
        D(2026, 5, 1): 1,
        D(2026, 6, 1): 1,
    }
    march = df.filter(pl.col("cohort_month") == D(2026, 3, 1))
    assert march["months_since"].to_list() == [0, 1, 2, 3]
    assert march["active_customers"].to_list() == [2, 1, 0, 1]
    assert march["retention"].to_list() == [1.0, 0.5, 0.0, 0.5]
    feb = df.filter(pl.col("cohort_month") == D(2026, 2, 1))
    assert feb["active_customers"].to_list() == [1, 1, 1, 0, 0]  # C: Feb, Mar (returned), Apr
    i_cohort = df.filter(pl.col("cohort_month") == D(2025, 1, 1))
    assert i_cohort.height == 18
    assert i_cohort.filter(pl.col("active_customers") > 0)["months_since"].to_list() == [0, 16, 17]
    assert df.height == 18 + 6 + 5 + 4 + 2 + 1


def test_purchase_insights(world):
    rows = rows_by_id(purchase_insights(world.conn, as_of=AS_OF))
    # Only customers with orders in the window: D never bought, E's only order was cancelled,
    # G was merged away.
    assert set(rows) == {world.a, world.b, world.c, world.f, world.h, world.i, world.j}
    total = 40 + 90 + 30 + 15 + 100
    # Leaf means over window lines: Home/Decor (100 + 30 + 100 + 80) / 4; the others one price each.
    decor = (100 + 30 + 100 + 80) / 4
    check(
        rows[world.i],
        n_orders=3,
        spend=float(total),
        favourite_category="Home",
        favourite_brand="Oakhearth",
        top_category_brand="Oakhearth",
        brand_loyalty=190 / 220,
        discount_share=90 / total,
        price_index=(1 + 100 / decor + 30 / decor + 1 + 100 / decor) / 5,
        premium_share=190 / total,
        standard_share=55 / total,
        value_share=30 / total,
        preferred_channel="online",
        has_children_signal=True,
    )
    check(
        rows[world.j],
        n_orders=1,
        spend=130.0,
        favourite_category="Home",
        favourite_brand="Oakhearth",
        brand_loyalty=1.0,
        discount_share=0.0,
        price_index=(80 / decor + 1) / 2,
        premium_share=80 / 130,
        value_share=0.0,
        preferred_channel="phone",
        has_children_signal=False,
    )
    # Orders without lines still count as orders and give a channel, but no tastes.
    check(
        rows[world.a],
        n_orders=5,
        spend=0.0,
        favourite_category=None,
        brand_loyalty=None,
        preferred_channel="online",
        has_children_signal=False,
    )


def test_purchase_insights_window_and_children_categories(world):
    short = rows_by_id(purchase_insights(world.conn, as_of=AS_OF, window_days=30))
    # 2026-06-01 .. 06-30: I has only the lamp of 06-01 left.
    check(short[world.i], n_orders=1, spend=100.0, favourite_category="Home", has_children_signal=False)
    homes = rows_by_id(purchase_insights(world.conn, as_of=AS_OF, children_categories=("home",)))
    assert homes[world.j]["has_children_signal"] is True


def build_ties(s) -> dict[str, int]:
    """Customers whose favourites are decided by the tie-breaks (more value, then the first name)."""
    zeta = create_product(s, category_path="Garden/Tools", brand="Zeta", tier="standard")
    alpha = create_product(s, category_path="Books/Fiction", brand="Alpha", tier="value")
    beta = create_product(s, category_path="Books/Fiction", brand="Beta", tier="value")
    blocks = create_product(s, category_path="Toys/Blocks", brand=None, tier=None)

    # T: Garden 50 (Zeta) against Books 50 (Alpha 25 + Beta 25), one order online, one by phone.
    t = create_customer(s)
    _order(s, t, at(2026, 5, 1), lines=[(zeta, 1, "50.00", "0")])
    _order(s, t, at(2026, 5, 2), lines=[(alpha, 1, "25.00", "0"), (beta, 1, "25.00", "0")], channel="phone")
    # U: the favourite category has no named brand, a less bought one has; in store and by mobile.
    u = create_customer(s)
    _order(s, u, at(2026, 5, 1), lines=[(blocks, 2, "50.00", "0")], channel="mobile")
    _order(s, u, at(2026, 5, 3), lines=[(beta, 1, "30.00", "0")], channel="in_store")
    # V: everything bought was discounted to nothing.
    v = create_customer(s)
    _order(s, v, at(2026, 5, 1), lines=[(alpha, 1, "20.00", "20.00")])
    return {"t": t.id, "u": u.id, "v": v.id}


@pytest.fixture(scope="module")
def ties(database_factory):
    engine = database_factory.new_engine()
    with session_scope(engine) as s:
        ids = build_ties(s)
    conn = duckdb_connection(engine)
    yield SimpleNamespace(conn=conn, **ids)
    conn.close()
    engine.dispose()


def test_purchase_insights_ties_go_to_the_first_name(ties):
    rows = rows_by_id(purchase_insights(ties.conn, as_of=AS_OF))
    check(
        rows[ties.t],
        n_orders=2,
        spend=100.0,
        favourite_category="Books",
        top_category_brand="Alpha",
        brand_loyalty=0.5,
        favourite_brand="Zeta",
        preferred_channel="online",
        value_share=0.5,
    )
    # The favourite category's brand is its own (none), not the best brand of another category.
    check(
        rows[ties.u],
        favourite_category="Toys",
        top_category_brand=None,
        brand_loyalty=None,
        favourite_brand="Beta",
        preferred_channel="in_store",
    )
    check(
        rows[ties.v],
        spend=0.0,
        favourite_category="Books",
        top_category_brand="Alpha",
        brand_loyalty=None,
        discount_share=None,
        favourite_brand="Alpha",
    )


def test_spark_sql_is_a_translation_of_the_same_text():
    duck = queries.render_sql(queries.CUSTOMER_SUMMARIES, "duckdb", as_of=AS_OF, period_end=CAL_END, unit_days=7.0)
    spark = queries.render_sql(queries.CUSTOMER_SUMMARIES, "spark", as_of=AS_OF, period_end=CAL_END, unit_days=7.0)
    assert "DATE_DIFF('DAY'" in duck
    assert "DATEDIFF(DAY" in spark
    assert "CAST('2026-03-31' AS DATE)" in duck and "CAST('2026-03-31' AS DATE)" in spark
    with pytest.raises(ValueError, match="missing query parameters"):
        queries.render_sql(queries.CUSTOMER_SUMMARIES, "duckdb", as_of=AS_OF)


# --------------------------------------------------------------------------- generated data


def _oracle(engine, *, as_of: date, period_end: date) -> dict[int, dict]:
    """customer_summaries recomputed in plain Python from ORM reads (no DuckDB, no SQL text)."""
    from collections import Counter, defaultdict

    from sqlalchemy import select

    from patron.models import Customer, OrderReturn

    with session_scope(engine) as s:
        live = [cid for (cid,) in s.execute(select(Customer.id).where(Customer.merged_into_id.is_(None)))]
        refunded: dict[int, Decimal] = defaultdict(Decimal)
        for order_id, amount, when in s.execute(
            select(OrderReturn.order_id, OrderReturn.amount, OrderReturn.returned_at)
        ):
            if when.date() <= period_end:
                refunded[order_id] += amount
        spend: dict[int, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        n_orders: Counter = Counter()
        holdout_days: dict[int, set] = defaultdict(set)
        for oid, cid, when, status, total in s.execute(
            select(Order.id, Order.customer_id, Order.placed_at, Order.status, Order.total)
        ):
            day = when.astimezone(UTC).date()
            if status == "cancelled" or day > as_of:
                continue
            if day <= period_end:
                spend[cid][day] += total - refunded[oid]
                n_orders[cid] += 1
            else:
                holdout_days[cid].add(day)
    out = {}
    for cid in live:
        days = sorted(spend[cid])
        if not days:
            out[cid] = dict(n_orders=0, frequency=0, T=None, monetary_value=0.0, revenue=0.0, frequency_holdout=None)
            continue
        repeat = [spend[cid][d] for d in days[1:]]
        out[cid] = dict(
            first_purchase=days[0],
            last_purchase=days[-1],
            n_orders=n_orders[cid],
            frequency=len(repeat),
            recency=float((days[-1] - days[0]).days),
            T=float((period_end - days[0]).days),
            monetary_value=float(sum(repeat) / len(repeat)) if repeat else 0.0,
            revenue=float(sum(spend[cid].values())),
            frequency_holdout=len(holdout_days[cid]),
        )
    return out


def test_summaries_of_generated_data_match_an_independent_computation(fresh_engine):
    from patron.demo.generator import generate

    generate(fresh_engine, customers=400, seed=11, end=D(2026, 6, 1))
    as_of, cal_end = D(2026, 5, 31), D(2025, 12, 31)
    conn = duckdb_connection(fresh_engine)
    try:
        calibration = customer_summaries(conn, as_of=as_of, calibration_end=cal_end)
        _, paired = customer_summaries_with_holdout(conn, as_of=as_of, calibration_end=cal_end)
    finally:
        conn.close()
    assert_frame_equal(paired, calibration, check_exact=True)
    got = rows_by_id(calibration)
    want = _oracle(fresh_engine, as_of=as_of, period_end=cal_end)
    assert set(got) == set(want)
    assert sum(1 for row in want.values() if row["frequency"] > 0) > 50
    for cid, expected in want.items():
        check(got[cid], **expected)
