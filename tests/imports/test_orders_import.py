"""Orders imported end to end (service.start + service.execute) from small files into a
fresh migrated database per test, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from patron.db import session_scope
from patron.errors import ValidationFailed
from patron.imports import service
from patron.imports.mapping import Mapping
from patron.models import ImportRun, Order
from patron.models.enums import ImportKind
from tests.factories import create_customer, create_product

HEADER = "order_id,customer_id,placed_at,sku,product_name,quantity,unit_price"


@dataclass
class Imports:
    """Import files into one fresh database and look at what landed."""

    engine: Engine
    tmp_path: Path

    def file(self, content: str | bytes, name: str = "orders.csv") -> Path:
        path = self.tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def start(self, content, *, mapping=None, preset=None, name="orders.csv", dry_run=False, **options) -> int:
        path = content if isinstance(content, Path) else self.file(content, name)
        if options:
            mapping = {**(mapping or {}), **options}
        if isinstance(mapping, dict):
            mapping = Mapping.model_validate(mapping)
        with session_scope(self.engine) as session:
            run = service.start(
                session, kind=ImportKind.orders, path=path, mapping=mapping, preset_name=preset, dry_run=dry_run
            )
            return run.id

    def run(self, content, *, batch_size: int = service.BATCH_SIZE, **kwargs) -> ImportRun:
        return service.execute(self.engine, self.start(content, **kwargs), batch_size=batch_size)

    def errors(self, run_id: int) -> list[tuple[int, str, str, str]]:
        out = io.StringIO()
        with session_scope(self.engine) as session:
            service.write_error_report(session, run_id, out)
        rows = list(csv.reader(io.StringIO(out.getvalue())))
        assert rows[0] == ["row", "column", "value", "reason"]
        return [(int(r), c, v, why) for r, c, v, why in rows[1:]]

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def orders(self) -> dict[str, tuple]:
        """external id -> (customer id, subtotal, discount, shipping, tax, total, status) with money as Decimal."""
        rows = self.rows(
            "SELECT external_id, customer_id, subtotal, discount, shipping_fee, tax, total, status FROM orders"
        )
        return {r[0]: (r[1], *(money(v) for v in r[2:7]), r[7]) for r in rows}

    def lines(self) -> dict[str, list[tuple]]:
        """external id -> [(line_no, sku, quantity, unit_price, discount)] in line order."""
        rows = self.rows(
            "SELECT o.external_id, l.line_no, p.sku, l.quantity, l.unit_price, l.discount FROM order_lines l "
            "JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id "
            "ORDER BY o.external_id, l.line_no"
        )
        out: dict[str, list[tuple]] = {}
        for ext, no, sku, qty, price, disc in rows:
            out.setdefault(ext, []).append((no, sku, qty, money(price), money(disc)))
        return out

    def placed_at(self) -> dict[str, datetime]:
        with session_scope(self.engine) as session:
            return {e: p for e, p in session.execute(select(Order.external_id, Order.placed_at))}

    def count(self, table: str) -> int:
        return self.scalar(f"SELECT COUNT(*) FROM {table}")

    def customer(self, **fields):
        with session_scope(self.engine) as session:
            return create_customer(session, **fields).id

    def product(self, sku: str, price: str = "10.00"):
        with session_scope(self.engine) as session:
            return create_product(session, sku=sku, name=f"Product {sku}", price=Decimal(price)).id


def money(value) -> Decimal:
    """A stored money value (Decimal on PostgreSQL, float on SQLite) as exact cents."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def d(value: str) -> Decimal:
    return Decimal(value)


def counts(run: ImportRun) -> tuple[int, int, int, int, int]:
    return run.rows_read, run.inserted, run.updated, run.unchanged, run.rejected


@pytest.fixture
def imp(fresh_engine, tmp_path) -> Imports:
    return Imports(fresh_engine, tmp_path)


STUBS = {"unknown_customers": "stub", "unknown_products": "stub"}

TWO_ORDERS = f"""{HEADER}
A1,c1,2024-01-02 10:00:00,MUG,Mug,2,5.00
A1,c1,2024-01-02 10:00:00,TEA,Tea,1,3.50
A1,c1,2024-01-02 10:00:00,SPOON,Spoon,3,0.99
B2,c2,2024-01-03T09:30:00Z,TEA,Tea,4,3.50
"""


# -- lines and totals ---------------------------------------------------------------------------


def test_multi_line_orders_land_with_their_lines_and_computed_totals(imp):
    run = imp.run(TWO_ORDERS, **STUBS)

    assert run.status == "completed"
    assert counts(run) == (4, 4, 0, 0, 0)
    assert run.options["stubs"] == {"customers": 2, "products": 3}
    orders = imp.orders()
    assert {k: v[1:] for k, v in orders.items()} == {
        "A1": (d("16.47"), d("0"), d("0"), d("0"), d("16.47"), "placed"),
        "B2": (d("14.00"), d("0"), d("0"), d("0"), d("14.00"), "placed"),
    }
    assert imp.lines() == {
        "A1": [(1, "MUG", 2, d("5.00"), d("0")), (2, "TEA", 1, d("3.50"), d("0")), (3, "SPOON", 3, d("0.99"), d("0"))],
        "B2": [(1, "TEA", 4, d("3.50"), d("0"))],
    }
    assert imp.rows("SELECT channel, currency FROM orders ORDER BY external_id") == [("online", "USD")] * 2
    # Each order belongs to the customer with that external id.
    owners = dict(
        imp.rows(
            "SELECT x.external_id, COUNT(*) FROM orders o "
            "JOIN customer_external_ids x ON x.customer_id = o.customer_id "
            "WHERE x.source = 'import' GROUP BY x.external_id"
        )
    )
    assert owners == {"c1": 1, "c2": 1}
    assert imp.placed_at() == {
        "A1": datetime(2024, 1, 2, 10, tzinfo=UTC),
        "B2": datetime(2024, 1, 3, 9, 30, tzinfo=UTC),
    }


def test_order_level_amounts_and_line_discounts(imp):
    content = (
        "order_id,customer_id,placed_at,sku,quantity,unit_price,line_discount,discount,shipping_fee,tax,total,"
        "currency,channel\n"
        "A1,c1,2024-02-01,MUG,2,5.00,1.00,2.00,4.95,1.10,16.55,EUR,web\n"
        "A1,c1,2024-02-01,TEA,1,3.50,,,,,,,\n"
    )
    run = imp.run(content, **STUBS)

    assert counts(run) == (2, 2, 0, 0, 0)
    # subtotal = (2 * 5.00 - 1.00) + 3.50 = 12.50; total = 12.50 - 2.00 + 4.95 + 1.10
    assert imp.orders()["A1"][1:] == (d("12.50"), d("2.00"), d("4.95"), d("1.10"), d("16.55"), "placed")
    assert imp.lines()["A1"] == [(1, "MUG", 2, d("5.00"), d("1.00")), (2, "TEA", 1, d("3.50"), d("0"))]
    assert imp.rows("SELECT currency, channel FROM orders") == [("EUR", "online")]


def test_a_line_total_without_unit_price_keeps_the_exact_amount(imp):
    content = "order_id,customer_id,placed_at,sku,quantity,line_total\nA1,c1,2024-02-01,CD,3,10.00\n"
    run = imp.run(content, **STUBS)
    assert counts(run) == (1, 1, 0, 0, 0)
    # 10.00 / 3 is rounded up to 3.34 a unit and the 0.02 booked as a line discount.
    assert imp.lines()["A1"] == [(1, "CD", 3, d("3.34"), d("0.02"))]
    assert imp.orders()["A1"][5] == d("10.00")


def test_a_wrong_total_rejects_every_row_of_its_order(imp):
    content = f"""{HEADER},shipping_fee,total
A1,c1,2024-01-02,MUG,Mug,2,5.00,4.95,18.45
A1,c1,2024-01-02,TEA,Tea,1,3.50,,
B2,c2,2024-01-03,TEA,Tea,1,3.50,,99.99
B2,c2,2024-01-03,MUG,Mug,1,5.00,,
"""
    run = imp.run(content, **STUBS)

    assert counts(run) == (4, 2, 0, 0, 2)
    assert imp.orders()["A1"][1:] == (d("13.50"), d("0"), d("4.95"), d("0"), d("18.45"), "placed")
    assert "B2" not in imp.orders()
    why = "order B2: total 99.99 does not equal subtotal - discount + shipping_fee + tax (8.50)"
    assert imp.errors(run.id) == [(4, "order_id", "B2", why), (5, "order_id", "B2", why)]


@pytest.mark.parametrize(
    ("bad_line", "error"),
    [
        ("A1,c1,2024-01-02,TEA,Tea,x,3.50", (3, "quantity", "x", "not a whole number")),
        (
            "A1,c1,2024-01-02,TEA,Tea,-1,3.50",
            (3, "quantity", "", "quantity must be positive (returns are recorded separately)"),
        ),
        (
            "A1,c1,2024-01-02,TEA,Tea,0,3.50",
            (3, "quantity", "", "quantity must be positive (returns are recorded separately)"),
        ),
        ("A1,c1,2024-01-02,TEA,Tea,1,3,50", None),  # a stray delimiter: reported by the reader
        ("A1,c1,2024-01-02,TEA,Tea,1,three", (3, "unit_price", "three", "not a number")),
        (
            "A1,c1,2024-13-02,TEA,Tea,1,3.50",
            (3, "placed_at", "2024-13-02", "not a date and time (expected ISO 8601, e.g. 2026-11-23 10:15:00)"),
        ),
        ('A1,c1,2024-01-02,TEA,"Tea"s,1,3.50', None),  # a stray quote: reported by the reader
        ("A1,c1,2024-01-02,,Tea,1,3.50", (3, "sku", "", "no sku for this order line")),
    ],
)
def test_a_bad_row_rejects_its_whole_order(imp, bad_line, error):
    content = (
        f"{HEADER}\nA1,c1,2024-01-02,MUG,Mug,2,5.00\n{bad_line}\n"
        "A1,c1,2024-01-02,SPOON,Spoon,1,1.00\nB2,c2,2024-01-03,TEA,Tea,1,3.50\n"
    )
    run = imp.run(content, **STUBS)

    assert counts(run) == (4, 1, 0, 0, 3)
    assert set(imp.orders()) == {"B2"}
    errors = imp.errors(run.id)
    row3 = [e for e in errors if e[0] == 3]
    assert len(row3) == 1
    if error is None:
        assert row3[0][3].startswith(("has 8 fields where 7", "stray quote"))
    else:
        assert row3[0] == error
    because = "order A1 has a rejected row (3), so none of it is imported"
    assert [e for e in errors if e[0] != 3] == [(2, "order_id", "A1", because), (4, "order_id", "A1", because)]
    assert imp.count("order_lines") == 1


def test_rows_of_one_order_naming_different_customers_are_rejected(imp):
    content = f"{HEADER}\nA1,c1,2024-01-02,MUG,Mug,2,5.00\nA1,c9,2024-01-02,TEA,Tea,1,3.50\n"
    run = imp.run(content, **STUBS)
    assert run.status == "failed"
    assert [e[3] for e in imp.errors(run.id)] == ["order A1: rows of this order name different customers"] * 2


# -- orders without lines ----------------------------------------------------------------------------


def test_order_level_only_files(imp):
    content = """order_id,customer_email,placed_at,subtotal,discount,shipping_fee,tax,total,status
W1,ann@shop.example,2024-03-01 12:00,20.00,,,,20.00,
W2,bo@shop.example,2024-03-02 12:00,,5.00,3.00,2.00,50.00,cancelled
W3,ann@shop.example,2024-03-03 12:00,10.00,,,,11.00,
W4,cy@shop.example,2024-03-04 12:00,,,,,,
W5,bo@shop.example,2024-03-05 12:00,"1,000.00",,,,,
"""
    run = imp.run(content, unknown_customers="stub")

    assert counts(run) == (5, 3, 0, 0, 2)
    assert {k: v[1:] for k, v in imp.orders().items()} == {
        "W1": (d("20.00"), d("0"), d("0"), d("0"), d("20.00"), "placed"),
        # subtotal from the total: 50.00 - 3.00 - 2.00 + 5.00
        "W2": (d("50.00"), d("5.00"), d("3.00"), d("2.00"), d("50.00"), "cancelled"),
        "W5": (d("1000.00"), d("0"), d("0"), d("0"), d("1000.00"), "placed"),
    }
    assert imp.count("order_lines") == 0
    assert imp.errors(run.id) == [
        (4, "order_id", "W3", "order W3: total 11.00 does not equal subtotal - discount + shipping_fee + tax (10.00)"),
        (5, "order_id", "W4", "order W4: give subtotal or total for an order without lines"),
    ]
    # Stubs are made from the email: one customer per address, found again by it.
    assert sorted(imp.rows("SELECT email FROM customers")) == [("ann@shop.example",), ("bo@shop.example",)]
    owners = imp.rows(
        "SELECT o.external_id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.external_id"
    )
    assert owners == [("W1", "ann@shop.example"), ("W2", "bo@shop.example"), ("W5", "bo@shop.example")]


# -- idempotency --------------------------------------------------------------------------------------


def test_the_same_file_twice_changes_nothing_the_second_time(imp):
    first = imp.run(TWO_ORDERS, **STUBS)
    before = (imp.rows("SELECT * FROM orders ORDER BY id"), imp.rows("SELECT * FROM order_lines ORDER BY id"))
    customers, products = imp.count("customers"), imp.count("products")

    second = imp.run(TWO_ORDERS, **STUBS)

    assert counts(first) == (4, 4, 0, 0, 0)
    assert counts(second) == (4, 0, 0, 4, 0)
    assert second.options["stubs"] == {}
    assert (imp.rows("SELECT * FROM orders ORDER BY id"), imp.rows("SELECT * FROM order_lines ORDER BY id")) == before
    assert (imp.count("customers"), imp.count("products")) == (customers, products)
    assert second.message == "4 rows read: 0 inserted, 0 updated, 4 unchanged, 0 rejected"


def test_an_edited_file_updates_only_the_order_that_changed(imp):
    imp.run(TWO_ORDERS, **STUBS)
    b2_before = imp.rows("SELECT * FROM orders WHERE external_id = 'B2'")
    b2_lines = imp.rows("SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.external_id = 'B2'")
    a1_id = imp.scalar("SELECT id FROM orders WHERE external_id = 'A1'")

    edited = TWO_ORDERS.replace("A1,c1,2024-01-02 10:00:00,TEA,Tea,1,3.50\n", "").replace(
        "SPOON,Spoon,3,0.99", "SPOON,Spoon,4,0.99"
    )
    run = imp.run(edited, **STUBS)

    assert counts(run) == (3, 0, 2, 1, 0)
    assert imp.scalar("SELECT id FROM orders WHERE external_id = 'A1'") == a1_id
    assert imp.orders()["A1"][1:] == (d("13.96"), d("0"), d("0"), d("0"), d("13.96"), "placed")
    assert imp.lines()["A1"] == [(1, "MUG", 2, d("5.00"), d("0")), (2, "SPOON", 4, d("0.99"), d("0"))]
    assert imp.count("order_lines") == 3  # the removed line is gone, not left behind
    assert imp.rows("SELECT * FROM orders WHERE external_id = 'B2'") == b2_before
    assert (
        imp.rows("SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.external_id = 'B2'")
        == b2_lines
    )


def test_a_header_only_change_updates_the_order_and_keeps_its_lines(imp):
    imp.run(TWO_ORDERS, **STUBS)
    line_ids = imp.rows("SELECT id FROM order_lines ORDER BY id")
    run = imp.run(TWO_ORDERS.replace("2024-01-03T09:30:00Z", "2024-01-03T10:30:00Z"), **STUBS)
    assert counts(run) == (4, 0, 1, 3, 0)
    assert imp.rows("SELECT id FROM order_lines ORDER BY id") == line_ids


# -- customers and products ---------------------------------------------------------------------------


def test_unknown_customers_are_rejected_with_the_reason_by_default(imp):
    known = imp.customer(external_ids={"import": "c1"})
    imp.product("MUG")
    imp.product("TEA")
    imp.product("SPOON")

    run = imp.run(TWO_ORDERS)

    assert counts(run) == (4, 3, 0, 0, 1)
    assert imp.orders()["A1"][0] == known
    assert "B2" not in imp.orders()
    assert imp.errors(run.id) == [
        (5, "order_id", "B2", "unknown customer c2 (not in Patron; import customers first or allow stubs)")
    ]
    assert imp.count("customers") == 1


def test_unknown_customers_become_stubs_when_allowed(imp):
    imp.product("MUG")
    imp.product("TEA")
    imp.product("SPOON")
    content = TWO_ORDERS.replace("customer_id", "customer_id,customer_name,customer_country")
    content = content.replace(",c1,", ",c1,Ann Lee,France,").replace(",c2,", ",c2,Bo,Unspecified,")

    run = imp.run(content, unknown_customers="stub", source="shop")

    assert counts(run) == (4, 4, 0, 0, 0)
    assert run.options["stubs"] == {"customers": 2}
    stubs = imp.rows(
        "SELECT x.external_id, c.first_name, c.last_name, c.country, c.acquired_at, c.acquisition_channel "
        "FROM customers c JOIN customer_external_ids x ON x.customer_id = c.id WHERE x.source = 'shop' "
        "ORDER BY x.external_id"
    )
    assert [s[:4] for s in stubs] == [("c1", "Ann", "Lee", "FR"), ("c2", "", "Bo", None)]
    assert [str(s[4])[:10] for s in stubs] == ["2024-01-02", "2024-01-03"]
    assert {s[5] for s in stubs} == {"import"}


def test_customers_are_found_by_external_id_of_the_mapping_source_or_by_email(imp):
    by_id = imp.customer(external_ids={"shop": "c1"})
    imp.customer(external_ids={"other": "c2"})  # another system's c2 is somebody else
    by_email = imp.customer(email="bo@shop.example")
    content = """order_id,customer_id,customer_email,placed_at,total
X1,c1,,2024-01-01,5.00
X2,c2,,2024-01-01,5.00
X3,,BO@shop.example,2024-01-01,5.00
"""
    run = imp.run(content, source="shop")
    assert counts(run) == (3, 2, 0, 0, 1)
    assert {k: v[0] for k, v in imp.orders().items()} == {"X1": by_id, "X3": by_email}
    assert imp.errors(run.id)[0][3].startswith("unknown customer c2")


def test_unknown_products_are_rejected_or_stubbed(imp):
    imp.customer(external_ids={"import": "c1"})
    imp.customer(external_ids={"import": "c2"})
    imp.product("MUG", "5.00")

    rejected = imp.run(TWO_ORDERS)
    assert counts(rejected) == (4, 0, 0, 0, 4)
    assert rejected.status == "failed"
    assert [e[3] for e in imp.errors(rejected.id)] == [
        "unknown product SPOON (import products first or allow stubs)"
    ] * 3 + ["unknown product TEA (import products first or allow stubs)"]
    assert imp.count("products") == 1

    stubbed = imp.run(TWO_ORDERS, unknown_products="stub")
    assert counts(stubbed) == (4, 4, 0, 0, 0)
    assert stubbed.options["stubs"] == {"products": 2}
    assert imp.rows("SELECT sku, name, price FROM products ORDER BY sku") == [
        ("MUG", "Product MUG", imp.scalar("SELECT price FROM products WHERE sku = 'MUG'")),
        ("SPOON", "Spoon", imp.scalar("SELECT price FROM products WHERE sku = 'SPOON'")),
        ("TEA", "Tea", imp.scalar("SELECT price FROM products WHERE sku = 'TEA'")),
    ]
    assert [money(p) for (p,) in imp.rows("SELECT price FROM products ORDER BY sku")] == [
        d("5.00"),
        d("0.99"),
        d("3.50"),
    ]


def test_an_order_of_a_merged_customer_lands_on_the_survivor(imp):
    survivor = imp.customer(external_ids={"import": "c1"}, email="ann@shop.example")
    merged = imp.customer(external_ids={"import": "c2"}, email="ann.old@shop.example")
    imp.execute("UPDATE customers SET merged_into_id = :s WHERE id = :m", s=survivor, m=merged)
    content = """order_id,customer_id,customer_email,placed_at,total
M1,c2,,2024-01-01,5.00
M2,,ann.old@shop.example,2024-01-02,6.00
"""
    run = imp.run(content)
    assert counts(run) == (2, 2, 0, 0, 0)
    assert {k: v[0] for k, v in imp.orders().items()} == {"M1": survivor, "M2": survivor}


def test_an_unknown_store_code_is_rejected(imp):
    imp.customer(external_ids={"import": "c1"})
    content = "order_id,customer_id,placed_at,total,store_code\nS1,c1,2024-01-01,5.00,LDN-01\nS2,c1,2024-01-01,5.00,\n"
    run = imp.run(content)
    assert counts(run) == (2, 1, 0, 0, 1)
    assert imp.errors(run.id) == [(2, "order_id", "S1", "unknown store code LDN-01")]


# -- batches -----------------------------------------------------------------------------------------


def three_line_orders(n: int) -> str:
    rows = [HEADER]
    for i in range(n):
        for j, sku in enumerate(["MUG", "TEA", "SPOON"]):
            rows.append(f"O{i},c{i % 4},2024-01-{1 + i % 28:02d},{sku},{sku.title()},{j + 1},{i + j}.25")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("batch_size", [1, 2, 4, 5])
def test_batch_boundaries_never_split_an_order(imp, batch_size):
    run = imp.run(three_line_orders(7), batch_size=batch_size, **STUBS)

    assert counts(run) == (21, 21, 0, 0, 0)
    assert run.records_done == 21
    lines = imp.lines()
    assert len(lines) == 7
    for i in range(7):
        assert lines[f"O{i}"] == [
            (1, "MUG", 1, money(f"{i}.25"), d("0")),
            (2, "TEA", 2, money(f"{i + 1}.25"), d("0")),
            (3, "SPOON", 3, money(f"{i + 2}.25"), d("0")),
        ]
        expected = money(f"{i}.25") + 2 * money(f"{i + 1}.25") + 3 * money(f"{i + 2}.25")
        assert imp.orders()[f"O{i}"][5] == expected


def test_an_order_coming_back_later_in_the_file_is_rejected(imp):
    content = f"""{HEADER}
A1,c1,2024-01-02,MUG,Mug,1,5.00
A1,c1,2024-01-02,TEA,Tea,1,3.50
B2,c2,2024-01-03,TEA,Tea,1,3.50
B2,c2,2024-01-03,MUG,Mug,1,5.00
C3,c1,2024-01-04,MUG,Mug,1,5.00
A1,c1,2024-01-02,SPOON,Spoon,1,1.00
"""
    run = imp.run(content, batch_size=2, **STUBS)

    assert counts(run) == (6, 5, 0, 0, 1)
    assert imp.errors(run.id) == [
        (
            7,
            "order_id",
            "A1",
            "order A1 appears again after other orders in this file; keep the rows of each order together",
        )
    ]
    assert imp.lines()["A1"] == [(1, "MUG", 1, d("5.00"), d("0")), (2, "TEA", 1, d("3.50"), d("0"))]


# -- whole-file outcomes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "missing"),
    [
        ("order_id,customer_id,sku,quantity\nA1,c1,MUG,1\n", "placed_at"),
        ("order_id,placed_at,total\nA1,2024-01-01,5.00\n", "customer_id or customer_email"),
        ("customer_id,placed_at,total\nc1,2024-01-01,5.00\n", "order_id"),
    ],
)
def test_a_missing_required_column_is_named(imp, content, missing):
    with pytest.raises(ValidationFailed) as exc:
        imp.start(content)
    assert f"the file has no column for {missing} (columns found: " in exc.value.message
    assert imp.count("import_runs") == 0


def test_a_file_with_no_valid_row_fails_with_a_message(imp):
    content = f"{HEADER}\nA1,c1,someday,MUG,Mug,1,5.00\nA2,c1,2024-01-01,MUG,Mug,-1,5.00\n\n"
    run = imp.run(content, **STUBS)
    assert run.status == "failed"
    assert run.message == "no row of the file is valid; see the error report"
    assert counts(run) == (3, 0, 0, 0, 3)
    assert [e[0] for e in imp.errors(run.id)] == [2, 3, 4]
    assert imp.count("orders") == 0


def test_a_file_with_only_a_header_fails_with_a_message(imp):
    run = imp.run(HEADER + "\n", **STUBS)
    assert (run.status, run.message) == ("failed", "the file has no data rows")


def test_a_dry_run_counts_everything_and_saves_nothing(imp):
    content = TWO_ORDERS + "C3,c3,2024-01-04,MUG,Mug,0,5.00\n"
    run = imp.run(content, dry_run=True, batch_size=2, **STUBS)

    assert run.status == "completed" and run.dry_run
    assert counts(run) == (5, 4, 0, 0, 1)
    assert run.message.endswith("(dry run: nothing was saved)")
    for table in ("orders", "order_lines", "customers", "products", "customer_external_ids"):
        assert imp.count(table) == 0, table
    # The report says what a real run would reject.
    assert imp.errors(run.id) == [(6, "quantity", "", "quantity must be positive (returns are recorded separately)")]

    real = imp.run(content, **STUBS)
    assert counts(real) == counts(run)


# -- file formats ----------------------------------------------------------------------------------


ROWS = [
    ["A1", "c1", "2024-01-02 10:00:00", "MUG", "Mugé", "2", "5.00"],
    ["A1", "c1", "2024-01-02 10:00:00", "TEA", "Tea", "1", "3.50"],
    ["B2", "c2", "2024-01-03 09:30:00", "TEA", "Tea", "4", "3.50"],
]


def csv_bytes(delimiter=",", encoding="utf-8", header=True) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    if header:
        writer.writerow(HEADER.split(","))
    writer.writerows(ROWS)
    return buf.getvalue().encode(encoding)


def formats(tmp_path: Path) -> dict[str, tuple[str, bytes, dict]]:
    names = HEADER.split(",")
    parquet = tmp_path / "src.parquet"
    pq.write_table(pa.table({n: [r[i] for r in ROWS] for i, n in enumerate(names)}), parquet)
    jsonl = "".join(json.dumps(dict(zip(names, r, strict=True))) + "\n" for r in ROWS).encode()
    return {
        "csv": ("o.csv", csv_bytes(), {}),
        "semicolon latin-1": ("o.csv", csv_bytes(";", "latin-1"), {}),
        "tab": ("o.tsv", csv_bytes("\t"), {}),
        "pipe gzip": ("o.csv.gz", gzip.compress(csv_bytes("|")), {}),
        "no header": (
            "o.csv",
            csv_bytes(header=False),
            {"header": False, "columns": {str(i + 1): n for i, n in enumerate(names)}},
        ),
        "jsonl": ("o.jsonl", jsonl, {}),
        "jsonl gzip": ("o.jsonl.gz", gzip.compress(jsonl), {}),
        "parquet": ("o.parquet", parquet.read_bytes(), {}),
    }


@pytest.mark.parametrize(
    "fmt", ["csv", "semicolon latin-1", "tab", "pipe gzip", "no header", "jsonl", "jsonl gzip", "parquet"]
)
def test_every_file_format_imports_the_same_orders(imp, fmt):
    name, content, mapping = formats(imp.tmp_path)[fmt]
    run = imp.run(imp.file(content, name), mapping={**mapping, **STUBS})

    assert counts(run) == (3, 3, 0, 0, 0)
    assert imp.lines() == {
        "A1": [(1, "MUG", 2, d("5.00"), d("0")), (2, "TEA", 1, d("3.50"), d("0"))],
        "B2": [(1, "TEA", 4, d("3.50"), d("0"))],
    }
    assert imp.scalar("SELECT name FROM products WHERE sku = 'MUG'") == "Mugé"
    assert {k: v[5] for k, v in imp.orders().items()} == {"A1": d("13.50"), "B2": d("14.00")}


# -- batch size and interruptions never change the outcome ----------------------------------------------

MESSY = f"""{HEADER}
A1,c1,2024-01-02,MUG,Mug,2,5.00

A1,c1,2024-01-02,TEA,Tea,1,3.50
B2,c2,2024-01-03,TEA,Tea,1,3.50
B2,c2,2024-01-03,"MUG"x,Mug,1,5.00
B2,c2,2024-01-03,SPOON,Spoon,1,1.00
C3,c3,2024-01-04,MUG,Mug,1,5.00
"oops
D4,c4,2024-01-05,TEA,Tea,3,3.50
D4,c4,2024-01-05,MUG,Mug,0,5.00
E5,c1,2024-01-06,SPOON,Spoon,10,1.00
E5,c1,2024-01-06,MUG,Mug,1,5.00
E5,c1,2024-01-06,TEA,Tea,1,3.50
"""


def outcome(imp: Imports, run: ImportRun):
    return counts(run), imp.errors(run.id), imp.lines(), {k: v[1:] for k, v in imp.orders().items()}


@pytest.fixture
def reference(database_factory, tmp_path_factory):
    """MESSY imported in one batch, in a database of its own."""
    engine = database_factory.new_engine()
    try:
        ref = Imports(engine, tmp_path_factory.mktemp("reference"))
        yield outcome(ref, ref.run(MESSY, **STUBS))
    finally:
        engine.dispose()


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 7])
def test_the_batch_size_does_not_change_the_outcome(imp, reference, batch_size):
    run = imp.run(MESSY, batch_size=batch_size, **STUBS)
    assert outcome(imp, run) == reference
    assert run.records_done == 8  # the unclosed quote's record runs to the end of the file


def test_messy_file_outcome_in_detail(reference):
    run_counts, errors, lines, orders = reference
    # A1 has an empty line inside (reported, harmless); B2 has an unreadable row inside, so it
    # goes whole; the unclosed quote after C3 swallows the rest of the file as one record.
    assert run_counts == (8, 3, 0, 0, 5)
    assert set(orders) == {"A1", "C3"}
    because = "order B2 has a rejected row (6), so none of it is imported"
    assert errors == [
        (3, "", "", "empty line"),
        (5, "order_id", "B2", because),
        (6, "", "", "stray quote: ',' expected after '\"' (quote the whole field and double any quote inside it)"),
        (7, "order_id", "B2", because),
        (9, "", "", "a quote opened on line 9 is never closed (the record runs to line 14, the end of the file)"),
    ]
    assert lines["A1"] == [(1, "MUG", 2, d("5.00"), d("0")), (2, "TEA", 1, d("3.50"), d("0"))]


CLEAN = three_line_orders(6).replace(
    "\nO2,", "\n\nO2,", 1
)  # an empty line in the middle: rejected records count towards the resume offset too


def as_format(tmp_path: Path, fmt: str) -> Path:
    rows = list(csv.reader(io.StringIO(CLEAN)))
    names, body = rows[0], rows[1:]
    if fmt == "csv":
        return _write(tmp_path / "o.csv", CLEAN.encode())
    if fmt == "csv.gz":
        return _write(tmp_path / "o.csv.gz", gzip.compress(CLEAN.encode()))
    body = [r for r in body if r]
    if fmt == "jsonl":
        data = "".join(json.dumps(dict(zip(names, r, strict=True))) + "\n" for r in body)
        return _write(tmp_path / "o.jsonl", data.encode())
    path = tmp_path / "o.parquet"
    pq.write_table(pa.table({n: [r[i] for r in body] for i, n in enumerate(names)}), path, row_group_size=4)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Interrupted(BaseException):
    """Stands in for a kill: escapes execute() like KeyboardInterrupt, leaving the run 'running'."""


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "jsonl", "parquet"])
@pytest.mark.parametrize("stop_after", [1, 2, 4])
def test_an_interrupted_import_resumes_exactly(imp, fmt, stop_after):
    path = as_format(imp.tmp_path, fmt)
    run_id = imp.start(path, **STUBS)
    seen = []

    def crash(run, _position):
        seen.append(run.records_done)
        if len(seen) == stop_after:
            raise Interrupted

    with pytest.raises(Interrupted):
        service.execute(imp.engine, run_id, batch_size=4, progress=crash)
    # The batch being written when it stopped was rolled back; the ones before are in.
    committed = seen[-2] if len(seen) > 1 else 0
    with session_scope(imp.engine) as session:
        run = service.resumable_run(session)
        assert (run.id, run.status, run.records_done) == (run_id, "running", committed)
    assert imp.count("order_lines") == imp.scalar("SELECT inserted FROM import_runs")

    run = service.execute(imp.engine, run_id, batch_size=4)

    total = 19 if fmt.startswith("csv") else 18
    assert run.status == "completed"
    assert (run.rows_read, run.records_done, run.inserted, run.updated, run.unchanged) == (total, total, 18, 0, 0)
    assert run.rejected == total - 18
    assert imp.count("orders") == 6 and imp.count("order_lines") == 18
    assert set(imp.lines()) == {f"O{i}" for i in range(6)}
    assert all(len(lines) == 3 for lines in imp.lines().values())


def test_bytes_not_in_the_files_encoding_reject_the_row_and_its_order(imp):
    content = (
        f"{HEADER}\nA1,c1,2024-01-02,MUG,Mug,1,5.00\nA1,c1,2024-01-02,TEA,Th\xe9 vert,1,3.50\n"
        "A1,c1,2024-01-02,SPOON,Spoon,1,1.00\nB2,c2,2024-01-03,TEA,Tea,1,3.50\n"
    ).encode("latin-1")
    run = imp.run(content, encoding="utf-8", **STUBS)
    assert counts(run) == (4, 1, 0, 0, 3)
    errors = imp.errors(run.id)
    assert errors[1] == (3, "product_name", "Thé vert", "bytes that are not valid utf-8 (try --encoding latin-1)")
    assert [e[0] for e in errors] == [2, 3, 4] and set(imp.orders()) == {"B2"}
    # Read as Latin-1 (what the autodetection picks for this file) the same file imports whole.
    again = imp.run(content, **STUBS)
    assert counts(again) == (4, 3, 0, 1, 0)  # B2 is already in
    assert imp.scalar("SELECT name FROM products WHERE sku = 'TEA'") == "Tea"  # the stub keeps its first name
