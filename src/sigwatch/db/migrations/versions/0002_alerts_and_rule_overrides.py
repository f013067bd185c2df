"""alerts and rule overrides

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:56:19.152078
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sigwatch.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_overrides",
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event", name=op.f("pk_rule_overrides")),
    )
    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=200), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("trade", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_evidence_at", UTCDateTime(), nullable=False),
        sa.Column("first_source_id", sa.Integer(), nullable=True),
        sa.Column("lead_time_s", sa.Float(), nullable=True),
        sa.Column("source_count", sa.Integer(), nullable=False),
        sa.Column("evidence_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["entities.id"],
            name=op.f("fk_alerts_entity_id_entities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["first_source_id"],
            ["sources.id"],
            name=op.f("fk_alerts_first_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_alerts_story", ["entity", "event", "last_evidence_at"], unique=False
        )

    op.create_table(
        "alert_evidence",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=True),
        sa.Column(
            "features", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "spans", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("simhash", sa.String(length=16), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_evidence_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_alert_evidence_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_alert_evidence_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_evidence")),
        sa.UniqueConstraint("alert_id", "post_id", name=op.f("uq_alert_evidence_alert_id_post_id")),
    )
    with op.batch_alter_table("alert_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_alert_evidence_post_id", ["post_id"], unique=False)

    op.create_table(
        "alert_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_history_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_history")),
    )
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.create_index("ix_alert_history_alert_id", ["alert_id"], unique=False)

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sentiment", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("sentiment")

    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_history_alert_id")

    op.drop_table("alert_history")
    with op.batch_alter_table("alert_evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_evidence_post_id")

    op.drop_table("alert_evidence")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_story")
        batch_op.drop_index("ix_alerts_created_at")

    op.drop_table("alerts")
    op.drop_table("rule_overrides")
