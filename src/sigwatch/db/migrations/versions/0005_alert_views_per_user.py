"""alert views per user: each user's alert computed from the evidence they may see

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:00:00.000000

Existing alerts get a view for every owner of a source behind their evidence, computed from that
owner's evidence alone, as new ones are.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sigwatch.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_URGENCY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def upgrade() -> None:
    op.create_table(
        "alert_views",
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
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
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_views_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_alert_views_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["first_source_id"],
            ["sources.id"],
            name=op.f("fk_alert_views_first_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("alert_id", "owner_id", name=op.f("pk_alert_views")),
    )
    with op.batch_alter_table("alert_views", schema=None) as batch_op:
        batch_op.create_index("ix_alert_views_owner_alert", ["owner_id", "alert_id"], unique=False)
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
    _backfill()


def _backfill() -> None:
    """A view for each (alert, owner) of existing evidence, from that owner's evidence alone."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT e.alert_id, s.owner_id, e.source_id, e.published_at, e.confidence, "
            "e.urgency, e.event_time, e.detected_at, p.title, p.text, a.trade "
            "FROM alert_evidence e JOIN sources s ON s.id = e.source_id "
            "JOIN posts p ON p.id = e.post_id JOIN alerts a ON a.id = e.alert_id "
            "WHERE s.owner_id IS NOT NULL ORDER BY e.alert_id, s.owner_id, e.published_at, e.id"
        ).columns(
            published_at=UTCDateTime(),
            event_time=UTCDateTime(),
            detected_at=UTCDateTime(),
            trade=sa.JSON(),
        )
    ).all()
    groups: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.alert_id, row.owner_id].append(row)
    times = ("event_time", "first_seen_at", "last_evidence_at", "created_at", "updated_at")
    views = sa.table(
        "alert_views",
        *(sa.column(name, UTCDateTime()) for name in times),
        sa.column("trade", sa.JSON()),
        *(
            sa.column(name)
            for name in (
                "alert_id",
                "owner_id",
                "confidence",
                "urgency",
                "title",
                "first_source_id",
                "lead_time_s",
                "source_count",
                "evidence_count",
            )
        ),
    )
    values = [_view(alert_id, owner_id, group) for (alert_id, owner_id), group in groups.items()]
    if values:
        op.bulk_insert(views, values)
    # Each earlier post's change belongs to its source's owner, as new changes do.
    history = bind.execute(
        sa.text("SELECT h.id, h.detail FROM alert_history h WHERE h.action <> 'status'").columns(
            detail=sa.JSON()
        )
    ).all()
    owners: dict[Any, Any] = dict(bind.execute(sa.text("SELECT id, owner_id FROM sources")).all())
    for history_id, detail in history:
        owner_id = owners.get((detail or {}).get("source_id"))
        if owner_id is not None:
            bind.execute(
                sa.text("UPDATE alert_history SET owner_id = :owner WHERE id = :id"),
                {"owner": owner_id, "id": history_id},
            )


def _view(alert_id: int, owner_id: int, group: list[Any]) -> dict[str, Any]:
    best: dict[int, float] = {}
    first_seen: dict[int, datetime] = {}
    for row in group:
        best[row.source_id] = max(best.get(row.source_id, 0.0), row.confidence)
        first_seen.setdefault(row.source_id, row.published_at)
    order = sorted(first_seen.items(), key=lambda item: item[1])
    doubt = 1.0
    for confidence in best.values():
        doubt *= 1.0 - min(max(confidence, 0.0), 1.0)
    first = group[0]
    title = first.title or " ".join((first.text or "").split())[:200]
    return {
        "alert_id": alert_id,
        "owner_id": owner_id,
        "confidence": round(min(0.99, 1.0 - doubt), 4),
        "urgency": max((row.urgency for row in group), key=lambda u: _URGENCY.get(u, 0)),
        "event_time": next((row.event_time for row in group if row.event_time), None),
        "title": title,
        "trade": first.trade,
        "first_seen_at": order[0][1],
        "last_evidence_at": max(row.published_at for row in group),
        "first_source_id": order[0][0],
        "lead_time_s": (order[1][1] - order[0][1]).total_seconds() if len(order) > 1 else None,
        "source_count": len(best),
        "evidence_count": len(group),
        "created_at": min(row.detected_at for row in group),
        "updated_at": max(row.detected_at for row in group),
    }


def downgrade() -> None:
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.drop_column("owner_id")
    with op.batch_alter_table("alert_views", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_views_owner_alert")
    op.drop_table("alert_views")
