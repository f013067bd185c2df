"""The outbox: deliveries written with their alert, claimed with a lease, recorded once sent.

A delivery is sent at least once: a worker that dies mid-send leaves it leased, the lease expires
and another worker sends it again with the same idempotency key, so receivers can drop repeats.
Once recorded as sent it is never claimed again. A worker records each answer as soon as it has
it and renews the leases of what it is still sending, so only the sends in flight when a worker
dies are ever repeated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Channel, Delivery


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A leased delivery: what the sender needs, detached from the session."""

    id: int
    alert_id: int | None
    channel_id: int
    subscription_id: int | None
    kind: str
    idempotency_key: str
    attempts: int
    #: The system alert announced, for a delivery of kind system_opened or system_cleared.
    system_alert_id: int | None = None


async def enqueue_delivery(
    session: AsyncSession,
    *,
    alert_id: int | None,
    channel_id: int,
    subscription_id: int | None,
    kind: str,
    idempotency_key: str,
    next_attempt_at: datetime,
    system_alert_id: int | None = None,
) -> bool:
    """Add a delivery unless one with this idempotency key exists; True when added.

    A delivery announces an alert (``alert_id``) or a system alert (``system_alert_id``).
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Delivery)
        .values(
            alert_id=alert_id,
            system_alert_id=system_alert_id,
            channel_id=channel_id,
            subscription_id=subscription_id,
            kind=kind,
            idempotency_key=idempotency_key,
            status="pending",
            attempts=0,
            next_attempt_at=next_attempt_at,
        )
        .on_conflict_do_nothing(index_elements=[Delivery.idempotency_key])
        .returning(Delivery.id)
    )
    return (await session.execute(statement)).first() is not None


def _claimable(now: datetime) -> Any:
    return and_(
        Delivery.status == "pending",
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
    )


async def claim_due_deliveries(
    session: AsyncSession, *, worker_id: str, now: datetime, lease_s: int, limit: int
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries to ``worker_id`` (SKIP LOCKED on PostgreSQL)."""
    if limit <= 0:
        return []
    candidates = (
        select(Delivery.id)
        .where(_claimable(now))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(Delivery)
        .where(Delivery.id.in_(candidates.scalar_subquery()), _claimable(now))
        .values(lease_owner=worker_id, lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(
            Delivery.id,
            Delivery.alert_id,
            Delivery.channel_id,
            Delivery.subscription_id,
            Delivery.kind,
            Delivery.idempotency_key,
            Delivery.attempts,
            Delivery.system_alert_id,
        )
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(statement)).all()
    return sorted((ClaimedDelivery(*tuple(row)) for row in rows), key=lambda d: d.id)


async def renew_delivery_leases(
    session: AsyncSession,
    delivery_ids: Sequence[int],
    *,
    worker_id: str,
    now: datetime,
    lease_s: float,
) -> set[int]:
    """Extend to ``now + lease_s`` the leases ``worker_id`` still holds; returns their ids.

    A delivery whose lease another worker took over meanwhile (or one already recorded) is left
    alone and missing from the answer.
    """
    if not delivery_ids:
        return set()
    rows = await session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids),
            Delivery.lease_owner == worker_id,
            Delivery.status == "pending",
        )
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return {int(row[0]) for row in rows}


def _owned(delivery_id: int, worker_id: str) -> Any:
    return and_(Delivery.id == delivery_id, Delivery.lease_owner == worker_id)


async def record_sent(
    session: AsyncSession,
    delivery_ids: Sequence[int],
    *,
    worker_id: str,
    now: datetime,
    status_code: int | None,
) -> int:
    """Mark deliveries sent with the receiver's answer, in one statement; returns how many.

    Only deliveries still leased to ``worker_id`` change: one whose lease was lost meanwhile may
    be sent again by its new holder, which at-least-once delivery allows.
    """
    if not delivery_ids:
        return 0
    result = await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.lease_owner == worker_id)
        .values(
            status="sent",
            sent_at=now,
            attempts=Delivery.attempts + 1,
            response_status=status_code,
            last_error=None,
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def record_failure(
    session: AsyncSession,
    delivery_id: int,
    *,
    worker_id: str,
    error: str,
    status_code: int | None,
    attempts: int,
    retry_at: datetime | None,
) -> None:
    """Keep the error; retry at ``retry_at``, or move to the dead letters when it is None."""
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_error": error,
        "response_status": status_code,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if retry_at is None:
        values["status"] = "dead"
    else:
        values["next_attempt_at"] = retry_at
    await session.execute(
        update(Delivery)
        .where(_owned(delivery_id, worker_id))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def postpone(
    session: AsyncSession, delivery_id: int, *, worker_id: str, until: datetime
) -> None:
    """Put a delivery back until ``until`` without counting an attempt (a rate limit wait)."""
    await session.execute(
        update(Delivery)
        .where(_owned(delivery_id, worker_id))
        .values(next_attempt_at=until, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def channels_by_id(session: AsyncSession, channel_ids: Iterable[int]) -> dict[int, Channel]:
    """The channels claimed deliveries go to, by id; a channel deleted meanwhile is left out."""
    wanted = set(channel_ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(Channel).where(Channel.id.in_(wanted)))
    return {channel.id: channel for channel in rows.all()}


async def sent_since(session: AsyncSession, channel_id: int, since: datetime) -> int:
    """How many deliveries a channel has sent since ``since`` (for its rate limit)."""
    statement = (
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.channel_id == channel_id, Delivery.sent_at >= since)
    )
    return int((await session.scalar(statement)) or 0)


async def release_delivery_leases(session: AsyncSession, *, worker_id: str) -> None:
    """Free the deliveries ``worker_id`` still holds (on shutdown)."""
    await session.execute(
        update(Delivery)
        .where(Delivery.lease_owner == worker_id)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
