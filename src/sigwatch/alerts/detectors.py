"""The detector a worker uses, rebuilt only when the watchlist changes."""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.record import Detector
from sigwatch.alerts.watchlist import load_watchlist
from sigwatch.db.watchlist import watchlist_version
from sigwatch.detect import build_index

log = structlog.get_logger(__name__)


class DetectorCache:
    """Hands out the compiled watchlist, recompiling it when an entity or rule has changed."""

    def __init__(self) -> None:
        self._version: tuple[Any, ...] | None = None
        self._detector: Detector | None = None

    async def get(self, session: AsyncSession) -> Detector:
        """The current detector; one cheap version query when nothing changed."""
        version = await watchlist_version(session)
        if self._detector is None or version != self._version:
            stored = await load_watchlist(session)
            started = time.perf_counter()
            self._detector = Detector(build_index(stored.watchlist), stored.entity_ids)
            self._version = version
            log.info(
                "watchlist compiled",
                entities=len(stored.watchlist.entities),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return self._detector
