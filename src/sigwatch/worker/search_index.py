"""Keeping the search index merged beside ingest, so that no insert has to stop and merge it.

Every stored batch of posts adds entries to PostgreSQL's pending list of the full-text index
(see :func:`sigwatch.db.posts.merge_pending_search_entries`). A :class:`SearchIndexMerger`
is told after each commit that stored posts and merges the list soon after, at most every
``interval_s``: at a high ingest rate one merge takes in many batches, and the inserts never
wait for one. On SQLite it does nothing.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.posts import merge_pending_search_entries

log = structlog.get_logger(__name__)

#: Shortest time between two merges; the pending list holds at most a few thousand posts.
MERGE_INTERVAL_S = 0.05


class SearchIndexMerger:
    """Merges the pending search entries after posts were stored, until stopped."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval_s: float = MERGE_INTERVAL_S,
    ) -> None:
        self._sessions = sessions
        self._interval_s = interval_s
        self._stored = asyncio.Event()
        self.pages_merged = 0

    def posts_stored(self) -> None:
        """Tell the merger that a committed transaction stored posts."""
        self._stored.set()

    async def merge(self) -> None:
        """Merge the pending entries now (a failure is logged: the inserts merge inline then)."""
        try:
            async with self._sessions.begin() as session:
                self.pages_merged += await merge_pending_search_entries(session)
        except Exception as exc:  # the database may be restarting; the next batch tries again
            log.warning("merging the search index failed", error=str(exc))

    async def run(self, stop: asyncio.Event) -> None:
        """Merge after each notice, at most every ``interval_s``, until ``stop`` is set."""
        async with self._sessions() as session:  # opens no connection
            if session.get_bind().dialect.name != "postgresql":
                return
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                stored = asyncio.create_task(self._stored.wait())
                await asyncio.wait({stopping, stored}, return_when=asyncio.FIRST_COMPLETED)
                stored.cancel()
                if not self._stored.is_set():
                    continue
                self._stored.clear()
                await self.merge()
                await asyncio.wait({stopping}, timeout=self._interval_s)
            if self._stored.is_set():  # posts stored just before the stop: merged too
                self._stored.clear()
                await self.merge()
        finally:
            stopping.cancel()
