"""The audit trail: who created, changed or deleted what, with the object before and after."""

from __future__ import annotations

import enum
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import AuditLog, Base, User
from sigwatch.db.pagination import MAX_BIGINT_ID, Page, check_limit, decode_id_cursor, fetch_id_page

#: Columns never copied into the audit trail, whatever the object.
SECRET_COLUMNS = frozenset({"password_hash", "key_hash"})


def snapshot(row: Base, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The row's columns as a JSON-safe dict, without stored secrets or the ``exclude`` columns."""
    shown: dict[str, Any] = {}
    for attr in inspect(row).mapper.column_attrs:
        if attr.key in SECRET_COLUMNS or attr.key in exclude:
            continue
        shown[attr.key] = _json_safe(getattr(row, attr.key))
    return shown


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _json_safe(value.value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    return str(value)


async def record_audit(
    session: AsyncSession,
    actor: User | str | None,
    action: str,
    object_type: str,
    object_id: int | str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditLog:
    """Add one audit row; ``actor`` is a user, a name such as ``"cli"``, or None (the system)."""
    if isinstance(actor, User):
        actor_id: int | None = actor.id
        actor_name = actor.username
    else:
        actor_id, actor_name = None, actor or "system"
    row = AuditLog(
        actor_id=actor_id,
        actor=actor_name[:128],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=_json_safe(before),
        after=_json_safe(after),
    )
    session.add(row)
    await session.flush()
    return row


async def list_audit(
    session: AsyncSession,
    *,
    object_type: str | None = None,
    object_id: int | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AuditLog]:
    """Audit rows, newest first, optionally of one object type or one object."""
    check_limit(limit)
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit + 1)
    if object_type is not None:
        stmt = stmt.where(AuditLog.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(AuditLog.object_id == str(object_id))
    if cursor is not None:
        stmt = stmt.where(AuditLog.id < decode_id_cursor(cursor, MAX_BIGINT_ID))
    return await fetch_id_page(session, stmt, limit)
