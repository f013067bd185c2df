"""backfill jobs: a job keeps its target, its paging cursor and the lease of its worker

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 04:40:00.000000

An archive run ("backfill") of a source pages back through its older posts, possibly for hours,
and must go on from where it stopped after an interruption. Its job row keeps what that needs:
``post_limit`` (how many past posts were asked for), ``cursor`` (where the next older page
starts, saved with each stored page) and a lease (``lease_owner``, ``lease_expires_at``), so a
job whose worker died is told apart from one still running. A backfill does not hold its
source's lease, which would stop the source's regular polls for as long as it runs.

Four nullable columns, added in place on both databases (SQLite's ALTER TABLE ADD COLUMN
suffices: no table rebuild, no data to fill).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sigwatch.db.types import JSONType, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("post_limit", "cursor", "lease_owner", "lease_expires_at")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("post_limit", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("cursor", JSONType, nullable=True))
    op.add_column("jobs", sa.Column("lease_owner", sa.String(length=128), nullable=True))
    op.add_column("jobs", sa.Column("lease_expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("jobs") as batch_op:
            for name in reversed(_COLUMNS):
                batch_op.drop_column(name)
    else:
        for name in reversed(_COLUMNS):
            op.drop_column("jobs", name)
