"""Keeping the leases of work in progress alive: a heartbeat every third of the lease.

A worker leases what it claims (sources to poll, deliveries to send) for ``lease_s``; another
worker may take the work once the lease expires. Work that lasts longer than the lease (a slow
receiver, a source that fetches several pages) would then run twice at once, so while it runs
the worker extends the lease of each item it still holds, and only of those: an item whose
lease was taken over meanwhile is reported lost and never renewed again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.outbox import renew_delivery_leases
from sigwatch.db.schedule import renew_source_leases
from sigwatch.db.types import utcnow

log = structlog.get_logger(__name__)

#: Extends the leases of the given ids to ``now`` + the lease; returns the ids still owned.
Renew = Callable[[AsyncSession, list[int], datetime], Awaitable[set[int]]]


class LeaseKeeper:
    """Renews the leases of the ids it holds every ``lease_s / 3`` until the block ends."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        renew: Renew,
        *,
        lease_s: float,
        what: str,
    ) -> None:
        self._sessions = sessions
        self._renew = renew
        self._interval_s = lease_s / 3
        self._what = what
        self._held: set[int] = set()
        self._lost: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def hold(self, ids: Iterable[int]) -> None:
        """Renew these ids from now on."""
        self._held.update(ids)

    def release(self, ids: Iterable[int]) -> None:
        """Stop renewing these ids (their work was recorded, or given up)."""
        self._held.difference_update(ids)

    def lost(self, ids: Iterable[int]) -> bool:
        """True when the lease of any of these ids was found taken over by another worker."""
        return not self._lost.isdisjoint(ids)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def renew_now(self) -> None:
        """Renew every held lease once (the heartbeat calls this; tests may too)."""
        ids = sorted(self._held)
        if not ids:
            return
        try:
            async with self._sessions.begin() as session:
                kept = await self._renew(session, ids, utcnow())
        except Exception as exc:  # the database may be away; the next beat tries again
            log.warning("renewing leases failed", what=self._what, error=str(exc))
            return
        # An id released while the renewal ran was recorded meanwhile, not lost.
        lost = (set(ids) - kept) & self._held
        if lost:
            log.warning("leases lost to another worker", what=self._what, ids=sorted(lost))
            self._lost |= lost
            self._held -= lost

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.renew_now()


def delivery_leases(
    sessions: async_sessionmaker[AsyncSession], *, worker_id: str, lease_s: float
) -> LeaseKeeper:
    """A keeper of the delivery leases ``worker_id`` holds."""

    async def renew(session: AsyncSession, ids: list[int], now: datetime) -> set[int]:
        return await renew_delivery_leases(
            session, ids, worker_id=worker_id, now=now, lease_s=lease_s
        )

    return LeaseKeeper(sessions, renew, lease_s=lease_s, what="delivery")


def source_leases(
    sessions: async_sessionmaker[AsyncSession], *, worker_id: str, lease_s: float
) -> LeaseKeeper:
    """A keeper of the source leases ``worker_id`` holds."""

    async def renew(session: AsyncSession, ids: list[int], now: datetime) -> set[int]:
        return await renew_source_leases(
            session, ids, worker_id=worker_id, now=now, lease_s=lease_s
        )

    return LeaseKeeper(sessions, renew, lease_s=lease_s, what="source")
