"""The demo generator on a real migrated database, SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import phonenumbers
import pytest
from email_validator import validate_email
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from patron.demo import catalogue
from patron.demo.generator import TABLES, _emails, generate
from patron.errors import Conflict
from patron.models import ConsentEvent, Customer, Interaction, Order, OrderLine, OrderReturn, enums

END = date(2026, 6, 1)
START = END - timedelta(days=3 * 365 + 1)
CUSTOMERS = 300
SEED = 7
CENT = Decimal("0.01")


def money(value) -> Decimal:
    # SQLite hands NUMERIC back as float, PostgreSQL as Decimal: compare both as cents.
    return Decimal(str(value)).quantize(CENT)


def rows(engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def age_band(age: int) -> str:
    for lower, band in ((65, "65+"), (55, "55-64"), (45, "45-54"), (35, "35-44"), (25, "25-34"), (18, "18-24")):
        if age >= lower:
            return band
    return "under-18"


def dump(engine) -> dict[str, list[tuple]]:
    return {t: rows(engine, f"SELECT * FROM {t} ORDER BY id") for t in TABLES}


@pytest.fixture(scope="module")
def generated(database_factory):
    """One generated database per backend, shared by the read-only tests below."""
    engine = database_factory.new_engine()
    summary = generate(engine, customers=CUSTOMERS, seed=SEED, end=END)
    yield engine, summary
    engine.dispose()


@pytest.fixture
def db(generated):
    return generated[0]


def test_summary_counts_match_the_tables(generated):
    engine, summary = generated
    for table in TABLES:
        assert summary.rows[table] == rows(engine, f"SELECT COUNT(*) FROM {table}")[0][0], table
    assert summary.rows["customers"] == CUSTOMERS
    assert 15 <= summary.rows["stores"] <= 25
    assert 450 <= summary.rows["products"] <= 550
    # Roughly ten orders per customer, one to four lines each.
    assert 4 * CUSTOMERS < summary.rows["orders"] < 20 * CUSTOMERS
    assert summary.rows["orders"] < summary.rows["order_lines"] <= 4 * summary.rows["orders"]
    assert summary.start == END - timedelta(days=3 * 365 + 1) and summary.end == END


def test_same_seed_gives_identical_rows_and_another_seed_does_not(generated, database_factory):
    engine, _ = generated
    again = database_factory.new_engine()
    other = database_factory.new_engine()
    try:
        generate(again, customers=CUSTOMERS, seed=SEED, end=END)
        generate(other, customers=CUSTOMERS, seed=SEED + 1, end=END)
        first, second, third = dump(engine), dump(again), dump(other)
        for table in TABLES:
            assert first[table] == second[table], f"{table} differs for the same seed"
        for table in ("customers", "orders", "order_lines", "interactions"):
            assert first[table] != third[table], f"{table} is the same for another seed"
    finally:
        again.dispose()
        other.dispose()


def test_refuses_a_database_that_already_has_data(db):
    with pytest.raises(Conflict, match="empty database"):
        generate(db, customers=10, seed=SEED, end=END)
    assert rows(db, "SELECT COUNT(*) FROM customers")[0][0] == CUSTOMERS


def test_every_reference_points_at_an_existing_row(db):
    orphans = {
        "orders.customer_id": "SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id "
        "WHERE c.id IS NULL",
        "orders.store_id": "SELECT COUNT(*) FROM orders o LEFT JOIN stores s ON s.id = o.store_id "
        "WHERE o.store_id IS NOT NULL AND s.id IS NULL",
        "order_lines.order_id": "SELECT COUNT(*) FROM order_lines l LEFT JOIN orders o ON o.id = l.order_id "
        "WHERE o.id IS NULL",
        "order_lines.product_id": "SELECT COUNT(*) FROM order_lines l LEFT JOIN products p ON p.id = l.product_id "
        "WHERE p.id IS NULL",
        "order_returns.order_id": "SELECT COUNT(*) FROM order_returns r LEFT JOIN orders o ON o.id = r.order_id "
        "WHERE o.id IS NULL",
        # A returned line must belong to the order the return is booked against.
        "order_returns.order_line_id": "SELECT COUNT(*) FROM order_returns r LEFT JOIN order_lines l "
        "ON l.id = r.order_line_id AND l.order_id = r.order_id WHERE r.order_line_id IS NOT NULL AND l.id IS NULL",
        "interactions.customer_id": "SELECT COUNT(*) FROM interactions i LEFT JOIN customers c ON c.id = i.customer_id "
        "WHERE c.id IS NULL",
        "interactions.store_id": "SELECT COUNT(*) FROM interactions i LEFT JOIN stores s ON s.id = i.store_id "
        "WHERE i.store_id IS NOT NULL AND s.id IS NULL",
        "consent_events.customer_id": "SELECT COUNT(*) FROM consent_events e LEFT JOIN customers c "
        "ON c.id = e.customer_id WHERE c.id IS NULL",
        "customer_external_ids.customer_id": "SELECT COUNT(*) FROM customer_external_ids x LEFT JOIN customers c "
        "ON c.id = x.customer_id WHERE c.id IS NULL",
        "orders without lines": "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS "
        "(SELECT 1 FROM order_lines l WHERE l.order_id = o.id)",
    }
    for name, sql in orphans.items():
        assert rows(db, sql)[0][0] == 0, name
    ext = rows(db, "SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM customer_external_ids WHERE source = 'shop'")[0]
    assert ext[0] == ext[1] and 0.7 * CUSTOMERS < ext[0] < CUSTOMERS


def test_order_money_adds_up_to_the_cent(db):
    orders = rows(db, "SELECT id, subtotal, discount, shipping_fee, tax, total, currency FROM orders")
    lines = rows(
        db, "SELECT order_id, line_no, quantity, unit_price, discount FROM order_lines ORDER BY order_id, line_no"
    )
    line_sum: dict[int, Decimal] = defaultdict(Decimal)
    line_nos: dict[int, list[int]] = defaultdict(list)
    for order_id, line_no, qty, price, discount in lines:
        assert qty >= 1 and money(price) > 0 and 0 <= money(discount) < qty * money(price)
        line_sum[order_id] += qty * money(price) - money(discount)
        line_nos[order_id].append(line_no)
    for order_id, subtotal, discount, shipping, tax, total, currency in orders:
        assert currency == "USD"
        assert money(subtotal) == line_sum[order_id], order_id
        assert money(total) == money(subtotal) - money(discount) + money(shipping) + money(tax), order_id
        assert money(discount) <= money(subtotal) and money(tax) >= 0 and money(shipping) >= 0
        assert line_nos[order_id] == list(range(1, len(line_nos[order_id]) + 1))
        assert 1 <= len(line_nos[order_id]) <= 4


def test_phones_are_valid_e164_numbers_of_the_customers_country(db):
    found = rows(db, "SELECT phone, country FROM customers WHERE phone IS NOT NULL")
    assert 0.5 * CUSTOMERS < len(found) < 0.95 * CUSTOMERS
    for phone, country in found:
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
        assert phonenumbers.region_code_for_number(number) == country, (phone, country)


def test_emails_are_unique_lower_case_and_valid(db):
    emails = [r[0] for r in rows(db, "SELECT email FROM customers WHERE email IS NOT NULL")]
    assert 0.8 * CUSTOMERS < len(emails) < CUSTOMERS
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert email == email.lower()
        assert validate_email(email, check_deliverability=False).normalized == email


def test_email_collisions_across_chunks_get_a_unique_address():
    """Addresses already used by an earlier chunk are replaced, never repeated."""
    first, last = np.array(["ann", "bo"] * 50), np.array(["lee", "kim"] * 50)
    cid = np.arange(1, 101)
    has = np.ones(100, dtype=bool)
    seen: set[str] = set()
    a = _emails(
        np.random.default_rng(1),
        cid,
        first.astype(np.dtypes.StringDType()),
        last.astype(np.dtypes.StringDType()),
        np.full(100, 1990),
        has,
        seen,
    )
    b = _emails(
        np.random.default_rng(1),
        cid + 100,
        first.astype(np.dtypes.StringDType()),
        last.astype(np.dtypes.StringDType()),
        np.full(100, 1990),
        has,
        seen,
    )
    everything = a.tolist() + b.tolist()
    assert len(set(everything)) == 200  # two name pairs only, so most candidates collided
    assert all(e.split("@")[0].rsplit(".", 1)[-1] == str(i) for e, i in zip(b.tolist(), range(101, 201), strict=True))


def test_timestamps_are_aware_and_inside_the_window(db):
    start = datetime.combine(END - timedelta(days=3 * 365 + 1), datetime.min.time(), UTC)
    horizon = datetime.combine(END, datetime.min.time(), UTC)
    with Session(db) as session:
        for column in (
            Customer.created_at,
            Customer.updated_at,
            Order.placed_at,
            Order.created_at,
            Order.updated_at,
            OrderReturn.returned_at,
            Interaction.occurred_at,
            ConsentEvent.recorded_at,
        ):
            lo, hi = session.execute(select(func.min(column), func.max(column))).one()
            assert lo.tzinfo is not None and hi.tzinfo is not None
            assert start <= lo <= hi < horizon, column
        # Nothing happens before the customer existed; returns come after the order.
        for model, column in (
            (Order, Order.placed_at),
            (Interaction, Interaction.occurred_at),
            (ConsentEvent, ConsentEvent.recorded_at),
        ):
            early = session.scalar(
                select(func.count())
                .select_from(model)
                .join(Customer, Customer.id == model.customer_id)
                .where(column < Customer.created_at)
            )
            assert early == 0, model
        late = session.scalar(
            select(func.count())
            .select_from(OrderReturn)
            .join(Order, Order.id == OrderReturn.order_id)
            .where(OrderReturn.returned_at <= Order.placed_at)
        )
        assert late == 0
        assert session.scalar(select(func.count()).where(Customer.acquired_at > END)) == 0


def test_every_enum_value_is_valid_and_combinations_make_sense(db):
    enum_columns = {
        ("customers", "gender"): enums.Gender,
        ("customers", "age_band"): enums.AgeBand,
        ("customers", "income_band"): enums.IncomeBand,
        ("customers", "marital_status"): enums.MaritalStatus,
        ("customers", "preferred_channel"): enums.ContactChannel,
        ("consent_events", "channel"): enums.ContactChannel,
        ("consent_events", "purpose"): enums.ConsentPurpose,
        ("consent_events", "status"): enums.ConsentStatus,
        ("orders", "channel"): enums.SalesChannel,
        ("orders", "status"): enums.OrderStatus,
        ("order_returns", "kind"): enums.ReturnKind,
        ("interactions", "kind"): enums.InteractionKind,
        ("interactions", "channel"): enums.InteractionChannel,
        ("interactions", "direction"): enums.Direction,
        ("stores", "kind"): enums.StoreKind,
        ("products", "tier"): enums.ProductTier,
    }
    for (table, column), enum_cls in enum_columns.items():
        values = {r[0] for r in rows(db, f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")}
        assert values and values <= {m.value for m in enum_cls}, (table, column, values)
    channels = {r[0] for r in rows(db, "SELECT DISTINCT acquisition_channel FROM customers")}
    assert channels <= {c[0] for c in catalogue.ACQUISITION_CHANNELS}

    allowed = {
        "store_visit": ({"in_store"}, {"inbound"}),
        "web_visit": ({"web", "mobile"}, {"inbound"}),
        "call": ({"phone"}, {"inbound", "outbound"}),
        "chat": ({"chat"}, {"inbound"}),
        "email_in": ({"email"}, {"inbound"}),
        "email_out": ({"email"}, {"outbound"}),
        "web_form": ({"web"}, {"inbound"}),
        "note": ({"internal"}, {"internal"}),
        "complaint": ({"phone", "email", "chat", "social", "in_store"}, {"inbound"}),
        "thank_you": ({"post", "email"}, {"outbound"}),
        "feedback": ({"web", "email", "in_store"}, {"inbound"}),
    }
    combos = rows(
        db,
        "SELECT kind, channel, direction, COUNT(*), COUNT(store_id) FROM interactions "
        "GROUP BY kind, channel, direction",
    )
    kinds = set()
    for kind, channel, direction, count, with_store in combos:
        kinds.add(kind)
        assert channel in allowed[kind][0] and direction in allowed[kind][1], (kind, channel, direction)
        assert with_store == (count if kind == "store_visit" else 0)
    assert {"store_visit", "web_visit", "call", "chat", "complaint", "thank_you", "email_in", "email_out"} <= kinds

    # In-store orders name a shop; online and app orders the online store; phone orders none.
    stores = rows(
        db,
        "SELECT o.channel, s.kind, COUNT(*) FROM orders o LEFT JOIN stores s ON s.id = o.store_id "
        "GROUP BY o.channel, s.kind",
    )
    for channel, kind, _ in stores:
        expected = {"in_store": {"shop", "outlet"}, "online": {"online"}, "mobile": {"online"}, "phone": {None}}
        assert kind in expected[channel], (channel, kind)


def test_demographics_are_consistent(db):
    found = rows(
        db,
        "SELECT birthday, birth_year, age_band, household_size, children, marital_status, "
        "created_at, city, country, time_zone FROM customers",
    )
    cities = {c.name: c for c in catalogue.CITIES}
    with_birthday = 0
    for birthday, birth_year, band, household, children, marital, created, city, country, tz in found:
        assert cities[city].country == country and cities[city].time_zone == tz
        if birthday is not None:
            with_birthday += 1
            birthday = birthday if isinstance(birthday, date) else date.fromisoformat(birthday)
            assert birth_year == birthday.year
            age = END.year - birthday.year - ((END.month, END.day) < (birthday.month, birthday.day))
            assert band == age_band(age), (birthday, band)
            signup = created if isinstance(created, datetime) else datetime.fromisoformat(str(created))
            assert birthday.replace(year=birthday.year + 18) <= signup.date() + timedelta(days=1)
        if household is not None:
            assert children is not None and household >= children + 1
            if marital in ("married", "partnered"):
                assert household >= children + 2
    assert with_birthday > 0.6 * len(found)


def test_returns_exist_match_the_status_and_never_exceed_the_total(db):
    returns = rows(
        db,
        "SELECT r.order_id, r.kind, r.quantity, r.amount, r.order_line_id, l.quantity "
        "FROM order_returns r LEFT JOIN order_lines l ON l.id = r.order_line_id",
    )
    assert len(returns) > 0
    refunded: dict[int, Decimal] = defaultdict(Decimal)
    kinds = set()
    for order_id, kind, qty, amount, line_id, line_qty in returns:
        kinds.add(kind)
        refunded[order_id] += money(amount)
        assert money(amount) >= 0
        if kind == "return":
            assert line_id is not None and 1 <= qty <= line_qty
        else:
            assert line_id is None and qty is None
    assert kinds == {"return", "refund"}
    orders = {r[0]: (r[1], money(r[2])) for r in rows(db, "SELECT id, status, total FROM orders")}
    for order_id, amount in refunded.items():
        status, total = orders[order_id]
        assert amount <= total, order_id
        assert status in ("returned", "partially_returned"), (order_id, status)
    flagged = {i for i, (status, _) in orders.items() if status in ("returned", "partially_returned")}
    assert flagged == set(refunded)
    # A fully returned order has every line back.
    full = rows(
        db,
        "SELECT o.id FROM orders o WHERE o.status = 'returned' AND EXISTS (SELECT 1 FROM order_lines l "
        "WHERE l.order_id = o.id AND NOT EXISTS (SELECT 1 FROM order_returns r WHERE r.order_line_id = l.id))",
    )
    assert full == []


def test_parents_buy_more_kids_and_baby_products(db):
    share = dict(
        rows(
            db,
            """
        SELECT CASE WHEN c.children > 0 THEN 'parents' ELSE 'others' END,
               1.0 * SUM(CASE WHEN p.category_path LIKE 'Kids/%' OR p.category_path LIKE 'Baby/%'
                              THEN l.quantity ELSE 0 END) / SUM(l.quantity)
        FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN customers c ON c.id = o.customer_id
        JOIN products p ON p.id = l.product_id
        WHERE c.children IS NOT NULL GROUP BY 1""",
        )
    )
    parents, others = float(share["parents"]), float(share["others"])
    # Expected roughly 0.3 against 0.05; the margin keeps the fixed-seed check far from flaky.
    assert parents > 2 * others and parents - others > 0.1, share


def test_orders_follow_the_season_and_buyers_differ_in_frequency(db):
    with Session(db) as session:
        placed = session.scalars(select(Order.placed_at)).all()
    by_month = defaultdict(int)
    for ts in placed:
        by_month[(ts.year, ts.month)] += 1
    december = sum(v for (y, m), v in by_month.items() if m == 12)
    january = sum(v for (y, m), v in by_month.items() if m == 1)
    assert december > 1.4 * january, (december, january)
    counts = [
        r[0]
        for r in rows(
            db, "SELECT COUNT(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id"
        )
    ]
    assert 0 in counts and 1 in counts  # newsletter-only sign-ups and one-off buyers
    assert max(counts) > 5 * float(np.median(counts))  # heavy-tailed frequency


def test_products_are_never_sold_before_launch_and_have_a_margin(db):
    sold = rows(
        db,
        "SELECT o.placed_at, p.launched_on, p.is_active FROM order_lines l JOIN orders o ON o.id = l.order_id "
        "JOIN products p ON p.id = l.product_id",
    )
    discontinued_sales = []
    for placed, launched, active in sold:
        placed_day = placed.date() if isinstance(placed, datetime) else date.fromisoformat(str(placed)[:10])
        launched = launched if isinstance(launched, date) else date.fromisoformat(launched)
        assert launched <= placed_day
        if not active:
            discontinued_sales.append(placed_day)
    # Discontinued products sold only in the window's first year.
    assert max(discontinued_sales, default=START) <= START + timedelta(days=365)
    for price, cost, path in rows(db, "SELECT price, unit_cost, category_path FROM products"):
        assert 0 < money(cost) < money(price)
        assert path.split("/")[0] in catalogue.TOP_CATEGORIES and "/" in path
    paths = {r[0] for r in rows(db, "SELECT DISTINCT category_path FROM products")}
    assert {"Kids/Toys/Puzzles", "Baby/Feeding", "Women/Shoes", "Electronics/Audio"} <= paths
    assert {r[0] for r in rows(db, "SELECT DISTINCT tier FROM products")} == {"premium", "standard", "value"}


def test_sequences_continue_after_the_generated_ids(fresh_engine):
    generate(fresh_engine, customers=40, seed=SEED, end=END, chunk_size=15)
    with Session(fresh_engine) as session:
        customer = Customer(first_name="New", last_name="Person", interests=[], attributes={})
        session.add(customer)
        session.flush()
        order = Order(
            customer_id=customer.id,
            placed_at=datetime.now(UTC),
            channel=enums.SalesChannel.online,
            currency="USD",
            subtotal=Decimal("10.00"),
            total=Decimal("10.00"),
        )
        session.add(order)
        session.flush()
        session.add(OrderLine(order_id=order.id, line_no=1, product_id=1, quantity=1, unit_price=Decimal("10.00")))
        session.add(
            Interaction(
                customer_id=customer.id,
                kind=enums.InteractionKind.note,
                channel=enums.InteractionChannel.internal,
                direction=enums.Direction.internal,
                payload={},
            )
        )
        session.commit()
        assert customer.id == 41
        assert order.id == session.scalar(select(func.max(Order.id)))
    # Chunked generation still gives contiguous ids and unique emails.
    ids = [r[0] for r in rows(fresh_engine, "SELECT id FROM customers ORDER BY id")]
    assert ids == list(range(1, 42))


def test_progress_reports_rise_to_the_total(fresh_engine):
    seen: list[tuple[str, float, float]] = []
    generate(
        fresh_engine,
        customers=30,
        seed=SEED,
        end=END,
        chunk_size=10,
        progress=lambda label, done, total: seen.append((label, done, total)),
    )
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and done[-1] == 30 and {t for *_, t in seen} == {30}
    assert seen[-1][0] == "Done"
