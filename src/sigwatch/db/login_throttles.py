"""Failed sign-ins per account and per client address, and the locks they lead to.

A row is keyed by ``(scope, key)``: scope ``account`` with the lower-cased username tried (whether
or not such a user exists), or scope ``ip`` with the client address. The policy (when to wait,
when to lock) lives in :mod:`sigwatch.api.login_guard`; this module only keeps the counts, with
atomic updates so several API processes count together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import LoginThrottle

SCOPES = ("account", "ip")
#: Longest key kept; longer usernames cannot exist, and addresses are far shorter.
MAX_KEY_LENGTH = 255


def throttle_key(value: str) -> str:
    """The stored key for a username or address: lower-cased and cut to the column's length."""
    return value.lower()[:MAX_KEY_LENGTH]


async def get_throttles(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], LoginThrottle]:
    """The rows for these ``(scope, key)`` pairs that exist, by pair."""
    if not keys:
        return {}
    stmt = select(LoginThrottle).where(tuple_(LoginThrottle.scope, LoginThrottle.key).in_(keys))
    return {(row.scope, row.key): row for row in await session.scalars(stmt)}


async def record_failure(
    session: AsyncSession, scope: str, key: str, *, now: datetime, forget_before: datetime
) -> int:
    """Count one more failure for ``(scope, key)`` and return the count.

    A count whose lock has run out, or whose last failure is older than ``forget_before``,
    starts again at 1: an expired lock is forgiven, not extended.
    """
    row = LoginThrottle
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = or_(
        and_(row.locked_until.is_not(None), row.locked_until <= now),
        and_(row.locked_until.is_(None), row.last_failure_at <= forget_before),
    )
    stmt = (
        insert(row)
        .values(scope=scope, key=key, failures=1, last_failure_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=[row.scope, row.key],
            set_={
                # SET reads the row as it was, so both cases see the same staleness.
                "failures": case((stale, 1), else_=row.failures + 1),
                "locked_until": case((stale, None), else_=row.locked_until),
                "last_failure_at": now,
            },
        )
        .returning(row.failures)
    )
    return int((await session.execute(stmt)).scalar_one())


async def lock(
    session: AsyncSession, scope: str, key: str, *, now: datetime, until: datetime
) -> bool:
    """Lock ``(scope, key)`` until ``until`` unless a lock already runs; True if this locked it."""
    stmt = (
        update(LoginThrottle)
        .where(
            LoginThrottle.scope == scope,
            LoginThrottle.key == key,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def clear(session: AsyncSession, scope: str, key: str) -> LoginThrottle | None:
    """Forget the failures and lock of ``(scope, key)``; the removed row, or None if none."""
    row = await session.get(LoginThrottle, (scope, key))
    if row is not None:
        await session.execute(
            delete(LoginThrottle)
            .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
            .execution_options(synchronize_session=False)
        )
        session.expunge(row)
    return row


async def delete_stale(session: AsyncSession, *, now: datetime, forget_before: datetime) -> int:
    """Remove rows whose lock has run out or whose failures are forgotten; how many went."""
    stmt = (
        delete(LoginThrottle)
        .where(
            LoginThrottle.last_failure_at <= forget_before,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
