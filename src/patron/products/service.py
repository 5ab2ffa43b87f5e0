"""Product catalogue and store locations."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patron.errors import Conflict, NotFound
from patron.models import Product, Store
from patron.pagination import Page, paginate, parse_sort
from patron.products import repository
from patron.products.schemas import ProductCreate, ProductUpdate, StoreCreate

SORTS = {
    "id": Product.id,
    "sku": Product.sku,
    "name": Product.name,
    "price": Product.price,
    "created_at": Product.created_at,
}


def get_product(session: Session, product_id: int) -> Product:
    product = repository.get(session, product_id)
    if product is None:
        raise NotFound(f"product {product_id} not found", detail={"field": "product_id"})
    return product


def list_products(
    session: Session, *, sort: str = "sku", limit: int = 50, cursor: str | None = None, **filters
) -> Page[Product]:
    sort_col, descending = parse_sort(sort, SORTS)
    return paginate(
        session,
        repository.list_query(**filters),
        sort_col=sort_col,
        id_col=Product.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )


def create_product(session: Session, *, data: ProductCreate) -> Product:
    if repository.get_by_sku(session, data.sku):
        raise Conflict(f"a product with sku {data.sku} already exists", detail={"field": "sku"})
    product = Product(**data.model_dump())
    session.add(product)
    session.flush()
    return product


def update_product(session: Session, product_id: int, *, data: ProductUpdate) -> Product:
    product = get_product(session, product_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(product, name, value)
    session.flush()
    return product


def delete_product(session: Session, product_id: int) -> None:
    """Delete a product nobody bought; sold products are deactivated instead, keeping history."""
    product = get_product(session, product_id)
    if repository.is_referenced(session, product_id):
        raise Conflict(
            f"product {product.sku} appears on orders; set is_active to false instead of deleting it",
            detail={"field": "product_id"},
        )
    session.delete(product)
    session.flush()


def resolve_product_ids(session: Session, *, ids: list[int], skus: list[str]) -> tuple[set[int], dict[str, int]]:
    """Which of `ids` exist, and the ids of `skus` that exist (for order line validation)."""
    return repository.existing_ids(session, ids) if ids else set(), repository.ids_by_sku(session, skus) if skus else {}


def get_store(session: Session, store_id: int) -> Store:
    store = repository.get_store(session, store_id)
    if store is None:
        raise NotFound(f"store {store_id} not found", detail={"field": "store_id"})
    return store


def store_id_for_code(session: Session, code: str) -> int:
    store = repository.get_store_by_code(session, code)
    if store is None:
        raise NotFound(f"no store with code {code!r}", detail={"field": "store_code"})
    return store.id


def list_stores(session: Session) -> list[Store]:
    return repository.list_stores(session)


def create_store(session: Session, *, data: StoreCreate) -> Store:
    if repository.get_store_by_code(session, data.code):
        raise Conflict(f"a store with code {data.code} already exists", detail={"field": "code"})
    store = Store(**data.model_dump())
    session.add(store)
    session.flush()
    return store
