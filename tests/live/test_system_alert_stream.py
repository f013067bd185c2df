"""A source's alarm on the real SSE stream: its owner (and admins) get it, without an event id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import update

from live.support import HELIX, WAIT_S
from sigwatch.alerts.freshness import Thresholds
from sigwatch.api.routes.live import live_hub
from sigwatch.db.models import Source
from sigwatch.worker.freshness import FreshnessChecker


@asynccontextmanager
async def sse(live, who: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """``who``'s SSE stream, its events (with ``sse_id`` None when they carry no id) queued."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    headers = getattr(live.accounts, who).headers
    async with live.http.stream("GET", "/api/v1/alerts/stream", headers=headers) as response:
        assert response.status_code == 200

        async def read() -> None:
            fields: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line == "" and "data" in fields:
                    queue.put_nowait({"sse_id": fields.get("id"), **json.loads(fields["data"])})
                    fields = {}
                elif line and not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")

        reader = asyncio.create_task(read())
        try:
            yield queue
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def test_a_failing_sources_alarm_streams_to_its_owner_and_admins_only(live):
    source_id = await live.add_source("alice", [HELIX])
    sessions = live.runtime.sessions
    async with sessions.begin() as session:
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(consecutive_failures=5, last_error="HTTP 503 Service Unavailable")
        )
    checker = FreshnessChecker(
        sessions, Thresholds.from_settings(live.settings), interval_s=1, bus=live.runtime.bus
    )
    async with sse(live, "alice") as alice, sse(live, "bob") as bob, sse(live, "admin") as admin:
        hub = live_hub(live.app)
        async with asyncio.timeout(WAIT_S):
            while hub.clients != 3:
                await asyncio.sleep(0.01)
        (raised,) = (await checker.check()).raised
        async with asyncio.timeout(WAIT_S):
            hers, theirs = await alice.get(), await admin.get()
        await asyncio.sleep(0.3)
        assert bob.empty()
    for event in (hers, theirs):
        assert event["type"] == "system_alert" and event["sse_id"] is None
        assert event["system_alert"]["id"] == raised.id
        assert event["system_alert"]["condition"] == "failing"
        assert event["system_alert"]["source_name"] == "alice"
        assert "owner" not in event
