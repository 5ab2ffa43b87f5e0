"""REST API for the product catalogue and store locations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from patron.api.deps import CatalogWriter, PathId, Reader, SessionDep
from patron.products import service
from patron.products.schemas import Product, ProductCreate, ProductPage, ProductUpdate, Store, StoreCreate

router = APIRouter(tags=["products"])


@router.get("/products", response_model=ProductPage, summary="List products")
def list_products(
    session: SessionDep,
    _: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name or SKU.")] = None,
    category: Annotated[str | None, Query(description="A category path; includes its sub-categories.")] = None,
    brand: str | None = None,
    active: bool | None = None,
    sort: str = "sku",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
):
    page = service.list_products(
        session, sort=sort, limit=limit, cursor=cursor, q=q, category=category, brand=brand, active=active
    )
    return ProductPage(items=page.items, next_cursor=page.next_cursor)


@router.post("/products", response_model=Product, status_code=201, summary="Create a product")
def create_product(data: ProductCreate, session: SessionDep, _: CatalogWriter):
    return service.create_product(session, data=data)


@router.get("/products/{product_id}", response_model=Product, summary="Read a product")
def get_product(product_id: PathId, session: SessionDep, _: Reader):
    return service.get_product(session, product_id)


@router.patch("/products/{product_id}", response_model=Product, summary="Update the fields sent")
def update_product(product_id: PathId, data: ProductUpdate, session: SessionDep, _: CatalogWriter):
    return service.update_product(session, product_id, data=data)


@router.delete("/products/{product_id}", status_code=204, summary="Delete a product never sold")
def delete_product(product_id: PathId, session: SessionDep, _: CatalogWriter):
    service.delete_product(session, product_id)
    return Response(status_code=204)


@router.get("/stores", response_model=list[Store], summary="List stores", tags=["stores"])
def list_stores(session: SessionDep, _: Reader):
    return service.list_stores(session)


@router.post("/stores", response_model=Store, status_code=201, summary="Create a store", tags=["stores"])
def create_store(data: StoreCreate, session: SessionDep, _: CatalogWriter):
    return service.create_store(session, data=data)
