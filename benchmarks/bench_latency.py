"""Latency from a post's publication to the webhook and the SSE stream, polled and pushed.

Everything runs on 127.0.0.1. sigwatch runs embedded in this process, as ``sigwatch up`` runs it:
the real app (``create_app(run_worker=True)``: API, worker, SQLite, the in-process bus) under
uvicorn. "The world" runs in a child process, one asyncio loop, so that its clock readings are
not delayed by sigwatch's work: one small HTTP server that is at once

- the polled source: ``/items.json``, a JSON API listing the newest items, which sigwatch reads
  as a ``json`` source polled every second (the fast lane's minimum);
- the pushed source: ``/feed.xml``, an RSS feed naming a WebSub hub, and that hub, ``/hub``:
  it verifies sigwatch's subscription on its callback (``SIGWATCH_PUBLIC_URL`` is the embedded
  API) and pushes each new item there, signed with the subscription's secret;
- the webhook receiver, ``/hook``, sigwatch's one channel (a subscription of every alert).

and an SSE client of ``/api/v1/alerts/stream``. Each item announces an event of its own
watched project (a listing, a TGE …), so each makes one new alert, one webhook and one SSE
event. The world publishes ``--items`` items at random moments over ``--duration-s`` seconds
to the polled source, then as many to the hub, and notes when each was published and when its
webhook and its SSE event arrived (``time.monotonic``, one process, one clock).

``SIGWATCH_HOST_RATE_LIMIT`` is off here: every server of the benchmark is 127.0.0.1, which in a
deployment stands for as many hosts as there are sources and receivers; the per-host limit
(10/s by default) would otherwise throttle the webhooks of one burst of items.

    .venv/bin/python benchmarks/bench_latency.py [--items 200] [--duration-s 80]

Targets: polled p99 ≤ 2.0 s to the webhook; pushed p99 ≤ 0.5 s. To show where the time goes,
each path is also split at the alert's creation (its ``created_at`` in the webhook, written by
the poll's or the push's transaction): ``to_alert`` (waiting for the poll, fetching, storing,
detecting) and ``alert_to_webhook`` (commit, outbox wake, claim, send).

The last line printed is one JSON object: {"poll_webhook_p99_s", "poll_sse_p99_s",
"push_webhook_p99_s", "push_sse_p99_s", their p50s, "poll_to_alert_p99_s",
"poll_alert_to_webhook_p99_s", "push_to_alert_p99_s", "push_alert_to_webhook_p99_s" (and
p50s), "items"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import random
import socket
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape

import httpx
import uvicorn

from sigwatch import auth
from sigwatch.api import create_app
from sigwatch.config import Settings, ensure_secret_key, load_settings
from sigwatch.db import entities, users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.observability.logging import configure_logging

#: Texts that make one alert each, of the event named, for a watched project and its ticker.
ANNOUNCEMENTS = {
    "listing": "Binance Will List {A} ({S}) with Seed Tag Applied",
    "tge": "{A} token generation event (TGE) is scheduled: ${S} claim opens today",
    "airdrop": "{A} airdrop claim is now open: check eligibility for the ${S} airdrop",
    "mainnet": "{A} mainnet is live: the {A} mainnet launch opens the network to everyone today",
}
SYLLABLES = "ba de fi go hu ka le mo nu pi ra se to vu wy xa ze".split()
#: Items the polled source lists and the feed holds at once, newest first (what a poll sees,
#: and what the hub pushes: the feed as it is now, as hubs push it).
LISTED_ITEMS = 50
#: How long the world waits for the last arrivals of a phase once everything is published.
SETTLE_S = 30.0
#: How long the hub may take to have sigwatch's subscription verified.
SUBSCRIBE_TIMEOUT_S = 120.0


class BenchFailure(Exception):
    """A phase missed its deadline; the message says what was missing."""


# --- the world: a child process ---------------------------------------------------------------


Item = tuple[str, str, str]  # (key, entity, text): key is "entity|event"


class World:
    """The sources, the hub, the webhook receiver and the SSE client, and their clocks."""

    def __init__(self, conn: Connection, port: int, api_url: str, token: str) -> None:
        self.conn = conn
        self.port = port
        self.api_url = api_url
        self.token = token
        self.base = f"http://127.0.0.1:{port}"
        self.listed: list[dict[str, Any]] = []  # the polled source's items, oldest first
        self.feed_items: list[tuple[str, str, datetime]] = []  # the pushed feed's items
        self.subscribers: dict[str, str] = {}  # callback → secret, once verified
        self.published: dict[str, float] = {}
        self.webhook: dict[str, float] = {}
        self.sse: dict[str, float] = {}
        # Wall-clock times (the parent's clock too): publication, the alert row's creation
        # (in sigwatch's poll or push transaction) and the webhook's arrival, to split the path.
        self.published_wall: dict[str, float] = {}
        self.alert_created_wall: dict[str, float] = {}
        self.webhook_wall: dict[str, float] = {}
        self.client = httpx.AsyncClient(timeout=10.0)
        self.sse_reader: asyncio.Task[None] | None = None
        self.sse_open = asyncio.Event()

    async def serve(self) -> None:
        """Serve until told to exit; answer the parent's commands over the pipe."""
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        loop = asyncio.get_running_loop()
        self.conn.send("ready")
        try:
            while True:
                command, *args = await loop.run_in_executor(None, self.conn.recv)
                if command == "exit":
                    return
                try:
                    self.conn.send(await getattr(self, command)(*args))
                except BenchFailure as failure:
                    self.conn.send(failure)
        finally:
            if self.sse_reader is not None:
                self.sse_reader.cancel()
            server.close()
            await self.client.aclose()

    # -- HTTP: one tiny HTTP/1.1 server for every path ------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, content_type, answer = await self._answer(method, target, body)
                writer.write(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _answer(self, method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
        path = urlsplit(target).path
        if path == "/items.json":
            newest = self.listed[-LISTED_ITEMS:][::-1]
            return 200, "application/json", json.dumps({"items": newest}).encode()
        if path == "/feed.xml":
            return 200, "application/rss+xml", self._feed()
        if path == "/hub" and method == "POST":
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            asyncio.get_running_loop().create_task(self._verify(form))
            return 202, "text/plain", b"accepted"
        if path == "/hook" and method == "POST":
            data = json.loads(body)
            if data.get("type") == "alert.created":
                alert = data["data"]
                key = f"{alert['entity']}|{alert['event']}"
                self.webhook.setdefault(key, time.monotonic())
                self.webhook_wall.setdefault(key, time.time())
                created = datetime.fromisoformat(alert["created_at"].replace("Z", "+00:00"))
                self.alert_created_wall.setdefault(key, created.timestamp())
            return 200, "text/plain", b"ok"
        return 404, "text/plain", b"not found"

    def _feed(self) -> bytes:
        items = "".join(
            f"<item><title>{escape(text)}</title><guid>{self.base}/post/{n}</guid>"
            f"<link>{self.base}/post/{n}</link><pubDate>{format_datetime(at)}</pubDate>"
            f"<description>{escape(text)}</description></item>"
            for n, (_, text, at) in list(enumerate(self.feed_items))[-LISTED_ITEMS:][::-1]
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
            f"<title>pushed news</title><link>{self.base}/</link><description>d</description>"
            f'<atom:link rel="hub" href="{self.base}/hub"/>'
            f'<atom:link rel="self" href="{self.base}/feed.xml"/>'
            f"{items}</channel></rss>"
        ).encode()

    async def _verify(self, form: dict[str, str]) -> None:
        """Verify the intent of a (un)subscription, as a hub does, then keep or drop it."""
        challenge = "".join(random.choices(string.ascii_letters, k=24))
        query = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": challenge,
            "hub.lease_seconds": form.get("hub.lease_seconds", "86400"),
        }
        callback = form["hub.callback"]
        answer = await self.client.get(f"{callback}?{urlencode(query)}")
        if answer.status_code == 200 and answer.text == challenge:
            if form["hub.mode"] == "subscribe":
                self.subscribers[callback] = form.get("hub.secret", "")
            else:
                self.subscribers.pop(callback, None)

    # -- the SSE client --------------------------------------------------------------------------

    async def connect_sse(self) -> str:
        """Open the SSE stream (sigwatch is up by now) and wait until it is connected."""
        self.sse_reader = asyncio.get_running_loop().create_task(self._read_sse())
        async with asyncio.timeout(10):
            await self.sse_open.wait()
        await asyncio.sleep(0.5)  # the response has started: the stream is subscribed
        return "connected"

    async def disconnect_sse(self) -> str:
        """Close the SSE stream before sigwatch stops, as a client going away does."""
        if self.sse_reader is not None:
            self.sse_reader.cancel()
            await asyncio.gather(self.sse_reader, return_exceptions=True)
            self.sse_reader = None
        return "closed"

    async def _read_sse(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.api_url}/api/v1/alerts/stream"
        async with httpx.AsyncClient(timeout=None) as client:
            async with client.stream("GET", url, headers=headers) as response:
                self.sse_open.set()
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    if event.get("type") == "alert.created":
                        alert = event["alert"]
                        self.sse.setdefault(f"{alert['entity']}|{alert['event']}", time.monotonic())

    # -- the parent's commands -------------------------------------------------------------------

    async def publish_polled(self, items: list[Item], duration_s: float, seed: int) -> dict:
        """Add ``items`` to the polled source at random moments; when each arrived where."""

        def publish(item: Item) -> None:
            key, _, text = item
            self.listed.append(
                {
                    "id": key,
                    "title": text,
                    "text": text,
                    "published": datetime.now(UTC).isoformat(),
                }
            )

        return await self._phase(items, duration_s, seed, publish)

    async def publish_pushed(self, items: list[Item], duration_s: float, seed: int) -> dict:
        """Add ``items`` to the feed at random moments, each pushed by the hub at once."""
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            while not self.subscribers:
                await asyncio.sleep(0.2)
        pushes: set[asyncio.Task[None]] = set()

        def publish(item: Item) -> None:
            key, _, text = item
            self.feed_items.append((key, text, datetime.now(UTC)))
            body = self._feed()
            for callback, secret in self.subscribers.items():
                pushes.add(
                    asyncio.get_running_loop().create_task(self._push(callback, secret, body))
                )

        result = await self._phase(items, duration_s, seed, publish)
        await asyncio.gather(*pushes)
        return result

    async def _push(self, callback: str, secret: str, body: bytes) -> None:
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/rss+xml", "X-Hub-Signature": f"sha256={signature}"}
        answer = await self.client.post(callback, content=body, headers=headers)
        if answer.status_code >= 300:
            raise BenchFailure(f"a push was answered {answer.status_code}: {answer.text[:200]}")

    async def _phase(
        self,
        items: list[Item],
        duration_s: float,
        seed: int,
        publish: Callable[[Item], None],
    ) -> dict[str, dict[str, float]]:
        rng = random.Random(seed)
        moments = sorted(rng.uniform(0, duration_s) for _ in items)
        start = time.monotonic() + 0.5
        for item, moment in zip(items, moments, strict=True):
            await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
            self.published[item[0]] = time.monotonic()
            self.published_wall[item[0]] = time.time()
            publish(item)
        keys = [key for key, _, _ in items]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_S):
                while not all(key in self.webhook and key in self.sse for key in keys):
                    await asyncio.sleep(0.05)
        missing = [key for key in keys if key not in self.webhook or key not in self.sse]
        if missing:
            raise BenchFailure(
                f"{len(missing)} of {len(keys)} items had not arrived at both the webhook and the "
                f"SSE stream {SETTLE_S:g} s after the last was published, e.g. {missing[:3]}"
            )
        return {
            "webhook": {key: self.webhook[key] - self.published[key] for key in keys},
            "sse": {key: self.sse[key] - self.published[key] for key in keys},
            "to_alert": {
                key: self.alert_created_wall[key] - self.published_wall[key] for key in keys
            },
            "alert_to_webhook": {
                key: self.webhook_wall[key] - self.alert_created_wall[key] for key in keys
            },
        }


def run_world(conn: Connection, port: int, api_url: str, token: str) -> None:
    """The child process's body."""
    asyncio.run(World(conn, port, api_url, token).serve())


class WorldHandle:
    """The parent's end of the world: commands with deadlines, run off sigwatch's loop."""

    def __init__(self, port: int, api_url: str, token: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=run_world, args=(child, port, api_url, token), daemon=True
        )
        self.process.start()
        child.close()

    async def ask(self, *command: Any, timeout_s: float) -> Any:
        """Send ``command``; its answer, or BenchFailure when none comes in ``timeout_s``."""
        self.conn.send(command)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.conn.poll, timeout_s):
            raise BenchFailure(f"the world did not answer {command[0]!r} within {timeout_s:g} s")
        answer = self.conn.recv()
        if isinstance(answer, BaseException):
            raise BenchFailure(f"{command[0]}: {answer}")
        return answer

    async def ready(self) -> None:
        """Wait until the world's server listens."""
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.conn.poll, 30):
            raise BenchFailure("the world did not start within 30 s")
        self.conn.recv()

    def stop(self) -> None:
        """End the child process, by force if it does not exit."""
        with contextlib.suppress(OSError):
            self.conn.send(("exit",))
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- sigwatch, embedded -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stories(count: int) -> list[tuple[str, str, str]]:
    """``count`` (project, ticker, event) announcements, each one story of its own."""
    rng = random.Random(20261204)
    names: set[str] = set()
    while len(names) * len(ANNOUNCEMENTS) < count:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize())
    letters = string.ascii_uppercase
    projects = [
        (f"{name} Network", f"Q{letters[i // 26 % 26]}{letters[i % 26]}")
        for i, name in enumerate(sorted(names))
    ]
    return [(p, s, e) for p, s in projects for e in ANNOUNCEMENTS][:count]


async def prepare(settings: Settings, announced: list[tuple[str, str, str]]) -> str:
    """A migrated database with an admin and the watched projects; the admin's access token."""
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        async with session_factory(engine).begin() as session:
            admin = await users.create_user(
                session, username="admin", password_hash="unused", role="admin"
            )
            for name, symbol in sorted({(p, s) for p, s, _ in announced}):
                await entities.create_entity(session, name=name, symbols=[symbol])
            admin_id = admin.id
    finally:
        await engine.dispose()
    return auth.issue_token(
        ensure_secret_key(settings),
        user_id=admin_id,
        role="admin",
        token_type="access",
        ttl_s=3600,
    )


async def configure(api: httpx.AsyncClient, world: str) -> None:
    """Through the API, as a user would: the webhook, a subscription of every alert, the polled
    ``json`` source (every second) and the pushed feed."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await api.post(path, json=body)
        if answer.status_code != 201:
            raise BenchFailure(f"POST {path} answered {answer.status_code}: {answer.text[:300]}")
        result: dict[str, Any] = answer.json()
        return result

    channel = await post(
        "/api/v1/channels",
        {"kind": "webhook", "name": "receiver", "config": {"url": f"{world}/hook"}},
    )
    await post(
        "/api/v1/subscriptions",
        {"name": "everything", "channel_ids": [channel["id"]], "mode": "instant"},
    )
    json_options = {
        "url": f"{world}/items.json",
        "items": "items",
        "id": "id",
        "title": "title",
        "text": "text",
        "date": "published",
    }
    await post(
        "/api/v1/sources",
        {"kind": "json", "name": "polled", "config": json_options, "poll_interval_s": 1},
    )
    await post(
        "/api/v1/sources",
        {"kind": "rss", "name": "pushed", "config": {"url": f"{world}/feed.xml"}},
    )


async def serve_app(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` (lifespan entered by the caller) with uvicorn on 127.0.0.1:``port``."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task


def quantiles(latencies: dict[str, float]) -> tuple[float, float]:
    """p50 and p99 of the latencies, in seconds."""
    ordered = sorted(latencies.values())
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return round(statistics.median(ordered), 3), round(p99, 3)


async def main(args: argparse.Namespace) -> dict[str, float]:
    configure_logging("warning")
    announced = stories(2 * args.items)
    items: list[Item] = [
        (f"{name}|{event}", name, ANNOUNCEMENTS[event].format(A=name, S=symbol))
        for name, symbol, event in announced
    ]
    api_port, world_port = free_port(), free_port()
    api_url, world_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{world_port}"
    with tempfile.TemporaryDirectory(prefix="sigwatch-bench-latency-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp),
            allowed_private_networks=["127.0.0.1/32"],
            host_rate_limit="",
            public_url=api_url,
            log_level="warning",
        )
        token = await prepare(settings, announced)
        world = WorldHandle(world_port, api_url, token)
        app = create_app(settings, run_worker=True)
        try:
            async with app.router.lifespan_context(app):
                server, task = await serve_app(app, api_port)
                try:
                    await world.ready()
                    headers = {"Authorization": f"Bearer {token}"}
                    async with httpx.AsyncClient(base_url=api_url, headers=headers) as api:
                        await configure(api, world_url)
                    await world.ask("connect_sse", timeout_s=20)
                    deadline = args.duration_s + SETTLE_S + 30
                    polled = await world.ask(
                        "publish_polled",
                        items[: args.items],
                        args.duration_s,
                        1,
                        timeout_s=deadline,
                    )
                    pushed = await world.ask(
                        "publish_pushed",
                        items[args.items :],
                        args.duration_s,
                        2,
                        timeout_s=deadline + SUBSCRIBE_TIMEOUT_S,
                    )
                    await world.ask("disconnect_sse", timeout_s=10)
                finally:
                    server.should_exit = True
                    await task
        finally:
            world.stop()
    figures: dict[str, float] = {}
    for phase, result in (("poll", polled), ("push", pushed)):
        for where in ("webhook", "sse", "to_alert", "alert_to_webhook"):
            figures[f"{phase}_{where}_p50_s"], figures[f"{phase}_{where}_p99_s"] = quantiles(
                result[where]
            )
    figures["items"] = args.items
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200, help="items published per phase")
    parser.add_argument(
        "--duration-s", type=float, default=80.0, help="how long each phase publishes for"
    )
    arguments = parser.parse_args()
    started = time.monotonic()
    try:
        result = asyncio.run(main(arguments))
    except BenchFailure as failure:
        print(f"bench_latency failed: {failure}")
        sys.exit(1)
    print(
        f"polled every 1 s, {arguments.items} items over {arguments.duration_s:g} s: "
        f"to the webhook p50 {result['poll_webhook_p50_s']} s, p99 {result['poll_webhook_p99_s']}"
        f" s (target 2.0); to SSE p50 {result['poll_sse_p50_s']} s, p99 "
        f"{result['poll_sse_p99_s']} s"
    )
    print(
        f"pushed by a WebSub hub: to the webhook p50 {result['push_webhook_p50_s']} s, p99 "
        f"{result['push_webhook_p99_s']} s (target 0.5); to SSE p50 {result['push_sse_p50_s']} s,"
        f" p99 {result['push_sse_p99_s']} s ({time.monotonic() - started:.0f} s in all)"
    )
    print(json.dumps(result))
