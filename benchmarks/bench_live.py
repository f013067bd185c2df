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

A client counts as connected once the server's hello has arrived (the server subscribes it to
its hub only after signing it in). Every wait has a deadline: a client that does not open within
``OPEN_TIMEOUT_S``, or a round whose deliveries have not all arrived within ``--round-timeout-s``,
ends the benchmark with one line saying what was missing and why (clients that never connected,
clients the server closed — a client dropped as too slow is closed with 1013 and its reason —
clients still open but short of events) and exit status 1.

    .venv/bin/python benchmarks/bench_live.py [--clients 1000] [--events 200] [--rounds 3]
        [--posts 500] [--rate 100] [--gc-freeze] [--round-timeout-s 60]

The last line printed is one JSON object: {"deliveries_per_s", "bare_deliveries_per_s",
"ratio", "latency_p50_ms", "latency_p99_ms", "store_path_p50_ms"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import resource
import socket
import statistics
import string
import sys
import tempfile
import time
from collections import Counter
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
from sigwatch.alerts.record import alert_threshold, detect_and_record, post_sentiment
from sigwatch.api import create_app
from sigwatch.api.deps import Runtime
from sigwatch.config import Settings, ensure_secret_key, load_settings
from sigwatch.db import entities, sources, users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.posts import NewPost, store_posts
from sigwatch.live import load_alert_events, publish_alert_events
from sigwatch.live.events import wire_event
from sigwatch.observability.logging import configure_logging

SEED_SYLLABLES = "ka lo mi ne ru sa ti vo ze qua bri dor fen gal hux jor kel lum mar nix".split()
ANNOUNCEMENTS = {
    "mainnet": "{A} mainnet is live: the {A} mainnet launch opens the network to everyone today",
    "airdrop": "{A} airdrop claim is now open: check eligibility for the ${S} airdrop",
    "tge": "{A} token generation event (TGE) is scheduled: ${S} claim opens today",
    "listing": "Binance Will List {A} ({S}) with Seed Tag Applied",
}
EVENT_PREFIX = '{"id"'  # how an alert event's text starts, as opposed to hello or ping
#: How the server's first message starts: the client is subscribed once it has it.
HELLO_PREFIX = '{"type":"hello"'
CONNECT_BATCH = 100
#: How long one client may take to open its connection (websockets' own default is 10 s).
OPEN_TIMEOUT_S = 30.0
#: How long the client process may take to close its connections.
CLOSE_TIMEOUT_S = 30.0


# --- the client process -----------------------------------------------------------------------


class BenchFailure(Exception):
    """A phase of the benchmark missed its deadline or lost clients; the message says how."""


def run_clients(conn: Connection) -> None:
    """The child process: obey the parent's commands over ``conn`` until told to exit."""
    asyncio.run(_Clients(conn).serve())


def _why(exc: BaseException) -> str:
    """A short, countable reason for a failed connection."""
    return f"{type(exc).__name__}: {exc}"[:160]


async def _open(url: str, timeout_s: float) -> ClientConnection:
    """A connection the server has subscribed: open once its hello has arrived.

    The handshake completes before the server has signed the client in and added it to its
    hub; a client counted as connected at the handshake misses the events published meanwhile,
    and a round waiting for them never ends. (That was the hang with 900-1,000 clients: signing
    in 1,000 clients takes longer than the pause that used to stand in for this wait.)
    """
    async with asyncio.timeout(timeout_s):
        ws = await connect(url, compression=None, max_queue=None, ping_interval=None)
        try:
            first = await ws.recv()
        except BaseException:
            await ws.close()
            raise
    if not (isinstance(first, str) and first.startswith(HELLO_PREFIX)):
        await ws.close()
        raise ConnectionError(f"the server answered {str(first)[:100]!r} instead of a hello")
    return ws


class _Reader:
    """One connection of the client process and what it received."""

    __slots__ = ("ws", "received", "ended")

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received = 0
        #: Why the connection ended before it was told to close (None while open).
        self.ended: str | None = None


class _Clients:
    """Holds WebSocket connections, counts what they receive and reports to the parent.

    A round is settled when every connection has received its target, or as soon as one
    connection has ended short of it (it can never get there); the parent is told which.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.readers: list[_Reader] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.target = 0
        self.complete = 0
        self.settled = asyncio.Event()
        self.arrivals: list[tuple[str, str, float]] = []

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, *args = await loop.run_in_executor(None, self.conn.recv)
            if command == "connect":
                self.conn.send(await self.connect(*args))
            elif command == "expect":
                self.conn.send(await self.expect(*args))
            elif command == "arrivals":
                self.conn.send(self.arrivals)
            elif command == "close":
                await self.close()
                self.conn.send("closed")
            else:
                await self.close()
                return

    async def connect(
        self, url: str, count: int, record: bool, open_timeout_s: float
    ) -> dict[str, Any]:
        """Open ``count`` connections, ``CONNECT_BATCH`` at a time; count those that failed."""
        self.target, self.complete, self.arrivals = 1 << 62, 0, []
        self.settled = asyncio.Event()
        failed: Counter[str] = Counter()
        for start in range(0, count, CONNECT_BATCH):
            opened = await asyncio.gather(
                *(_open(url, open_timeout_s) for _ in range(min(CONNECT_BATCH, count - start))),
                return_exceptions=True,
            )
            for ws in opened:
                if isinstance(ws, BaseException):
                    failed[_why(ws)] += 1
                else:
                    self.readers.append(_Reader(ws))
        self.tasks = [asyncio.create_task(self.read(r, record)) for r in self.readers]
        return {"connected": len(self.readers), "failed": dict(failed)}

    async def read(self, reader: _Reader, record: bool) -> None:
        try:
            async for message in reader.ws:
                if isinstance(message, str) and message.startswith(EVENT_PREFIX):
                    if record:
                        alert = json.loads(message)["alert"]
                        self.arrivals.append((alert["entity"], alert["event"], time.monotonic()))
                    reader.received += 1
                    if reader.received == self.target:
                        self.complete += 1
                        if self.complete == len(self.readers):
                            self.settled.set()
            reader.ended = f"closed: {reader.ws.close_code} {reader.ws.close_reason!r}"
        except Exception as exc:
            reader.ended = _why(exc)
        if reader.received < self.target:
            self.settled.set()  # this connection can never reach the target

    async def expect(self, per_client: int, timeout_s: float) -> dict[str, Any]:
        """Wait until every connection has received ``per_client`` events, at most
        ``timeout_s``; report when, or what is missing and why."""
        self.target = per_client
        self.complete = sum(r.received >= per_client for r in self.readers)
        self.settled.clear()
        if self.complete == len(self.readers) or any(r.ended for r in self.readers):
            self.settled.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.settled.wait()
        at = time.monotonic()
        short = [r for r in self.readers if r.received < per_client]
        return {
            "at": at if not short else None,
            "clients": len(self.readers),
            "short": len(short),
            "missing": sum(per_client - r.received for r in short),
            "ended": dict(Counter(r.ended for r in short if r.ended is not None)),
            "short_open": sum(r.ended is None for r in short),
        }

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(r.ws.close() for r in self.readers), return_exceptions=True)
        self.readers, self.tasks = [], []


class Clients:
    """The parent's handle on the client process; every answer it waits for has a deadline."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=run_clients, args=(child_conn,), daemon=True)
        self.process.start()
        child_conn.close()  # so the parent reads EOF, not silence, if the child dies

    async def ask(self, *command: Any, timeout_s: float) -> Any:
        """Send ``command`` and wait for the answer, without blocking the server's loop."""
        self.conn.send(command)
        answered = await asyncio.get_running_loop().run_in_executor(None, self.conn.poll, timeout_s)
        if not answered:
            raise BenchFailure(
                f"the client process did not answer {command[0]!r} within {timeout_s:g} s"
            )
        try:
            return self.conn.recv()
        except EOFError:
            raise BenchFailure(
                f"the client process exited (code {self.process.exitcode}) during {command[0]!r}"
            ) from None

    async def connect(self, url: str, count: int, record: bool) -> None:
        """Open ``count`` connections to ``url``; BenchFailure naming why if any did not open."""
        # Connections open CONNECT_BATCH at a time, each within OPEN_TIMEOUT_S.
        batches = -(-count // CONNECT_BATCH)
        answer = await self.ask(
            "connect", url, count, record, OPEN_TIMEOUT_S, timeout_s=batches * OPEN_TIMEOUT_S + 10
        )
        if answer["failed"]:
            reasons = "; ".join(f"{n} × {why}" for why, n in answer["failed"].items())
            raise BenchFailure(
                f"{count - answer['connected']} of {count} clients never connected ({reasons})"
            )

    async def expect(self, per_client: int, timeout_s: float, what: str) -> float:
        """When every client had received ``per_client`` events; BenchFailure saying what
        was missing and why when they did not within ``timeout_s``."""
        report = await self.ask("expect", per_client, timeout_s, timeout_s=timeout_s + 10)
        if report["at"] is not None:
            return float(report["at"])
        reasons = [f"{n} clients ended early ({why})" for why, n in report["ended"].items()]
        if report["short_open"]:
            reasons.append(
                f"{report['short_open']} clients still connected but short of their events "
                f"after {timeout_s:g} s"
            )
        raise BenchFailure(
            f"{what}: {report['short']} of {report['clients']} clients did not receive all "
            f"{per_client} events ({report['missing']:,} deliveries missing): " + "; ".join(reasons)
        )

    def stop(self) -> None:
        """End the client process, by force if it does not exit."""
        with contextlib.suppress(OSError):
            self.conn.send(("exit",))
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


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
    timeout_s: float,
) -> tuple[list[float], list[float]]:
    """Store ``posts`` announcements at ``rate``/s and time each until its alert arrives
    (every alert within ``timeout_s`` of the last post stored); also how long the store path
    (store, detect, commit, publish) took per post, in ms: above ``1000 / rate`` a backlog
    builds and the latency grows with every post."""
    await clients.connect(url, 1, True)
    detectors = DetectorCache()
    threshold = alert_threshold(runtime.settings)
    stories = [(p, e) for p in projects for e in ANNOUNCEMENTS][:posts]
    due: dict[tuple[str, str], float] = {}
    store_ms: list[float] = []

    async def store_one(n: int, name: str, symbol: str, event: str) -> None:
        text = ANNOUNCEMENTS[event].format(A=name, S=symbol)
        post = NewPost(
            external_id=f"bench-{n}",
            text=text,
            title=text,
            url=f"https://news.example/{n}",
            published_at=datetime.now(UTC),
        )
        async with runtime.sessions.begin() as session:
            stored = await store_posts(session, source_id, [post], sentiment=post_sentiment)
            changes = await detect_and_record(
                session,
                stored.new_posts,
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
        began = time.monotonic()
        await store_one(n, name, symbol, event)
        store_ms.append((time.monotonic() - began) * 1000)
    await clients.expect(len(stories), timeout_s, f"latency, {len(stories)} posts")
    arrivals = await clients.ask("arrivals", timeout_s=10)
    await clients.ask("close", timeout_s=CLOSE_TIMEOUT_S)
    return [(at - due[(entity, event)]) * 1000 for entity, event, at in arrivals], store_ms


async def fan_out_rate(
    clients: Clients,
    url: str,
    count: int,
    events: int,
    rounds: int,
    publish: Callable[[int], Awaitable[None] | None],
    timeout_s: float,
    what: str,
) -> float:
    """Median deliveries/s over ``rounds`` rounds of ``events`` events to ``count`` clients;
    a round whose deliveries do not all arrive within ``timeout_s`` fails the benchmark."""
    await clients.connect(url, count, False)
    rates = []
    for round_number in range(1, rounds + 1):
        started = time.monotonic()
        for n in range(events):
            result = publish(n)
            if result is not None:
                await result
        finished = await clients.expect(
            events * round_number, timeout_s, f"{what}, round {round_number} of {rounds}"
        )
        rates.append(count * events / (finished - started))
        await asyncio.sleep(0.2)
    await clients.ask("close", timeout_s=CLOSE_TIMEOUT_S)
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
                latencies, store_ms = await measure_latency(
                    runtime,
                    clients,
                    url,
                    source_id,
                    projects,
                    args.posts,
                    args.rate,
                    args.round_timeout_s,
                )
                (sample,) = await load_alert_events(runtime.sessions, [1])
                deliveries = await fan_out_rate(
                    clients,
                    url,
                    args.clients,
                    args.events,
                    args.rounds,
                    lambda n: runtime.bus.publish({**sample, "id": 1_000_000 + n}),
                    args.round_timeout_s,
                    "sigwatch fan-out",
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
        "store_path_p50_ms": round(statistics.median(store_ms), 2),
    }


async def bare_rate(clients: Clients, args: argparse.Namespace, sample: dict[str, Any]) -> float:
    """The floor: websockets.broadcast of the same text to the same number of clients."""
    connected: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connected.add(ws)
        # A hello once subscribed, as the app sends, so clients wait for it the same way.
        await ws.send('{"type":"hello"}')
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
            args.round_timeout_s,
            "bare broadcast",
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
    parser.add_argument(
        "--round-timeout-s",
        type=float,
        default=60.0,
        help="deadline of each round for all its deliveries to arrive",
    )
    arguments = parser.parse_args()
    started = time.monotonic()
    try:
        result = asyncio.run(main(arguments))
    except BenchFailure as failure:
        print(f"bench_live failed: {failure}")
        sys.exit(1)
    print(
        f"fan-out to {arguments.clients} WebSocket clients: "
        f"{result['deliveries_per_s']:,} deliveries/s (bare websockets broadcast: "
        f"{result['bare_deliveries_per_s']:,}/s, ratio {result['ratio']})"
    )
    print(
        f"post stored -> client received, {arguments.posts} posts at {arguments.rate:g}/s: "
        f"p50 {result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms "
        f"({time.monotonic() - started:.0f} s in all); the store path took "
        f"{result['store_path_p50_ms']} ms per post (median), "
        f"{1000 / arguments.rate:g} ms between posts"
    )
    print(json.dumps(result))
