"""analysis runs, customer scores and insights

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:39:43.826917
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "completed",
                "partial",
                "failed",
                name="analysisstatus",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("requested_model", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=20), nullable=True),
        sa.Column(
            "settings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "fits", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "validation", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("tracking_png", sa.LargeBinary(), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.Column(
            "timings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_runs")),
    )
    with op.batch_alter_table("analysis_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analysis_runs_as_of"), ["as_of"], unique=False)

    op.create_table(
        "customer_insights",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("favourite_category", sa.String(length=300), nullable=True),
        sa.Column("favourite_brand", sa.String(length=100), nullable=True),
        sa.Column("brand_loyalty", sa.Float(), nullable=True),
        sa.Column("discount_share", sa.Float(), nullable=True),
        sa.Column("price_index", sa.Float(), nullable=True),
        sa.Column("premium_share", sa.Float(), nullable=True),
        sa.Column("preferred_channel", sa.String(length=20), nullable=True),
        sa.Column("has_children_signal", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_insights")),
    )
    op.create_table(
        "customer_scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.Float(), nullable=True),
        sa.Column("age_days", sa.Float(), nullable=True),
        sa.Column("days_since_last", sa.Float(), nullable=True),
        sa.Column("revenue", sa.Numeric(12, 2), nullable=False),
        sa.Column("average_spend", sa.Numeric(12, 2), nullable=True),
        sa.Column("r_score", sa.SmallInteger(), nullable=True),
        sa.Column("f_score", sa.SmallInteger(), nullable=True),
        sa.Column("m_score", sa.SmallInteger(), nullable=True),
        sa.Column(
            "rfm_segment",
            sa.Enum(
                "Champions",
                "Loyal",
                "Potential loyalist",
                "New",
                "Promising",
                "Need attention",
                "About to sleep",
                "At risk",
                "Can't lose them",
                "Hibernating",
                "Lost",
                name="rfmsegment",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("expected_30", sa.Float(), nullable=True),
        sa.Column("expected_90", sa.Float(), nullable=True),
        sa.Column("expected_365", sa.Float(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column(
            "churn_band",
            sa.Enum("low", "medium", "high", "lost", name="churnband", native_enum=False, create_constraint=True),
            nullable=True,
        ),
        sa.Column("expected_spend", sa.Numeric(12, 2), nullable=True),
        sa.Column("clv", sa.Numeric(12, 2), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("pk_customer_scores")),
    )
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.create_index("ix_customer_scores_customer_id_as_of", ["customer_id", "as_of"], unique=False)

    _create_cascade_triggers()


# customer_scores and customer_insights have no foreign keys (per-row checks made a
# million-row write three times slower on PostgreSQL; see models/analytics.py); these
# triggers do what ON DELETE CASCADE did. On SQLite, a later batch_alter_table of
# customers or analysis_runs recreates the table and drops its triggers: such a
# migration must create them again (_create_cascade_triggers).
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER customers_delete_analytics AFTER DELETE ON customers
    BEGIN
        DELETE FROM customer_scores WHERE customer_id = OLD.id;
        DELETE FROM customer_insights WHERE customer_id = OLD.id;
    END""",
    """CREATE TRIGGER analysis_runs_delete_scores AFTER DELETE ON analysis_runs
    BEGIN
        DELETE FROM customer_scores WHERE run_id = OLD.id;
    END""",
]
_POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION customers_delete_analytics() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM customer_scores WHERE customer_id = OLD.id;
        DELETE FROM customer_insights WHERE customer_id = OLD.id;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER customers_delete_analytics AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION customers_delete_analytics()""",
    """CREATE FUNCTION analysis_runs_delete_scores() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM customer_scores WHERE run_id = OLD.id;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER analysis_runs_delete_scores AFTER DELETE ON analysis_runs
    FOR EACH ROW EXECUTE FUNCTION analysis_runs_delete_scores()""",
]


def _create_cascade_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRESQL_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        op.execute(statement)


def _drop_cascade_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS customers_delete_analytics ON customers")
        op.execute("DROP TRIGGER IF EXISTS analysis_runs_delete_scores ON analysis_runs")
        op.execute("DROP FUNCTION IF EXISTS customers_delete_analytics()")
        op.execute("DROP FUNCTION IF EXISTS analysis_runs_delete_scores()")
    else:
        op.execute("DROP TRIGGER IF EXISTS customers_delete_analytics")
        op.execute("DROP TRIGGER IF EXISTS analysis_runs_delete_scores")


def downgrade() -> None:
    _drop_cascade_triggers()
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_scores_customer_id_as_of")

    op.drop_table("customer_scores")
    op.drop_table("customer_insights")
    with op.batch_alter_table("analysis_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_runs_as_of"))

    op.drop_table("analysis_runs")
