"""Alembic environment: runs on the connection handed over by patron.migrate."""

from alembic import context

from patron.models import Base
from patron.models.base import Money, UTCDateTime


def render_item(type_, obj, autogen_context):
    """Render our TypeDecorators as their storage types so migrations never import app code."""
    if type_ == "type" and isinstance(obj, Money):
        return "sa.Numeric(12, 2)"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `patron db upgrade` (patron.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
