"""system alerts: a source gone silent, stale or failing raises an alarm through subscriptions

Revision ID: 0010_system_alerts
Revises: 0009_cadence
Create Date: 2026-12-04 19:00:00.000000

- a new table ``system_alerts``: one row per alarm (source, owner, condition, open or cleared,
  why, when), with a unique index on (source, condition) among the open ones, so workers that
  check at once never raise the same alarm twice;
- ``sources`` gets ``freshness`` (per-source overrides of the thresholds), and what staleness
  is judged from: ``newest_fingerprint``, ``newest_changed_at`` and ``unchanged_polls``;
- ``subscriptions`` gets ``system_alerts`` (false: such alarms are asked for);
- ``deliveries`` gets ``system_alert_id``, the alarm a delivery announces (instead of an alert).

The columns of ``sources`` and ``subscriptions`` are added in place. ``deliveries`` gains a
foreign key, which SQLite can only add by rebuilding the table (batch mode); nothing refers to
``deliveries``, so the rebuild loses nothing. The downgrade drops it all again.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

from sigwatch.db.types import JSONType, UTCDateTime

revision = "0010_system_alerts"
down_revision = "0009_cadence"
branch_labels = None
depends_on = None

_SOURCE_COLUMNS = ("freshness", "newest_fingerprint", "newest_changed_at", "unchanged_polls")


def upgrade() -> None:
    op.create_table(
        "system_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.Column("clear_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_system_alerts_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_system_alerts_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_alerts")),
    )
    op.create_index(
        "uq_system_alerts_open",
        "system_alerts",
        ["source_id", "condition"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )
    op.create_index("ix_system_alerts_opened_at", "system_alerts", ["opened_at"])
    op.create_index(op.f("ix_system_alerts_owner_id"), "system_alerts", ["owner_id"])

    op.add_column("sources", sa.Column("freshness", JSONType, nullable=True))
    op.add_column("sources", sa.Column("newest_fingerprint", sa.String(length=64), nullable=True))
    op.add_column("sources", sa.Column("newest_changed_at", UTCDateTime(), nullable=True))
    op.add_column(
        "sources",
        sa.Column("unchanged_polls", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "subscriptions",
        sa.Column("system_alerts", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_alert_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_deliveries_system_alert_id_system_alerts"),
            "system_alerts",
            ["system_alert_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(op.f("ix_deliveries_system_alert_id"), ["system_alert_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(
            "downgrading below 0010_system_alerts needs SQLite 3.35 or newer (ALTER TABLE DROP "
            f"COLUMN); this Python has SQLite {sqlite3.sqlite_version}"
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_deliveries_system_alert_id"))
        batch_op.drop_constraint(
            op.f("fk_deliveries_system_alert_id_system_alerts"), type_="foreignkey"
        )
        batch_op.drop_column("system_alert_id")
    op.drop_column("subscriptions", "system_alerts")
    for name in reversed(_SOURCE_COLUMNS):
        op.drop_column("sources", name)
    op.drop_index(op.f("ix_system_alerts_owner_id"), table_name="system_alerts")
    op.drop_index("ix_system_alerts_opened_at", table_name="system_alerts")
    op.drop_index("uq_system_alerts_open", table_name="system_alerts")
    op.drop_table("system_alerts")
