from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from patron.models import OrderLine, Product, Store


def get(session: Session, product_id: int) -> Product | None:
    return session.get(Product, product_id)


def get_by_sku(session: Session, sku: str) -> Product | None:
    return session.scalars(select(Product).where(Product.sku == sku)).one_or_none()


def ids_by_sku(session: Session, skus: list[str]) -> dict[str, int]:
    return dict(session.execute(select(Product.sku, Product.id).where(Product.sku.in_(skus))).all())


def existing_ids(session: Session, ids: list[int]) -> set[int]:
    return set(session.scalars(select(Product.id).where(Product.id.in_(ids))))


def list_query(
    *, q: str | None = None, category: str | None = None, brand: str | None = None, active: bool | None = None
) -> Select:
    stmt = select(Product)
    # autoescape: a "%" or "_" typed in a search is a character to find, not a wildcard.
    if q:
        term = q.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(Product.name).contains(term, autoescape=True),
                func.lower(Product.sku).contains(term, autoescape=True),
            )
        )
    if category:
        prefix = category.strip().strip("/")
        stmt = stmt.where(
            or_(Product.category_path == prefix, Product.category_path.startswith(prefix + "/", autoescape=True))
        )
    if brand:
        stmt = stmt.where(Product.brand == brand)
    if active is not None:
        stmt = stmt.where(Product.is_active.is_(active))
    return stmt


def is_referenced(session: Session, product_id: int) -> bool:
    return session.scalar(select(OrderLine.id).where(OrderLine.product_id == product_id).limit(1)) is not None


def get_store(session: Session, store_id: int) -> Store | None:
    return session.get(Store, store_id)


def get_store_by_code(session: Session, code: str) -> Store | None:
    return session.scalars(select(Store).where(Store.code == code)).one_or_none()


def list_stores(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).order_by(Store.code)))
