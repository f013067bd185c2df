"""websub: a feed that names a hub is subscribed to, and the hub pushes its new entries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 05:05:00.000000

One new table, ``websub_subscriptions``: one row per source (unique ``source_id``, removed with
the source), the hub and topic subscribed to, the callback token and the HMAC secret (both
sealed at rest), the subscription's state and lease, and what the pushes did (when the last
one came, how many were accepted and how many refused). Nothing existing changes, so both
databases create it the same way and the downgrade drops it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sigwatch.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLE = "websub_subscriptions"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("hub_url", sa.Text(), nullable=False),
        sa.Column("topic_url", sa.Text(), nullable=False),
        sa.Column("callback_token", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_s", sa.Integer(), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=True),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("last_push_at", UTCDateTime(), nullable=True),
        sa.Column("pushes_accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pushes_refused", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_websub_subscriptions_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_websub_subscriptions")),
        sa.UniqueConstraint("source_id", name=op.f("uq_websub_subscriptions_source_id")),
    )


def downgrade() -> None:
    op.drop_table(_TABLE)
