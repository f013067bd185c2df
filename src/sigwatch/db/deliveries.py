"""Deliveries as users see them: listing the outbox and requeuing dead letters.

Claiming, recording answers and retrying belong to the delivery worker (:mod:`sigwatch.db.outbox`);
this module only reads rows and turns dead letters back into pending ones. A delivery belongs to
the owner of its channel; ``owner_id`` None (an admin) sees every delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Channel, Delivery
from sigwatch.db.pagination import MAX_BIGINT_ID, Page, check_limit, decode_id_cursor, fetch_id_page
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict, InvalidInput, NotFound

PENDING = "pending"
SENT = "sent"
DEAD = "dead"
STATUSES = (PENDING, SENT, DEAD)
#: The most dead letters one "requeue all" call takes; the caller repeats it for the rest.
MAX_REQUEUE = 1000


def _visible(stmt: Select[Any], owner_id: int | None) -> Select[Any]:
    if owner_id is None:
        return stmt
    owned = select(Channel.id).where(Channel.owner_id == owner_id)
    return stmt.where(Delivery.channel_id.in_(owned))


async def get_delivery(
    session: AsyncSession, delivery_id: int, *, owner_id: int | None
) -> Delivery:
    """The delivery with this id, if it goes to a channel ``owner_id`` may see; else NotFound."""
    found: Delivery | None = None
    if 0 < delivery_id <= MAX_BIGINT_ID:
        stmt = _visible(select(Delivery).where(Delivery.id == delivery_id), owner_id)
        found = (await session.scalars(stmt)).first()
    if found is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    return found


async def list_deliveries(
    session: AsyncSession,
    *,
    owner_id: int | None,
    status: str | None = None,
    channel_id: int | None = None,
    alert_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Delivery]:
    """Deliveries ``owner_id`` may see, newest first, optionally of one status, channel or alert."""
    check_limit(limit)
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    stmt = _visible(select(Delivery), owner_id).order_by(Delivery.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    if channel_id is not None:
        stmt = stmt.where(Delivery.channel_id == channel_id)
    if alert_id is not None:
        stmt = stmt.where(Delivery.alert_id == alert_id)
    if cursor is not None:
        stmt = stmt.where(Delivery.id < decode_id_cursor(cursor, MAX_BIGINT_ID))
    return await fetch_id_page(session, stmt, limit)


async def requeue_deliveries(
    session: AsyncSession, delivery_ids: Sequence[int], *, owner_id: int | None
) -> list[Delivery]:
    """Send dead letters again: all of ``delivery_ids`` go back to pending, or none does.

    NotFound names the first id the caller cannot see, Conflict the first that is not dead.
    Each goes back to its first attempt, due now; ``last_error`` stays until an attempt
    replaces it, so the reason it died remains visible while it waits.
    """
    wanted = list(dict.fromkeys(delivery_ids))
    found: dict[int, Delivery] = {}
    if wanted:
        in_range = [i for i in wanted if 0 < i <= MAX_BIGINT_ID]
        stmt = _visible(select(Delivery).where(Delivery.id.in_(in_range)), owner_id)
        found = {delivery.id: delivery for delivery in await session.scalars(stmt)}
    for delivery_id in wanted:
        delivery = found.get(delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery with id {delivery_id}")
        if delivery.status != DEAD:
            raise Conflict(
                f"delivery {delivery_id} is {delivery.status}, not dead: only dead letters "
                "can be requeued"
            )
    requeued = await _requeue(session, [found[i] for i in wanted])
    if len(requeued) != len(wanted):
        raise Conflict("some of these deliveries changed while being requeued: list them again")
    return requeued


async def requeue_dead_letters(
    session: AsyncSession, *, owner_id: int | None, channel_id: int | None = None
) -> list[Delivery]:
    """Send the oldest dead letters ``owner_id`` may see again (of one channel, if given).

    At most :data:`MAX_REQUEUE` per call, so one request stays short; call again for the rest.
    """
    stmt = _visible(select(Delivery).where(Delivery.status == DEAD), owner_id)
    if channel_id is not None:
        stmt = stmt.where(Delivery.channel_id == channel_id)
    stmt = stmt.order_by(Delivery.id).limit(MAX_REQUEUE)
    return await _requeue(session, list(await session.scalars(stmt)))


async def _requeue(session: AsyncSession, dead: list[Delivery]) -> list[Delivery]:
    """Turn ``dead`` back into pending rows; returns those still dead when the update ran."""
    if not dead:
        return []
    # Conditional on the status, so two requeues racing cannot both reset a delivery that a
    # worker has sent in between: the second finds it no longer dead and leaves it alone.
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_([delivery.id for delivery in dead]), Delivery.status == DEAD)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session="fetch")
    )
    changed = set(await session.scalars(stmt))
    return [delivery for delivery in dead if delivery.id in changed]
