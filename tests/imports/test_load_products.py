"""Products import end to end: file -> service -> set-based loader -> database, on both backends."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.db import session_scope
from patron.models import Product
from patron.models.enums import ImportStatus
from tests.factories import create_product

CATALOGUE = """sku,name,category_path,brand,tier,price,unit_cost,launched_on,is_active
MUG-01,Stoneware mug,Home/Kitchen/Mugs,Kiln & Co,standard,12.50,4.10,2024-03-01,yes
TEA-02,Sencha 100g,Food/Tea,Leaf,premium,"1,299.99",,2023-11-15,
BAG-03,Tote bag,,,value,3,1.005,,no
"""


def products(engine) -> dict[str, Product]:
    with Session(engine) as s:
        return {p.sku: p for p in s.scalars(select(Product).order_by(Product.id))}


def counts(run) -> tuple[int, int, int, int]:
    return run.inserted, run.updated, run.unchanged, run.rejected


def test_new_products_then_the_same_file_is_unchanged(loader_harness):
    h = loader_harness
    run = h.run("products", CATALOGUE)
    assert run.status == ImportStatus.completed, run.message
    assert counts(run) == (3, 0, 0, 0)

    stored = products(h.engine)
    mug = stored["MUG-01"]
    assert (mug.name, mug.category_path, mug.brand, str(mug.tier)) == (
        "Stoneware mug",
        "Home/Kitchen/Mugs",
        "Kiln & Co",
        "standard",
    )
    assert (mug.price, mug.unit_cost, mug.launched_on, mug.is_active) == (
        Decimal("12.50"),
        Decimal("4.10"),
        date(2024, 3, 1),
        True,
    )
    tea = stored["TEA-02"]
    assert (tea.price, tea.unit_cost, tea.is_active) == (Decimal("1299.99"), None, True)  # active unless told
    bag = stored["BAG-03"]
    assert (bag.category_path, bag.brand, bag.price, bag.unit_cost, bag.is_active) == (
        "",
        None,
        Decimal("3.00"),
        Decimal("1.01"),  # half up at the third decimal
        False,
    )
    assert bag.attributes == {}

    again = h.run("products", CATALOGUE)
    assert counts(again) == (0, 0, 3, 0)
    assert {s: p.updated_at for s, p in products(h.engine).items()} == {s: p.updated_at for s, p in stored.items()}


def test_edited_catalogue_updates_only_what_changed(loader_harness):
    h = loader_harness
    h.run("products", CATALOGUE)
    before = products(h.engine)
    edited = """sku,name,category_path,brand,tier,price,unit_cost,launched_on,is_active
MUG-01,Stoneware mug,Home/Kitchen/Mugs,Kiln & Co,standard,13.00,,,
TEA-02,,,,,,,,no
BAG-03,Tote bag,,,value,3.00,1.01,,
"""
    run = h.run("products", edited)
    assert counts(run) == (0, 2, 1, 0)
    after = products(h.engine)
    mug = after["MUG-01"]
    assert (mug.price, mug.unit_cost, mug.launched_on) == (Decimal("13.00"), Decimal("4.10"), date(2024, 3, 1))
    tea = after["TEA-02"]  # blank cells keep the stored values; only is_active changed
    assert (tea.name, tea.brand, tea.price, tea.is_active) == ("Sencha 100g", "Leaf", Decimal("1299.99"), False)
    assert after["BAG-03"].updated_at == before["BAG-03"].updated_at


def test_a_new_sku_needs_a_name_and_a_price_an_existing_one_does_not(loader_harness):
    h = loader_harness
    with session_scope(h.engine) as s:
        create_product(s, sku="OLD-9", name="Old thing", price=Decimal("5.00"))

    content = """sku,name,price,brand
NEW-1,,9.99,Acme
NEW-2,Widget,,Acme
NEW-3,,,Acme
OLD-9,,,Acme
NEW-4,Gadget,0,
,Nameless,1.00,
"""
    run = h.run("products", content)
    assert counts(run) == (1, 1, 0, 4)
    errors = [(e["row"], e["column"], e["value"], e["reason"]) for e in h.errors(run.id)]
    assert errors == [
        ("2", "name", "NEW-1", "sku NEW-1 is a new product and needs a name and a price; name is empty"),
        ("3", "price", "NEW-2", "sku NEW-2 is a new product and needs a name and a price; price is empty"),
        ("4", "name", "NEW-3", "sku NEW-3 is a new product and needs a name and a price; name and price are empty"),
        ("7", "sku", "", "the sku is empty; a product is found by its sku"),
    ]
    stored = products(h.engine)
    assert set(stored) == {"OLD-9", "NEW-4"}
    assert (stored["OLD-9"].name, stored["OLD-9"].price, stored["OLD-9"].brand) == (
        "Old thing",
        Decimal("5.00"),
        "Acme",
    )
    assert stored["NEW-4"].price == Decimal("0.00")


def test_repeated_sku_keeps_the_last_row_and_reports_the_others(loader_harness):
    h = loader_harness
    content = "sku,name,price\nDUP,First,1.00\nONE,Single,2.00\nDUP,Second,3.00\nDUP,Third,4.00\n"
    run = h.run("products", content)
    assert counts(run) == (2, 0, 0, 2)
    errors = [(e["row"], e["column"], e["value"], e["reason"]) for e in h.errors(run.id)]
    assert errors == [
        ("2", "sku", "DUP", "sku DUP appears again on row 5; that later row is used"),
        ("4", "sku", "DUP", "sku DUP appears again on row 5; that later row is used"),
    ]
    dup = products(h.engine)["DUP"]
    assert (dup.name, dup.price) == ("Third", Decimal("4.00"))


def test_bad_prices_are_reported(loader_harness):
    h = loader_harness
    content = "sku,name,price,tier\nA,Alpha,-1,\nB,Beta,abc,\nC,Gamma,1.00,luxury\nD,Delta,2.50,premium\n"
    run = h.run("products", content)
    assert counts(run) == (1, 0, 0, 3)
    errors = [(e["row"], e["column"], e["value"], e["reason"]) for e in h.errors(run.id)]
    assert errors == [
        ("2", "price", "-1", "must not be negative"),
        ("3", "price", "abc", "not a number"),
        ("4", "tier", "luxury", "must be one of value, standard, premium"),
    ]
    assert set(products(h.engine)) == {"D"}
