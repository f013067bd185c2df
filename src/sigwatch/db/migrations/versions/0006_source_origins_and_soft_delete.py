"""source origins and soft delete: one copy of a feed per owner, removed sources keep their posts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 01:30:00.000000

Sources get ``origin`` (their address normalised by their kind, what corroboration counts) and
``deleted_at`` (a removed source stops and keeps its posts), and (owner, kind, origin) becomes
unique among sources not removed. Existing rows get their origin from their kind; when one owner
already has the same feed more than once, the oldest copy stays and the later copies are marked
removed (disabled, their posts kept and still searchable), since each copy used to count as one
more independent source.

On SQLite the table is rebuilt with AUTOINCREMENT, so the id of a removed source is never given
to a new one. SQLite's DROP TABLE first deletes every row, which with foreign keys on would
cascade to the posts, so foreign keys are switched off around the rebuild; that pragma only
works outside a transaction, so the migrations before this one are committed first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

from sigwatch.db.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UNIQUE = "uq_sources_owner_kind_origin"
_NOT_DELETED = "deleted_at IS NULL"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _set_sqlite_foreign_keys(bind, on=False)
        with op.batch_alter_table(
            "sources", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch_op:
            batch_op.add_column(sa.Column("origin", sa.Text(), nullable=True))
            batch_op.add_column(sa.Column("deleted_at", UTCDateTime(), nullable=True))
        problems = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
        if problems:
            raise RuntimeError(f"rebuilding sources broke foreign keys: {problems[:5]}")
    else:
        op.add_column("sources", sa.Column("origin", sa.Text(), nullable=True))
        op.add_column("sources", sa.Column("deleted_at", UTCDateTime(), nullable=True))
    _fill_origins(bind)
    op.create_index(
        _UNIQUE,
        "sources",
        ["owner_id", "kind", "origin"],
        unique=True,
        sqlite_where=sa.text(_NOT_DELETED),
        postgresql_where=sa.text(_NOT_DELETED),
    )
    if bind.dialect.name == "sqlite":
        _set_sqlite_foreign_keys(bind, on=True)


def _set_sqlite_foreign_keys(bind: sa.Connection, *, on: bool) -> None:
    """Switch SQLite's foreign keys, committing first: the pragma is ignored in a transaction."""
    driver = bind.connection.driver_connection
    if driver is not None and getattr(driver, "in_transaction", False):
        bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar() != int(on):
        raise RuntimeError("could not switch SQLite foreign keys; no table was rebuilt")


def _fill_origins(bind: sa.Connection) -> None:
    rows = bind.execute(
        sa.text("SELECT id, owner_id, kind, config FROM sources ORDER BY id").columns(
            config=sa.JSON()
        )
    ).all()
    seen: set[tuple[Any, str, str]] = set()
    now = datetime.now(UTC)
    sources = sa.table(
        "sources",
        sa.column("id"),
        sa.column("origin"),
        sa.column("enabled"),
        sa.column("deleted_at", UTCDateTime()),
    )
    for row in rows:
        origin = _origin(row.kind, dict(row.config or {}))
        key = (row.owner_id, row.kind, origin)
        values: dict[str, Any] = {"origin": origin}
        if row.owner_id is not None and key in seen:
            values.update(enabled=False, deleted_at=now)
        seen.add(key)
        bind.execute(sources.update().where(sources.c.id == row.id).values(**values))


def _origin(kind: str, config: dict[str, Any]) -> str:
    """The origin of a source as sigwatch 0006 normalised it, frozen here.

    A migration must give the same answer whatever later code does, so this copies the rule of
    the one kind there was (an RSS feed's URL: scheme and host lower-cased, default port and
    fragment dropped, a trailing slash removed) instead of asking the kind's code.
    """
    url = config.get("url")
    if kind != "rss" or not isinstance(url, str):
        return json.dumps(config, sort_keys=True, separators=(",", ":"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a URL too broken to read: its stored text is its origin
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, host, path, parts.query, ""))


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index(_UNIQUE, table_name="sources")
    if bind.dialect.name == "sqlite":
        _set_sqlite_foreign_keys(bind, on=False)
        with op.batch_alter_table(
            "sources", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ) as batch_op:
            batch_op.drop_column("deleted_at")
            batch_op.drop_column("origin")
        _set_sqlite_foreign_keys(bind, on=True)
    else:
        op.drop_column("sources", "deleted_at")
        op.drop_column("sources", "origin")
