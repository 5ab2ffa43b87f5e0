"""The built-in presets on small, realistic files: CDNOW, UCI Online Retail II and Shopify
orders. Expected figures are computed from the files themselves."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.imports.test_orders_import import Imports, counts, d, money

DATA = Path(__file__).parent / "data"
CDNOW = DATA / "cdnow_first_300.txt"


@pytest.fixture
def imp(fresh_engine, tmp_path) -> Imports:
    return Imports(fresh_engine, tmp_path)


# -- CDNOW -------------------------------------------------------------------------------------------


def cdnow_expected() -> dict:
    """What the file says, read without Patron: one purchase per line."""
    purchases = [line.split() for line in CDNOW.read_text().splitlines() if line.strip()]
    return {
        "rows": len(purchases),
        "customers": len({p[0] for p in purchases}),
        "dollars": sum(Decimal(p[4]) for p in purchases),
        "cds": sum(int(p[3]) for p in purchases),
        "first": purchases[0],
        "per_customer": _per_customer(purchases),
    }


def _per_customer(purchases) -> dict[str, tuple[int, Decimal]]:
    out: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
    for p in purchases:
        out[p[0]][0] += 1
        out[p[0]][1] += Decimal(p[4])
    return {k: (n, total) for k, (n, total) in out.items()}


def test_cdnow_orders_customers_and_dollars_match_the_file(imp):
    expected = cdnow_expected()
    assert expected["rows"] == 300 and expected["dollars"] == Decimal("10200.13")  # the slice is what we think

    run = imp.run(imp.file(CDNOW.read_bytes(), "CDNOW_sample.txt"), preset="cdnow")

    assert run.status == "completed", run.message
    assert counts(run) == (300, 300, 0, 0, 0)
    assert run.options["stubs"] == {"customers": expected["customers"], "products": 1}
    assert imp.count("orders") == expected["rows"]
    assert imp.scalar("SELECT COUNT(DISTINCT customer_id) FROM orders") == expected["customers"]
    assert money(imp.scalar("SELECT SUM(total) FROM orders")) == expected["dollars"]
    assert imp.scalar("SELECT SUM(quantity) FROM order_lines") == expected["cds"]
    # Every order's lines add up to its total exactly, rounding included.
    assert (
        imp.scalar(
            "SELECT COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id "
            "WHERE ABS(l.quantity * l.unit_price - l.discount - o.total) > 0.001"
        )
        == 0
    )
    # Per customer (by the master id as written): number of purchases and spend.
    rows = imp.rows(
        "SELECT x.external_id, COUNT(*), SUM(o.total) FROM orders o "
        "JOIN customer_external_ids x ON x.customer_id = o.customer_id AND x.source = 'cdnow' GROUP BY x.external_id"
    )
    assert {ext: (n, money(total)) for ext, n, total in rows} == expected["per_customer"]


def test_cdnow_first_purchase_in_detail(imp):
    master, _, day, cds, dollars = cdnow_expected()["first"]
    imp.run(imp.file(CDNOW.read_bytes(), "CDNOW_sample.txt"), preset="cdnow")

    assert imp.placed_at()["cdnow-1"] == datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    [(ext, customer, currency, channel)] = imp.rows(
        "SELECT o.external_id, x.external_id, o.currency, o.channel FROM orders o JOIN customer_external_ids x "
        "ON x.customer_id = o.customer_id WHERE o.external_id = 'cdnow-1'"
    )
    assert (ext, customer, currency, channel) == ("cdnow-1", master, "USD", "online")
    assert imp.lines()["cdnow-1"][0][1:3] == ("CD", int(cds))
    assert imp.orders()["cdnow-1"][5] == Decimal(dollars)
    assert imp.rows("SELECT sku, name FROM products") == [("CD", "Compact disc")]
    assert (
        str(imp.scalar("SELECT acquired_at FROM customers WHERE id = :c", c=imp.orders()["cdnow-1"][0]))[:10]
        == f"{day[:4]}-{day[4:6]}-{day[6:]}"
    )


def test_cdnow_twice_is_all_unchanged(imp):
    path = imp.file(CDNOW.read_bytes(), "CDNOW_sample.txt")
    imp.run(path, preset="cdnow")
    again = imp.run(path, preset="cdnow", batch_size=64)
    assert counts(again) == (300, 0, 0, 300, 0)
    assert imp.count("orders") == 300 and imp.count("customers") == cdnow_expected()["customers"]


# -- UCI Online Retail II -------------------------------------------------------------------------------

ONLINE_RETAIL = """Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country
489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom
489434,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom
489434,79323W,WHITE CHERRY LIGHTS,12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom
489435,22350,CAT BOWL ,12,2009-12-01 07:46:00,2.55,13085.0,United Kingdom
489435,22349,"DOG BOWL , CHASING BALL DESIGN",12,2009-12-01 07:46:00,3.75,13085.0,United Kingdom
489436,48173C,DOOR MAT BLACK FLOCK ,10,2009-12-01 09:06:00,5.95,13078.0,EIRE
489436,21755,LOVE BUILDING BLOCK WORD,18,2009-12-01 09:06:00,5.45,13078.0,EIRE
489437,22143,CHRISTMAS CRAFT HEART DECORATIONS,6,2009-12-01 09:08:00,2.10,,United Kingdom
489437,22145,CHRISTMAS CRAFT HEART STOCKING,6,2009-12-01 09:08:00,2.10,,United Kingdom
C489449,22087,PAPER BUNTING WHITE LACE,-12,2009-12-01 10:33:00,2.95,16321.0,Australia
C489450,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,-2,2009-12-01 10:40:00,6.95,13085.0,United Kingdom
C489451,22350,CAT BOWL ,-12,2009-12-01 11:00:00,2.55,13085.0,United Kingdom
C489451,22349,"DOG BOWL , CHASING BALL DESIGN",-12,2009-12-01 11:00:00,3.75,13085.0,United Kingdom
538171,22956,36 FOIL HEART CAKE CASES,6,2010-06-09 20:01:00,2.10,17530.0,Unspecified
"""


def test_online_retail_invoices_returns_and_guest_sales(imp):
    run = imp.run(ONLINE_RETAIL, preset="online-retail", name="online_retail_II.csv")

    assert run.status == "completed", run.message
    # 14 rows: 8 sale lines in, 3 returns in, 2 guest lines and 1 unmatched return out.
    assert counts(run) == (14, 11, 0, 0, 3)
    assert run.options["stubs"] == {"customers": 3, "products": 8}
    orders = imp.orders()
    assert {k: v[1:] for k, v in orders.items()} == {
        "489434": (d("245.40"), d("0"), d("0"), d("0"), d("245.40"), "partially_returned"),
        "489435": (d("75.60"), d("0"), d("0"), d("0"), d("75.60"), "returned"),
        "489436": (d("157.60"), d("0"), d("0"), d("0"), d("157.60"), "placed"),
        "538171": (d("12.60"), d("0"), d("0"), d("0"), d("12.60"), "placed"),
    }
    assert imp.rows("SELECT DISTINCT currency, channel FROM orders") == [("GBP", "online")]
    # "13085.0" is customer 13085; EIRE is Ireland; "Unspecified" is no country.
    customers = imp.rows(
        "SELECT x.external_id, c.country FROM customers c JOIN customer_external_ids x ON x.customer_id = c.id "
        "WHERE x.source = 'online-retail' ORDER BY x.external_id"
    )
    assert customers == [("13078", "IE"), ("13085", "GB"), ("17530", None)]
    assert orders["489434"][0] == orders["489435"][0]
    # Times are London time: winter is UTC, summer is an hour ahead.
    placed = imp.placed_at()
    assert placed["489434"] == datetime(2009, 12, 1, 7, 45, tzinfo=UTC)
    assert placed["538171"] == datetime(2010, 6, 9, 19, 1, tzinfo=UTC)
    assert imp.scalar("SELECT name FROM products WHERE sku = '22349'") == "DOG BOWL , CHASING BALL DESIGN"

    returns = imp.rows(
        "SELECT r.external_id, o.external_id, p.sku, r.quantity, r.amount, r.kind FROM order_returns r "
        "JOIN orders o ON o.id = r.order_id JOIN order_lines l ON l.id = r.order_line_id "
        "JOIN products p ON p.id = l.product_id ORDER BY r.external_id"
    )
    assert [(*r[:4], money(r[4]), r[5]) for r in returns] == [
        ("C489450/1", "489434", "85048", 2, d("13.90"), "return"),
        ("C489451/1", "489435", "22350", 12, d("30.60"), "return"),
        ("C489451/2", "489435", "22349", 12, d("45.00"), "return"),
    ]
    errors = imp.errors(run.id)
    assert errors == [
        (9, "customer_id", "", "no customer id or email (a guest sale): skipped"),
        (10, "customer_id", "", "no customer id or email (a guest sale): skipped"),
        (
            11,
            "order_id",
            "",
            "return C489449/1: no earlier purchase of 22087 by customer 16321 to return against",
        ),
    ]


def test_online_retail_twice_does_not_duplicate_returns(imp):
    first = imp.run(ONLINE_RETAIL, preset="online-retail")
    before = imp.rows("SELECT * FROM order_returns ORDER BY id"), imp.rows("SELECT status FROM orders ORDER BY id")

    again = imp.run(ONLINE_RETAIL, preset="online-retail")

    assert counts(again) == (14, 0, 0, 11, 3)
    assert (
        imp.rows("SELECT * FROM order_returns ORDER BY id"),
        imp.rows("SELECT status FROM orders ORDER BY id"),
    ) == before
    assert imp.count("order_returns") == 3
    assert first.rejected == again.rejected


def test_online_retail_in_small_batches_gives_the_same_result(imp):
    run = imp.run(ONLINE_RETAIL, preset="online-retail", batch_size=2)
    assert counts(run) == (14, 11, 0, 0, 3)
    assert {k: v[6] for k, v in imp.orders().items()} == {
        "489434": "partially_returned",
        "489435": "returned",
        "489436": "placed",
        "538171": "placed",
    }
    assert imp.count("order_returns") == 3


def test_online_retail_first_edition_dates(imp):
    # The first "Online Retail" file writes dates as month/day/year and leaves out zeros.
    content = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    )
    mapping = {
        "source": "online-retail",
        "columns": {
            "InvoiceNo": "order_id",
            "StockCode": "sku",
            "Quantity": "quantity",
            "InvoiceDate": {"field": "placed_at", "format": "%m/%d/%Y %H:%M"},
            "UnitPrice": "unit_price",
            "CustomerID": "customer_id",
        },
        "timezone": "Europe/London",
        "unknown_customers": "stub",
        "unknown_products": "stub",
    }
    run = imp.run(content, mapping=mapping)
    assert counts(run) == (1, 1, 0, 0, 0)
    assert imp.placed_at() == {"536365": datetime(2010, 12, 1, 8, 26, tzinfo=UTC)}


# -- Shopify orders ----------------------------------------------------------------------------------

SHOPIFY_HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,Subtotal,"
    "Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,Lineitem quantity,"
    "Lineitem name,Lineitem price,Lineitem compare at price,Lineitem sku,Lineitem requires shipping,"
    "Lineitem taxable,Lineitem fulfillment status,Billing Name,Billing Street,Billing City,Billing Zip,"
    "Billing Province,Billing Country,Billing Phone,Notes,Payment Method,Vendor,Id"
)
SHOPIFY_ROWS = [
    # #1001: two lines, shipping and tax, no discount. Order-level columns (Email too) on the first row only.
    "#1001,jane@example.com,paid,2024-03-05 14:25:01 -0500,fulfilled,2024-03-06 09:00:00 -0500,yes,USD,"
    "50.00,5.00,3.60,58.60,,0.00,Standard,2024-03-05 14:22:10 -0500,1,Linen Shirt - M,30.00,35.00,LS-M,"
    'true,true,fulfilled,Jane Doe,"12 Elm St, Apt 4",Springfield,62704,IL,US,+12175550100,,Shopify Payments,'
    "Acme,5550001001",
    "#1001,,,,,,,,,,,,,,,2024-03-05 14:22:10 -0500,2,Wool Socks,10.00,,WS-1,true,true,fulfilled,,,,,,,,,,Acme,",
    # #1002: a 10% discount code, so Subtotal (45.00) is below the lines' sum (50.00).
    "#1002,sam@example.com,paid,2024-03-07 08:01:00 -0500,unfulfilled,,no,USD,45.00,0.00,0.00,45.00,"
    "SPRING10,5.00,Free,2024-03-07 08:00:59 -0500,5,Wool Socks,10.00,,WS-1,true,true,pending,Sam Q Public,"
    "1 Main St,Portland,97201,OR,US,,,Shopify Payments,Acme,5550001002",
    # #1003: a known customer by email (different case), one line.
    "#1003,Known@Example.com,paid,2024-04-01 10:00:00 -0400,fulfilled,,yes,USD,30.00,4.00,0.00,34.00,,0.00,"
    "Standard,2024-04-01 10:00:00 -0400,1,Linen Shirt - M,30.00,35.00,LS-M,true,true,fulfilled,Kim Known,"
    "3 Oak Rd,Boston,02108,MA,US,,,Shopify Payments,Acme,5550001003",
    # #1004: a total that does not add up: rejected whole.
    "#1004,jane@example.com,paid,2024-04-02 10:00:00 -0400,fulfilled,,yes,USD,20.00,0.00,0.00,25.00,,0.00,"
    "Standard,2024-04-02 10:00:00 -0400,2,Wool Socks,10.00,,WS-1,true,true,fulfilled,Jane Doe,,,,,,,,,Acme,",
]
SHOPIFY = SHOPIFY_HEADER + "\n" + "\n".join(SHOPIFY_ROWS) + "\n"


def test_shopify_orders_export(imp):
    known = imp.customer(email="known@example.com", first_name="Kim", last_name="Known")

    run = imp.run(SHOPIFY, preset="shopify", name="orders_export_1.csv")

    assert run.status == "completed", run.message
    assert counts(run) == (5, 4, 0, 0, 1)
    assert run.options["stubs"] == {"customers": 2, "products": 2}
    orders = imp.orders()
    assert {k: v[1:6] for k, v in orders.items()} == {
        "#1001": (d("50.00"), d("0"), d("5.00"), d("3.60"), d("58.60")),
        # The discount is the gap between the lines (5 x 10.00) and the Subtotal.
        "#1002": (d("50.00"), d("5.00"), d("0"), d("0"), d("45.00")),
        "#1003": (d("30.00"), d("0"), d("4.00"), d("0"), d("34.00")),
    }
    assert imp.lines() == {
        "#1001": [(1, "LS-M", 1, d("30.00"), d("0")), (2, "WS-1", 2, d("10.00"), d("0"))],
        "#1002": [(1, "WS-1", 5, d("10.00"), d("0"))],
        "#1003": [(1, "LS-M", 1, d("30.00"), d("0"))],
    }
    assert imp.placed_at() == {
        "#1001": datetime(2024, 3, 5, 19, 22, 10, tzinfo=UTC),
        "#1002": datetime(2024, 3, 7, 13, 0, 59, tzinfo=UTC),
        "#1003": datetime(2024, 4, 1, 14, 0, tzinfo=UTC),
    }
    assert orders["#1003"][0] == known
    assert imp.rows("SELECT DISTINCT currency FROM orders") == [("USD",)]
    stubs = imp.rows("SELECT email, first_name, last_name FROM customers WHERE id <> :k ORDER BY email", k=known)
    assert stubs == [("jane@example.com", "Jane", "Doe"), ("sam@example.com", "Sam Q", "Public")]
    assert imp.rows("SELECT sku, name FROM products ORDER BY sku") == [
        ("LS-M", "Linen Shirt - M"),
        ("WS-1", "Wool Socks"),
    ]
    assert imp.errors(run.id) == [
        (
            6,
            "order_id",
            "#1004",
            "order #1004: total 25.00 does not equal subtotal - discount + shipping_fee + tax (20.00)",
        )
    ]

    again = imp.run(SHOPIFY, preset="shopify", name="orders_export_1.csv")
    assert counts(again) == (5, 0, 0, 4, 1)


def test_shopify_preset_reads_only_customers_and_orders(imp):
    from patron.errors import ValidationFailed
    from patron.imports.mapping import preset
    from patron.models.enums import ImportKind

    with pytest.raises(ValidationFailed, match="the shopify preset reads customers, orders, not products"):
        preset("shopify", ImportKind.products)
    with pytest.raises(ValidationFailed, match="unknown preset 'magento'; choose from cdnow, online-retail, shopify"):
        imp.start(SHOPIFY, preset="magento")
