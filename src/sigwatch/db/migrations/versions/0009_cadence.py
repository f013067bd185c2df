"""cadence: each source learns how often it posts, and its polls follow that rate

Revision ID: 0009_cadence
Revises: 0008
Create Date: 2026-12-04 18:50:00.000000

Sources get what adaptive polling learns and chooses:

- ``post_gap_s``: the usual time between two new posts, in seconds, an exponentially weighted
  mean over the gaps seen so far (None until a second new post is seen);
- ``post_gap_samples``: how many gaps that mean is made of (0 until then);
- ``last_new_post_at``: when the newest post first stored by a poll appeared (its published
  time, or the time it was collected when it gives none or gives a later one);
- ``effective_interval_s``: the wait the last successful poll chose, jitter included;
- ``interval_reason``: why, in words, as the source's health shows it.

Five nullable or defaulted columns, added in place on both databases. The downgrade drops them
in place too: SQLite has done ALTER TABLE DROP COLUMN since 3.35 (2021), and rebuilding
``sources`` would lose its AUTOINCREMENT and, with foreign keys on, its posts.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

from sigwatch.db.types import UTCDateTime

revision = "0009_cadence"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    "post_gap_s",
    "post_gap_samples",
    "last_new_post_at",
    "effective_interval_s",
    "interval_reason",
)


def upgrade() -> None:
    op.add_column("sources", sa.Column("post_gap_s", sa.Float(), nullable=True))
    op.add_column(
        "sources",
        sa.Column("post_gap_samples", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("sources", sa.Column("last_new_post_at", UTCDateTime(), nullable=True))
    op.add_column("sources", sa.Column("effective_interval_s", sa.Float(), nullable=True))
    op.add_column("sources", sa.Column("interval_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(
            "downgrading below 0009_cadence needs SQLite 3.35 or newer (ALTER TABLE DROP "
            f"COLUMN); this Python has SQLite {sqlite3.sqlite_version}"
        )
    for name in reversed(_COLUMNS):
        op.drop_column("sources", name)
