"""Demo-like data for the browser tests, written through the real services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from patron.customers import service as customers
from patron.customers.schemas import ConsentChange, CustomerCreate
from patron.db import session_scope
from patron.interactions import service as interactions
from patron.interactions.schemas import InteractionCreate
from patron.orders import service as orders
from patron.orders.schemas import OrderCreate
from patron.products import service as products
from patron.products.schemas import ProductCreate
from patron.users import service as users

ADMIN_EMAIL = "admin@patron.example"
ADMIN_PASSWORD = "correct horse battery"
ADMIN_NAME = "Alex Admin"

PEOPLE = [
    # first, last, city, country, gender, email
    ("Ada", "Lovelace", "London", "GB", "female", "ada@engine.example"),
    ("Charles", "Babbage", "London", "GB", "male", "charles@engine.example"),
    ("Grace", "Hopper", "New York", "US", "female", "grace@navy.example"),
    ("Alan", "Turing", "Manchester", "GB", "male", "alan@bletchley.example"),
    ("Katherine", "Johnson", "Hampton", "US", "female", "katherine@nasa.example"),
    ("Edsger", "Dijkstra", "Austin", "US", "male", "edsger@ut.example"),
    ("Hedy", "Lamarr", "Vienna", "AT", "female", "hedy@spread.example"),
    ("Claude", "Shannon", "Boston", "US", "male", "claude@bell.example"),
]

CATALOG = [
    ("BK-001", "Notes on the Engine", "Books/Science", "Analytical Press", "24.00"),
    ("BK-002", "Poetical Science", "Books/Poetry", "Analytical Press", "18.50"),
    ("ST-001", "Fountain pen", "Stationery/Pens", "Quill & Co", "42.00"),
    ("ST-002", "Squared notebook", "Stationery/Paper", "Quill & Co", "9.90"),
    ("EL-001", "Slide rule", "Instruments", "Faber", "65.00"),
    ("EL-002", "Desk lamp", "Home/Lighting", "Lumen", "89.00"),
]


def months_ago(now: datetime, n: int, day: int = 12) -> datetime:
    index = now.year * 12 + now.month - 1 - n
    return datetime(index // 12, index % 12 + 1, day, 11, 30, tzinfo=UTC)


def seed(engine: Engine, *, now: datetime | None = None) -> dict[str, int]:
    """An admin, eight customers, a catalogue, a year of orders and some touchpoints."""
    now = now or datetime.now(UTC)
    ids: dict[str, int] = {}
    with session_scope(engine) as session:
        admin = users.create_user(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role="admin", name=ADMIN_NAME)
        ids["admin"] = admin.id
        catalog = [
            products.create_product(
                session,
                data=ProductCreate(sku=sku, name=name, category_path=cat, brand=brand, price=Decimal(price)),
            )
            for sku, name, cat, brand, price in CATALOG
        ]
        people = []
        for i, (first, last, city, country, gender, email) in enumerate(PEOPLE):
            c = customers.create_customer(
                session,
                data=CustomerCreate(
                    first_name=first,
                    last_name=last,
                    email=email,
                    city=city,
                    country=country,
                    gender=gender,
                    interests=["science", "books"] if i % 2 == 0 else ["engineering"],
                    acquisition_channel=["referral", "search", "social"][i % 3],
                    preferred_channel="email",
                    language="en",
                    consents=[ConsentChange(channel="email", status="granted", source="signup")],
                ),
                user_id=admin.id,
            )
            people.append(c)
            ids[last.lower()] = c.id
        channels = ["online", "in_store", "online", "mobile", "in_store", "phone"]
        n = 0
        for month in range(11, -1, -1):
            for j, person in enumerate(people):
                if (month + j) % 3:
                    continue
                product = catalog[(month + j) % len(catalog)]
                quantity = 1 + (month + j) % 3
                placed = months_ago(now, month, day=5 + j) if month else now - timedelta(hours=2 + j)
                n += 1
                orders.create_order(
                    session,
                    data=OrderCreate(
                        external_id=f"WEB-{1000 + n}",
                        customer_id=person.id,
                        placed_at=placed,
                        channel=channels[(j + month // 2) % len(channels)],
                        lines=[{"product_id": product.id, "quantity": quantity, "unit_price": product.price}],
                    ),
                )
        ada = people[0]
        touchpoints = [
            ("call", "Asked about a signed copy", None, 20),
            ("email_out", "Thank you for your order", "We hope you enjoy the book.", 9),
            ("complaint", "Pen arrived scratched", "Offered a replacement.", 4),
        ]
        for kind, subject, body, days in touchpoints:
            interactions.create_interaction(
                session,
                data=InteractionCreate(
                    customer_id=ada.id, kind=kind, subject=subject, body=body, occurred_at=now - timedelta(days=days)
                ),
                user_id=admin.id,
            )
    return ids
