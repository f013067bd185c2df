"""Wiring for a backtest: the stored (or a given) watchlist, the archive, the alert threshold.

The replay itself is :func:`sigwatch.alerts.backtest.run_backtest`; this builds what it runs
on, as a worker builds its detector, so the command line only passes its arguments through.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.alerts.backtest import BacktestReport, run_backtest
from sigwatch.alerts.record import Detector, alert_threshold
from sigwatch.alerts.watchlist import load_watchlist
from sigwatch.config import Settings
from sigwatch.detect import Watchlist, build_index
from sigwatch.export import iter_posts


async def backtest_archive(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    watchlist: Watchlist | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_confidence: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BacktestReport:
    """Replay the archived posts published in [since, until) through ``watchlist``.

    Without a watchlist the stored one is used; without a threshold, the one alerts use. Entity
    ids come from the stored watchlist either way, so a given file's entities that are stored
    are reported as the same entities.
    """
    async with sessions() as session:
        stored = await load_watchlist(session)
    detector = Detector(
        build_index(watchlist if watchlist is not None else stored.watchlist), stored.entity_ids
    )
    threshold = alert_threshold(settings) if min_confidence is None else min_confidence
    return await run_backtest(
        iter_posts(sessions, since=since, until=until),
        detector,
        min_confidence=threshold,
        on_progress=on_progress,
    )
