"""Group commit: each outcome is committed within milliseconds of being known, several at once.

Recording every send in its own transaction costs a commit per send, which SQLite's single
writer cannot afford at hundreds per second; recording a whole batch at its end repeats every
send of the batch when the worker dies before that. A :class:`GroupRecorder` sits in between: a
caller hands over one outcome and waits until it is committed. The first outcome of a group
waits at most ``within_s`` for others to join it; the group is committed sooner when it holds
``group_size`` outcomes or when no other outcome is on its way (every started send has handed
its outcome over). Outcomes handed over while a commit runs go in the next group. The database
so sees one transaction per group, which grows with the rate of answers, not one per outcome.

A caller that need not wait (a poll that stored nothing: its slot is free as soon as its answer
is in) hands its outcome over with :meth:`GroupRecorder.hand_over` instead, and the group then
waits the full ``within_s`` for company unless it fills up first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: Writes a group of outcomes in the transaction it is given; may run again if the commit fails.
Write = Callable[[AsyncSession, list[T]], Awaitable[None]]

#: Commits tried for a group before its outcomes are given up (left to the leases to expire).
RECORD_ATTEMPTS = 3
#: First pause between those tries; doubles each time.
RECORD_RETRY_S = 0.5
#: Longest wait of an outcome for others to share its commit (measured: at ~600 answers/s on
#: SQLite a commit per few answers costs more CPU than the sends; 20 ms groups about a dozen).
RECORD_WITHIN_S = 0.02


class GroupRecorder(Generic[T]):
    """Commits the outcomes handed to :meth:`record` in small groups, as soon as it can."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        write: Write[T],
        *,
        what: str,
        within_s: float = RECORD_WITHIN_S,
        group_size: int = 64,
        attempts: int = RECORD_ATTEMPTS,
        retry_s: float = RECORD_RETRY_S,
    ) -> None:
        self._sessions = sessions
        self._write = write
        self._what = what
        self._within_s = within_s
        self._group_size = max(1, group_size)
        self._attempts = attempts
        self._retry_s = retry_s
        self._pending: list[tuple[T, asyncio.Future[bool]]] = []
        self._on_the_way = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsettled: set[asyncio.Future[bool]] = set()
        #: How many groups were committed, and how many outcomes they held (for benchmarks).
        self.commits = 0
        self.recorded = 0

    def expect(self) -> None:
        """Note that an outcome is on its way (its send started): a group may wait for it."""
        self._on_the_way += 1

    async def record(self, outcome: T) -> bool:
        """Wait until ``outcome`` is committed: True, or False when recording it failed."""
        done = self._queue(outcome)
        self._on_the_way = max(0, self._on_the_way - 1)
        if self._on_the_way == 0:
            self._full.set()
        return await done

    def hand_over(self, outcome: T) -> asyncio.Future[bool]:
        """Queue ``outcome`` without waiting; the future says whether its group was committed."""
        return self._queue(outcome)

    @property
    def unsettled(self) -> int:
        """Outcomes handed over and not yet committed (or given up)."""
        return len(self._unsettled)

    async def flush(self) -> None:
        """Commit what was handed over so far without waiting for company, and wait for it."""
        if self._unsettled:
            self._full.set()
            self._wake.set()
            await asyncio.gather(*self._unsettled)

    def _queue(self, outcome: T) -> asyncio.Future[bool]:
        if self._task is None:
            raise RuntimeError("GroupRecorder used outside its async with block")
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._unsettled.add(done)
        done.add_done_callback(self._unsettled.discard)
        self._pending.append((outcome, done))
        if len(self._pending) >= self._group_size:
            self._full.set()
        self._wake.set()
        return done

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
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
        for done in list(self._unsettled):  # only when the block was left unflushed
            if not done.done():
                done.set_result(False)
        self._pending.clear()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._full.is_set():
                try:
                    async with asyncio.timeout(self._within_s):
                        await self._full.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            self._full.clear()
            group, self._pending = self._pending, []
            if not group:
                continue
            committed = await self._commit([outcome for outcome, _ in group])
            for _, done in group:
                if not done.done():
                    done.set_result(committed)

    async def _commit(self, outcomes: list[T]) -> bool:
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._sessions.begin() as session:
                    await self._write(session, outcomes)
            except Exception as exc:  # the database may be away; never stop the worker loop
                log.warning(
                    "recording outcomes failed",
                    what=self._what,
                    count=len(outcomes),
                    attempt=attempt,
                    error=str(exc),
                )
                if attempt < self._attempts:
                    await asyncio.sleep(self._retry_s * 2 ** (attempt - 1))
                continue
            self.commits += 1
            self.recorded += len(outcomes)
            return True
        return False
