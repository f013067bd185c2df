"""Helpers of the live tests: real uvicorn servers on 127.0.0.1, alerts made by the pipeline.

httpx's ASGI transport can neither open a WebSocket nor stream a response as it is produced,
so each test serves the app with uvicorn inside the test's own event loop (a pre-bound socket
on port 0). The app's lifespan is entered by the fixtures, so a test can reach the runtime and
its bus directly. Alerts are made as tests/api/test_alerts.py makes them: entities, a local RSS
feed per user, and ``collect_once``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from api.conftest import Accounts
from feedbuilder import rss_feed
from localserver import LocalServer
from sigwatch.api.deps import Runtime
from sigwatch.config import Settings
from sigwatch.db.models import AlertHistory
from sigwatch.live import publish_alert_events
from sigwatch.worker.runner import collect_once

NEBULA_A = "Nebula Protocol mainnet launch is live: the Nebula Protocol mainnet is now open"
NEBULA_B = "The Nebula Protocol mainnet is live today, its team says, opening the network"
HELIX = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"
ORION = "Orion Chain token generation event (TGE) is scheduled: $ORN claim opens today"
#: Upper bound of any single wait in these tests, so a bug fails fast instead of hanging.
WAIT_S = 5.0


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan already entered) on 127.0.0.1, port 0; yield host:port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(WAIT_S):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[FastAPI]:
    """``app`` with its lifespan entered."""
    async with app.router.lifespan_context(app):
        yield app


def runtime_of(app: FastAPI) -> Runtime:
    """The runtime the lifespan put on ``app``."""
    runtime: Runtime = app.state.runtime
    return runtime


@dataclass
class Live:
    """A served app and what tests use with it."""

    app: FastAPI
    address: str
    http: httpx.AsyncClient
    accounts: Accounts
    settings: Settings
    server: LocalServer
    source_ids: dict[str, int] = field(default_factory=dict)

    @property
    def runtime(self) -> Runtime:
        """The app's runtime (bus, sessions)."""
        return runtime_of(self.app)

    def ws_url(self, **query: str) -> str:
        """The WebSocket URL with ``query`` parameters."""
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"ws://{self.address}/api/v1/ws" + (f"?{params}" if params else "")

    def token(self, who: str) -> str:
        """The access token of ``who``."""
        header: str = getattr(self.accounts, who).headers["Authorization"]
        return header.removeprefix("Bearer ")

    async def add_source(self, who: str, titles: list[str]) -> int:
        """A feed of ``who`` serving ``titles``."""
        url = self.server.serve(f"/{who}.xml", rss_feed(titles, link=f"https://{who}.example"))
        created = await self.http.post(
            "/api/v1/sources",
            json={"kind": "rss", "name": who, "config": {"url": url}},
            headers=getattr(self.accounts, who).headers,
        )
        assert created.status_code == 201, created.text
        self.source_ids[who] = created.json()["id"]
        return self.source_ids[who]

    async def collect(self, *who: str) -> None:
        """Poll the sources of ``who`` once (alerts are recorded, nothing is published)."""
        allowed = self.settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})
        ids = [self.source_ids[name] for name in who]
        outcomes = await collect_once(allowed, self.runtime.sessions, ids)
        assert all(outcome.ok for outcome in outcomes), outcomes

    async def history_ids(self, after: int = 0) -> list[int]:
        """Ids of the alert changes after ``after``, in order."""
        async with self.runtime.sessions() as session:
            rows = await session.scalars(
                select(AlertHistory.id).where(AlertHistory.id > after).order_by(AlertHistory.id)
            )
            return list(rows.all())

    async def publish_after(self, after: int = 0) -> list[int]:
        """Publish every change after ``after``, as the worker does after committing."""
        ids = await self.history_ids(after)
        assert await publish_alert_events(self.runtime.bus, self.runtime.sessions, ids) == len(ids)
        return ids

    async def set_status(self, who: str, alert_ids: list[int], status: str) -> list[int]:
        """Change alert statuses through the API (which publishes them); the changes' ids."""
        before = (await self.history_ids())[-1:] or [0]
        answer = await self.http.post(
            "/api/v1/alerts/status",
            json={"ids": alert_ids, "status": status},
            headers=getattr(self.accounts, who).headers,
        )
        assert answer.status_code == 200, answer.text
        return await self.history_ids(before[0])


async def receive_json(ws: ClientConnection, timeout_s: float = WAIT_S) -> dict[str, Any]:
    """The next message, parsed, skipping heartbeats."""
    async with asyncio.timeout(timeout_s):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message.get("type") != "ping":
                return message


async def receive_events(
    ws: ClientConnection, count: int, timeout_s: float = WAIT_S
) -> list[dict[str, Any]]:
    """The next ``count`` alert events (skipping hello, pings and acknowledgements)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout_s):
        while len(events) < count:
            message = json.loads(await ws.recv())
            if str(message.get("type", "")).startswith("alert."):
                events.append(message)
    return events


async def no_event_within(ws: ClientConnection, seconds: float) -> None:
    """Fail if an alert event arrives within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = json.loads(await ws.recv())
                assert not str(message.get("type", "")).startswith("alert."), message
    except TimeoutError:
        pass


@asynccontextmanager
async def ws_client(url: str, **options: Any) -> AsyncIterator[ClientConnection]:
    """A WebSocket client connected to ``url``."""
    async with connect(url, open_timeout=WAIT_S, close_timeout=1, **options) as ws:
        yield ws


class TcpProxy:
    """Forwards connections on 127.0.0.1 to ``target``; stop() is an outage, start() the return.

    Stopping aborts every forwarded connection and refuses new ones, as a Redis that went away
    would; starting again listens on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        """Listen (on the same port as before, if any)."""
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)
