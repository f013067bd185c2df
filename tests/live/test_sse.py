"""The SSE stream at /api/v1/alerts/stream: live events, Last-Event-ID resumption, visibility."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from live.support import HELIX, NEBULA_A, NEBULA_B, ORION, WAIT_S
from sigwatch.api.routes.live import live_hub

STREAM = "/api/v1/alerts/stream"


class EventStream:
    """Reads Server-Sent Events off a streaming response, in a task of its own.

    A timeout must not cancel the read itself: that would close httpx's line iterator, and
    the stream with it.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.comments: list[str] = []
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if "data" in fields:
                        data = json.loads(fields["data"])
                        self._events.put_nowait({"sse_id": int(fields["id"]), **data})
                    fields = {}
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        finally:
            self._events.put_nowait(None)

    async def close(self) -> None:
        """Stop reading."""
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def next(self, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """The next event, with its SSE id as ``sse_id``."""
        async with asyncio.timeout(timeout_s):
            event = await self._events.get()
        if event is None:
            raise AssertionError("stream ended")
        return event

    async def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` events."""
        return [await self.next() for _ in range(count)]

    async def nothing_within(self, seconds: float) -> None:
        """Fail if an event arrives within ``seconds``."""
        try:
            event = await self.next(timeout_s=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event {event}")


@asynccontextmanager
async def stream(live, who: str, **options: Any) -> AsyncIterator[EventStream]:
    """An open SSE stream of ``who``; keyword arguments go to the request."""
    headers = {**getattr(live.accounts, who).headers, **options.pop("headers", {})}
    async with live.http.stream("GET", STREAM, headers=headers, **options) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = EventStream(response)
        try:
            yield events
        finally:
            await events.close()


async def _wait_for_clients(live, count: int) -> None:
    hub = live_hub(live.app)
    async with asyncio.timeout(WAIT_S):
        while hub.clients != count:
            await asyncio.sleep(0.01)


async def test_stream_receives_a_new_alert_with_its_change_id(live):
    await live.add_source("bob", [HELIX])
    async with stream(live, "admin") as events:
        await _wait_for_clients(live, 1)
        await live.collect("bob")
        ids = await live.publish_after()
        event = await events.next()
    assert event["sse_id"] == event["id"] == ids[0]
    assert event["type"] == "alert.created" and event["alert"]["entity"] == "Helix Network"
    assert "owner_ids" not in event
    await _wait_for_clients(live, 0)  # the hub forgets a client that went away


async def test_the_stream_ends_when_its_user_is_deactivated(live):
    live.runtime.settings = live.settings.model_copy(update={"live_recheck_s": 0.2})
    async with stream(live, "bob") as events:
        await _wait_for_clients(live, 1)
        off = await live.http.patch(
            f"/api/v1/users/{live.accounts.bob.id}",
            json={"is_active": False},
            headers=live.accounts.admin.headers,
        )
        assert off.status_code == 200, off.text
        await _wait_for_clients(live, 0)
        with pytest.raises(AssertionError, match="stream ended"):
            await events.next()
    again = await live.http.get(STREAM, headers=live.accounts.bob.headers)
    assert again.status_code == 401


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(live):
    await live.add_source("bob", [HELIX, NEBULA_B])
    async with stream(live, "bob") as events:
        await _wait_for_clients(live, 1)
        await live.collect("bob")
        first = await live.publish_after()
        seen = await events.take(len(first))
    alert_ids = sorted({e["alert"]["id"] for e in seen})
    # Missed while away: status changes of both alerts, and a new alert.
    missed = await live.set_status("bob", alert_ids, "acknowledged")
    live.server.serve("/bob.xml", _feed([HELIX, NEBULA_B, ORION]))
    before = (await live.history_ids())[-1]
    await live.collect("bob")
    missed += await live.publish_after(before)
    assert len(missed) == 3
    async with stream(live, "bob", headers={"Last-Event-ID": str(seen[-1]["id"])}) as events:
        replayed = await events.take(len(missed))
        assert [e["id"] for e in replayed] == missed
        # A change published late (committed before the replay, published after the client
        # subscribed) arrives twice at the hub; the client still gets it once.
        await live.publish_after(missed[-2])
        fresh = await live.set_status("bob", alert_ids[:1], "new")
        (after,) = await events.take(1)
        assert after["id"] == fresh[0] and after["alert"]["status"] == "new"
        await events.nothing_within(0.3)
    assert [e["type"] for e in replayed] == ["alert.status", "alert.status", "alert.created"]


async def test_last_event_id_query_parameter_resumes_too(live):
    await live.add_source("bob", [HELIX, NEBULA_B])
    await live.collect("bob")
    ids = await live.publish_after()
    async with stream(live, "admin", params={"last_event_id": ids[0]}) as events:
        assert [e["id"] for e in await events.take(len(ids) - 1)] == ids[1:]
        await events.nothing_within(0.2)
    async with stream(live, "admin", params={"last_event_id": 0}) as events:
        assert [e["id"] for e in await events.take(len(ids))] == ids


async def test_replay_and_live_events_respect_visibility(live):
    await live.add_source("alice", [NEBULA_A])
    await live.add_source("bob", [HELIX, NEBULA_B])
    await live.collect("alice")
    await live.collect("bob")
    ids = await live.publish_after()
    async with stream(live, "alice", headers={"Last-Event-ID": "0"}) as events:
        replayed = await events.take(1)  # her Nebula post; Bob's corroboration is not hers
        await events.nothing_within(0.2)
        helix = [a for a in await _alerts(live) if a["entity"] == "Helix Network"]
        await live.set_status("bob", [helix[0]["id"]], "dismissed")  # bob's alone
        await events.nothing_within(0.3)
    assert {e["alert"]["entity"] for e in replayed} == {"Nebula Protocol"}
    assert replayed[0]["alert"]["source_count"] == 1 and "views" not in replayed[0]
    assert len(ids) == 3


async def _alerts(live):
    answer = await live.http.get("/api/v1/alerts", headers=live.accounts.admin.headers)
    return answer.json()["items"]


async def test_query_filters_apply_to_replay_and_live(live):
    await live.add_source("bob", [HELIX, NEBULA_B])
    await live.collect("bob")
    await live.publish_after()
    async with stream(live, "bob", params={"last_event_id": 0, "event": "airdrop"}) as events:
        (event,) = await events.take(1)
        await events.nothing_within(0.2)
    assert event["alert"]["event"] == "airdrop"


async def test_token_query_parameter_authenticates_eventsource_clients(live):
    url = f"{STREAM}?token={live.token('alice')}"
    async with live.http.stream("GET", url) as response:
        assert response.status_code == 200


async def test_without_credentials_the_stream_is_refused(live):
    refused = await live.http.get(STREAM)
    assert refused.status_code == 401
    bad_key = await live.http.get(STREAM, params={"api_key": "sw_nope"})
    assert bad_key.status_code == 401


async def test_a_bad_last_event_id_names_the_header(live):
    answer = await live.http.get(
        STREAM, headers={**live.accounts.admin.headers, "Last-Event-ID": "yesterday"}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


async def test_idle_stream_gets_heartbeat_comments(live):
    live_hub(live.app).heartbeat_s = 0.1
    async with stream(live, "admin") as events:
        await events.nothing_within(0.5)
    assert any(comment.startswith(": ping") for comment in events.comments)


def _feed(titles):
    from feedbuilder import rss_feed

    return rss_feed(titles, link="https://bob.example")
