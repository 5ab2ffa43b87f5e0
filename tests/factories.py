"""Plain factory helpers: real rows through the real services."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from patron.customers import service as customers
from patron.customers.schemas import CustomerCreate
from patron.interactions import service as interactions
from patron.interactions.schemas import InteractionCreate
from patron.orders import service as orders
from patron.orders.schemas import OrderCreate
from patron.products import service as products
from patron.products.schemas import ProductCreate
from patron.users import service as users

_seq = itertools.count(1)


def create_user(
    session: Session, role: str = "admin", *, email: str | None = None, password: str = "correct horse battery"
):
    return users.create_user(session, email=email or f"user{next(_seq)}@patron.example", password=password, role=role)


def create_token_for(session: Session, role: str = "admin") -> str:
    user = create_user(session, role)
    _, secret = users.create_token(session, email=user.email, role=role)
    return secret


def create_customer(session: Session, **fields):
    n = next(_seq)
    fields.setdefault("first_name", f"First{n}")
    fields.setdefault("last_name", f"Last{n}")
    fields.setdefault("email", f"customer{n}@shop.example")
    return customers.create_customer(session, data=CustomerCreate(**fields))


def create_product(session: Session, **fields):
    n = next(_seq)
    fields.setdefault("sku", f"SKU-{n}")
    fields.setdefault("name", f"Product {n}")
    fields.setdefault("price", Decimal("10.00"))
    return products.create_product(session, data=ProductCreate(**fields))


def create_order(session: Session, customer, lines: list[tuple] | None = None, **fields):
    """lines: [(product, quantity, unit_price)]; defaults to one line of a new product."""
    if lines is None:
        lines = [(create_product(session), 1, Decimal("10.00"))]
    fields.setdefault("placed_at", datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    fields.setdefault("channel", "online")
    data = OrderCreate(
        customer_id=customer.id,
        lines=[{"product_id": p.id, "quantity": q, "unit_price": price} for p, q, price in lines],
        **fields,
    )
    return orders.create_order(session, data=data)


def create_interaction(session: Session, customer, kind: str = "call", **fields):
    fields.setdefault("occurred_at", datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    return interactions.create_interaction(
        session, data=InteractionCreate(customer_id=customer.id, kind=kind, **fields)
    )
