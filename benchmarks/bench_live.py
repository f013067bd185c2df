"""Live fan-out: deliveries/s to 1,000 WebSocket clients, against a bare websockets broadcast,
and the end-to-end latency from a stored post to a WebSocket client receiving its alert.

Everything runs on 127.0.0.1. The server side runs in this process: the real app
(``create_app``, embedded mode: SQLite and the in-process bus) under uvicorn. The clients run in
a child process: one asyncio loop holding 1,000 ``websockets`` connections that count the
messages they receive. Clients do not negotiate compression, for both servers alike.

Fan-out: each round publishes ``--events`` real alert events (their JSON as clients get it,
~1 kB) on the app's bus, as ``publish_alert_events`` does after a commit; the hub hands them to
every client. Timed from the first publish until the client process has counted every
delivery (``time.monotonic`` is the same clock in both processes). The floor is a bare
``websockets`` server in this process that calls ``websockets.broadcast`` with the same text to
the same 1,000 clients. Each figure is the median of ``--rounds`` rounds.

Latency: ``--posts`` posts at ``--rate`` posts/s, each announcing a new story (so each makes
one ``alert.created`` event), go through the real store path in one transaction per post —
``store_posts``, ``detect_and_record`` (detection, story folding, history row), commit — then
``publish_alert_events`` (one query, bus, hub, WebSocket). A post's latency runs from its slot
in the schedule (when it is due to be stored; a backlog counts against it) until the client
process receives its alert. The tail is set by CPython's full garbage collections of the server
process (75-100 ms each with the app's heap); ``--gc-freeze`` shows the effect of exempting
the objects alive at startup with ``gc.freeze()``.

    .venv/bin/python benchmarks/bench_live.py [--clients 1000] [--events 200] [--rounds 3]
        [--posts 500] [--rate 100] [--gc-freeze]

The last line printed is one JSON object: {"deliveries_per_s", "bare_deliveries_per_s",
"ratio", "latency_p50_ms", "latency_p99_ms"}.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import resource
import socket
import statistics
import string
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from sigwatch import auth
from sigwatch.alerts.detectors import DetectorCache
from sigwatch.alerts.record import alert_threshold, detect_and_record
from sigwatch.api import create_app
from sigwatch.api.deps import Runtime
from sigwatch.config import Settings, ensure_secret_key, load_settings
from sigwatch.db import entities, sources, users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.posts import get_posts_by_ids, store_posts
from sigwatch.live import load_alert_events, publish_alert_events
from sigwatch.live.events import wire_event
from sigwatch.observability.logging import configure_logging
from sigwatch.sources.base import CollectedPost

SEED_SYLLABLES = "ka lo mi ne ru sa ti vo ze qua bri dor fen gal hux jor kel lum mar nix".split()
ANNOUNCEMENTS = {
    "mainnet": "{A} mainnet is live: the {A} mainnet launch opens the network to everyone today",
    "airdrop": "{A} airdrop claim is now open: check eligibility for the ${S} airdrop",
    "tge": "{A} token generation event (TGE) is scheduled: ${S} claim opens today",
    "listing": "Binance Will List {A} ({S}) with Seed Tag Applied",
}
EVENT_PREFIX = '{"id"'  # how an alert event's text starts, as opposed to hello or ping
CONNECT_BATCH = 100


# --- the client process -----------------------------------------------------------------------


def run_clients(conn: Connection) -> None:
    """The child process: obey the parent's commands over ``conn`` until told to exit."""
    asyncio.run(_Clients(conn).serve())


class _Clients:
    """Holds WebSocket connections, counts what they receive and reports to the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.arrivals: list[tuple[str, str, float]] = []

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, *args = await loop.run_in_executor(None, self.conn.recv)
            if command == "connect":
                await self.connect(*args)
                self.conn.send("ready")
            elif command == "expect":
                (self.target,) = args
                self.reached.clear()
                if self.count >= self.target:
                    self.reached.set()
                await self.reached.wait()
                self.conn.send(time.monotonic())
            elif command == "arrivals":
                self.conn.send(self.arrivals)
            elif command == "close":
                await self.close()
                self.conn.send("closed")
            else:
                await self.close()
                return

    async def connect(self, url: str, count: int, record: bool) -> None:
        self.count, self.target, self.arrivals = 0, 1 << 62, []
        self.reached = asyncio.Event()
        for start in range(0, count, CONNECT_BATCH):
            opened = await asyncio.gather(
                *(
                    connect(url, compression=None, max_queue=None, ping_interval=None)
                    for _ in range(min(CONNECT_BATCH, count - start))
                )
            )
            self.sockets += opened
        for ws in self.sockets:
            self.readers.append(asyncio.create_task(self.read(ws, record)))

    async def read(self, ws: ClientConnection, record: bool) -> None:
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith(EVENT_PREFIX):
                    if record:
                        alert = json.loads(message)["alert"]
                        self.arrivals.append((alert["entity"], alert["event"], time.monotonic()))
                    self.count += 1
                    if self.count >= self.target:
                        self.reached.set()
        except Exception:
            pass

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        self.sockets, self.readers = [], []


class Clients:
    """The parent's handle on the client process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=run_clients, args=(child_conn,), daemon=True)
        self.process.start()

    async def ask(self, *command: Any) -> Any:
        """Send ``command`` and wait for the answer, without blocking the server's loop."""
        self.conn.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    def stop(self) -> None:
        """End the client process."""
        self.conn.send(("exit",))
        self.process.join(timeout=10)


# --- the server side --------------------------------------------------------------------------


def _names(count: int) -> list[tuple[str, str]]:
    """``count`` made-up project names with unique tickers."""
    import random

    rng = random.Random(20260501)
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(SEED_SYLLABLES) for _ in range(3)).capitalize())
    letters = string.ascii_uppercase
    return [
        (f"{name} Protocol", f"Z{letters[i // 26 % 26]}{letters[i % 26]}X")
        for i, name in enumerate(sorted(names))
    ]


async def prepare(settings: Settings, projects: list[tuple[str, str]]) -> tuple[str, int]:
    """A migrated database with an admin, the watchlist and one source; the admin's token."""
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        async with session_factory(engine).begin() as session:
            admin = await users.create_user(
                session, username="admin", password_hash="unused", role="admin"
            )
            for name, symbol in projects:
                await entities.create_entity(session, name=name, symbols=[symbol])
            source = await sources.create_source(
                session,
                owner_id=admin.id,
                kind="rss",
                name="bench feed",
                config={"url": "https://news.example/feed.xml"},
            )
            admin_id, source_id = admin.id, source.id
    finally:
        await engine.dispose()
    token = auth.issue_token(
        ensure_secret_key(settings),
        user_id=admin_id,
        role="admin",
        token_type="access",
        ttl_s=settings.access_token_ttl_s,
    )
    return token, source_id


async def serve_app(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve ``app`` (lifespan entered) with uvicorn on 127.0.0.1, port 0."""
    sock = _bound_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, backlog=4096)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, sock.getsockname()[1]


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def measure_latency(
    runtime: Runtime,
    clients: Clients,
    url: str,
    source_id: int,
    projects: list[tuple[str, str]],
    posts: int,
    rate: float,
) -> list[float]:
    """Store ``posts`` announcements at ``rate``/s and time each until its alert arrives."""
    await clients.ask("connect", url, 1, True)
    detectors = DetectorCache()
    threshold = alert_threshold(runtime.settings)
    stories = [(p, e) for p in projects for e in ANNOUNCEMENTS][:posts]
    due: dict[tuple[str, str], float] = {}

    async def store_one(n: int, name: str, symbol: str, event: str) -> None:
        text = ANNOUNCEMENTS[event].format(A=name, S=symbol)
        post = CollectedPost(
            external_id=f"bench-{n}",
            text=text,
            title=text,
            url=f"https://news.example/{n}",
            published_at=datetime.now(UTC),
        )
        async with runtime.sessions.begin() as session:
            stored = await store_posts(session, source_id, [post])
            changes = await detect_and_record(
                session,
                await get_posts_by_ids(session, stored.new_ids),
                await detectors.get(session),
                min_confidence=threshold,
                source_name="bench feed",
            )
        history_ids = [c.history_id for c in changes if c.history_id is not None]
        await publish_alert_events(runtime.bus, runtime.sessions, history_ids)

    async with runtime.sessions() as session:
        await detectors.get(session)  # compiled once, as a running worker has it
    start = time.monotonic() + 0.2
    # One post after another, as one poller does: a post that comes late waits for the last.
    for n, ((name, symbol), event) in enumerate(stories):
        slot = start + n / rate
        due[(name, event)] = slot
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await store_one(n, name, symbol, event)
    await clients.ask("expect", len(stories))
    arrivals = await clients.ask("arrivals")
    await clients.ask("close")
    return [(at - due[(entity, event)]) * 1000 for entity, event, at in arrivals]


async def fan_out_rate(
    clients: Clients,
    url: str,
    count: int,
    events: int,
    rounds: int,
    publish: Callable[[int], Awaitable[None] | None],
) -> float:
    """Median deliveries/s over ``rounds`` rounds of ``events`` events to ``count`` clients."""
    await clients.ask("connect", url, count, False)
    await asyncio.sleep(0.5)  # every hello and handshake settled
    rates = []
    expected = 0
    for _ in range(rounds):
        expected += count * events
        started = time.monotonic()
        for n in range(events):
            result = publish(n)
            if result is not None:
                await result
        finished = await clients.ask("expect", expected)
        rates.append(count * events / (finished - started))
        await asyncio.sleep(0.2)
    await clients.ask("close")
    return statistics.median(rates)


async def main(args: argparse.Namespace) -> dict[str, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    configure_logging("warning")
    clients = Clients()
    projects = _names((args.posts + len(ANNOUNCEMENTS) - 1) // len(ANNOUNCEMENTS))
    with tempfile.TemporaryDirectory(prefix="sigwatch-bench-live-") as tmp:
        settings = load_settings(data_dir=Path(tmp))
        token, source_id = await prepare(settings, projects)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            runtime: Runtime = app.state.runtime
            server, task, port = await serve_app(app)
            if args.gc_freeze:
                # What a server can do once started: exempt the objects alive now from the
                # collector, so a full collection scans only what requests allocate since.
                gc.collect()
                gc.freeze()
            url = f"ws://127.0.0.1:{port}/api/v1/ws?token={token}"
            try:
                latencies = await measure_latency(
                    runtime, clients, url, source_id, projects, args.posts, args.rate
                )
                (sample,) = await load_alert_events(runtime.sessions, [1])
                deliveries = await fan_out_rate(
                    clients,
                    url,
                    args.clients,
                    args.events,
                    args.rounds,
                    lambda n: runtime.bus.publish({**sample, "id": 1_000_000 + n}),
                )
                bare = await bare_rate(clients, args, sample)
            finally:
                server.should_exit = True
                await task
    clients.stop()
    latencies.sort()
    return {
        "deliveries_per_s": round(deliveries),
        "bare_deliveries_per_s": round(bare),
        "ratio": round(deliveries / bare, 3),
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
    }


async def bare_rate(clients: Clients, args: argparse.Namespace, sample: dict[str, Any]) -> float:
    """The floor: websockets.broadcast of the same text to the same number of clients."""
    connected: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connected.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connected.discard(ws)

    sock = _bound_socket()
    async with serve(handler, sock=sock, compression=None, ping_interval=None, max_queue=None):
        port = sock.getsockname()[1]
        texts = [
            json.dumps(wire_event({**sample, "id": 2_000_000 + n}), separators=(",", ":"))
            for n in range(args.events)
        ]
        return await fan_out_rate(
            clients,
            f"ws://127.0.0.1:{port}/",
            args.clients,
            args.events,
            args.rounds,
            lambda n: broadcast(connected, texts[n]),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200, help="events per fan-out round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0, help="posts per second")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() the server process once started"
    )
    arguments = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(main(arguments))
    print(
        f"fan-out to {arguments.clients} WebSocket clients: "
        f"{result['deliveries_per_s']:,} deliveries/s (bare websockets broadcast: "
        f"{result['bare_deliveries_per_s']:,}/s, ratio {result['ratio']})"
    )
    print(
        f"post stored -> client received, {arguments.posts} posts at {arguments.rate:g}/s: "
        f"p50 {result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms "
        f"({time.monotonic() - started:.0f} s in all)"
    )
    print(json.dumps(result))
