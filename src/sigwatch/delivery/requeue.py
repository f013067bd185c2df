"""Sending dead letters again, all of them, after the channel that killed them is fixed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.deliveries import requeue_dead_letters


async def requeue_all_dead(
    session: AsyncSession, *, owner_id: int | None, channel_id: int | None = None
) -> int:
    """Put every dead letter ``owner_id`` may see (of one channel, if given) back to pending.

    The storage call takes a bounded batch so one API request stays short; an operator asking
    for all of them gets all of them, batch after batch, in this one transaction.
    """
    total = 0
    while batch := await requeue_dead_letters(session, owner_id=owner_id, channel_id=channel_id):
        total += len(batch)
    return total
