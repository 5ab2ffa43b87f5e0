from __future__ import annotations

from decimal import Decimal

from tests.factories import create_customer, create_order, create_product

URL = "/api/v1/products"


def test_create_normalises_category_and_refuses_duplicates(admin):
    r = admin.post(
        URL, json={"sku": "P-1", "name": "Puzzle", "category_path": " Kids / Toys /Puzzles", "price": "12.5"}
    )
    assert r.status_code == 201 and r.json()["category_path"] == "Kids/Toys/Puzzles" and r.json()["price"] == "12.50"
    r = admin.post(URL, json={"sku": "P-1", "name": "Other", "price": "1"})
    assert r.status_code == 409 and r.json()["detail"]["field"] == "sku"
    r = admin.post(URL, json={"sku": "has space", "name": "", "category_path": "Kids//Toys", "price": "-1"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["detail"]} == {"sku", "name", "category_path", "price"}


def test_category_filter_takes_the_subtree_only(admin, session):
    toy = create_product(session, category_path="Kids/Toys")
    kid = create_product(session, category_path="Kids")
    create_product(session, category_path="Kidswear/Shirts")
    ids = {p["id"] for p in admin.get(URL, params={"category": "Kids", "limit": 500}).json()["items"]}
    assert ids == {toy.id, kid.id}


def test_sold_products_cannot_be_deleted(admin, session):
    sold, unsold = create_product(session), create_product(session)
    create_order(session, create_customer(session), [(sold, 1, Decimal("1"))])
    r = admin.delete(f"{URL}/{sold.id}")
    assert r.status_code == 409 and "is_active" in r.json()["error"]
    assert admin.delete(f"{URL}/{unsold.id}").status_code == 204
    assert admin.patch(f"{URL}/{sold.id}", json={"is_active": False}).json()["is_active"] is False
    assert admin.patch(f"{URL}/{sold.id}", json={"price": None}).status_code == 422


def test_search_takes_percent_and_underscore_literally(admin, session):
    sale = create_product(session, sku="SALE-50", name="Mug 50% off")
    under = create_product(session, sku="KID_TOY", name="Rattle")
    create_product(session, sku="KIDXTOY", name="Mug 500 ml")

    def found(q):
        return {p["id"] for p in admin.get(URL, params={"q": q, "limit": 500}).json()["items"]}

    # "%" and "_" are characters to find, not LIKE wildcards that match everything.
    assert found("%") == {sale.id}
    assert found("50%") == {sale.id}
    assert found("kid_") == {under.id}


def test_category_filter_takes_underscore_literally(admin, session):
    inside = create_product(session, category_path="Home_Garden/Tools")
    create_product(session, category_path="HomeXGarden/Tools")
    ids = {p["id"] for p in admin.get(URL, params={"category": "Home_Garden", "limit": 500}).json()["items"]}
    assert ids == {inside.id}
