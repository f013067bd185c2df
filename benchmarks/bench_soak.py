"""Soak: the resident memory of embedded sigwatch polling 1,000 sources for ten minutes.

Everything runs on 127.0.0.1. "The world" is one child process, one asyncio loop: an HTTP/1.1
server on four ports, so that each kind of trouble is a host of its own (sigwatch's circuit
breakers and rate limits are per host, and a port is a host):

- the feeds: ``--sources`` RSS feeds. Most are news feeds: new items are published at random
  feeds, ``--items-per-s`` in all, and each feed keeps its newest ``FEED_ITEMS``, so no answer
  grows without bound. Every ``EVENT_EVERY``-th item announces an event (a listing, a mainnet,
  a TGE, an airdrop) of a project of the watchlist, told by ``TELLINGS`` feeds in turn, so
  detection makes alerts and folds the later tellings into their story. Every
  ``SILENT_EVERY``-th feed never changes: it answers 304 to its ETag. Every feed answers 304
  while it has nothing new;
- the unavailable host: every ``FAILING_EVERY``-th feed, half of them, answers 503;
- the unanswered host: the other half reads the request and never answers, so the fetch
  times out (``SIGWATCH_FETCH_TIMEOUT_S``, 20 s by default);
- the webhook receiver: ``/hook``, the channel of a subscription of every alert and every
  system alert, so deliveries flow too.

The database is SQLite in a temp dir, migrated here, with an admin and the sources (one
``rss`` source per feed, ``poll_interval_s`` ``--poll-interval-s``, first polls spread over
that interval); the watchlist of ``--entities`` made-up projects is loaded with
``sigwatch watchlist import`` from a YAML file. Then ``sigwatch up`` (no demo): one process
serving the API and running the worker, with the deployed settings except that the SSRF guard
allows 127.0.0.1/32, the per-host rate limit is off (every news feed is on one local server,
which in a deployment stands for as many hosts) and the ``rss`` minimum interval is
``MIN_POLL_INTERVAL_S``, so adaptive polling keeps every news feed between that and its own
interval: polling never stops. Once it answers ``/health/ready`` the channel and the
subscription are made through the API, as a user would.

For ``--minutes`` from then, sigwatch's resident memory (``VmRSS``, and its anonymous part
``RssAnon``, from /proc/<pid>/status) is read every ``--sample-s`` seconds, and its
``/metrics`` (polls by outcome, posts stored, alerts, deliveries, queue depth) with it. The
slope is a least-squares fit of the samples after the warm-up (``--warmup-s``: the first polls
store every feed's backlog and compile the detectors), in MB per minute.

Every wait has a deadline: sigwatch not ready within ``START_TIMEOUT_S``, sigwatch exiting, or
no poll recorded (``sigwatch_polls``) for ``STALL_S`` ends the benchmark with what happened, the
end of sigwatch's log and exit status 1. Child processes are stopped on the way out, also on
Ctrl-C and SIGTERM.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 10] [--warmup-s 60] [--sources 1000]
        [--entities 10000] [--items-per-s 5] [--poll-interval-s 10] [--sample-s 5]

Targets: ≤ 200 MB resident at the end, no growth trend (a slope of at most
``TARGET_SLOPE_MB_PER_MIN``). The last line is one JSON object: rss_mb_start,
rss_mb_warm (at the end of the warm-up), rss_mb_end, rss_mb_max, rss_mb_slope_per_min,
rss_anon_mb_end, rss_anon_mb_slope_per_min, polls (and polls_ok, polls_304, polls_error),
posts, alerts, webhooks, failing_sources, cpu_core_share and the parameters of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import FrameType
from typing import Any
from xml.sax.saxutils import escape

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from sigwatch import auth
from sigwatch.config import Settings, load_settings
from sigwatch.db import users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Alert, Post, Source
from sigwatch.observability.logging import configure_logging
from sigwatch.sources.registry import source_origin

SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"
TARGET_RSS_MB_END = 200.0
#: "No growth trend": over a ten-minute run a slope below this is indistinguishable from the
#: heap settling; a leak of a poll's worth of objects at ~100 polls/s shows well above it.
TARGET_SLOPE_MB_PER_MIN = 0.5
#: Items a news feed holds: its newest, as a real feed keeps a window.
FEED_ITEMS = 20
#: Items a news feed holds before the run, and a silent feed forever.
FIRST_ITEMS = 3
#: Every this many feeds one fails (alternately 503 and no answer); of the others, every this
#: many is silent.
FAILING_EVERY = 20
SILENT_EVERY = 10
#: Every this many published items one announces an event; each announcement is told by this
#: many feeds in turn (a story: the first makes the alert, the others corroborate it).
EVENT_EVERY = 4
TELLINGS = 3
#: How often the world publishes the items due.
PUBLISH_TICK_S = 0.2
#: The ``rss`` fast lane for this run (``SIGWATCH_MIN_POLL_INTERVAL_RSS_S``; 30 s by default).
MIN_POLL_INTERVAL_S = 5
SERVER_START_TIMEOUT_S = 10.0
IMPORT_TIMEOUT_S = 300.0
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 10.0
#: No poll recorded for this long is a stall.
STALL_S = 60.0
PROGRESS_EVERY_S = 30.0
#: The world's ports, in the order of its listeners.
FEEDS, UNAVAILABLE, UNANSWERED, HOOKS = range(4)
#: The world's counters: answers 200, 304, 503, requests left unanswered, webhooks received,
#: items published, of which announcements.
OK, NOT_MODIFIED, SERVICE_UNAVAILABLE, LEFT_UNANSWERED, WEBHOOKS, PUBLISHED, EVENTS = range(7)
EVENT_PHRASES = (
    "{name} ({symbol}) mainnet launch is set for next week, the team confirms",
    "{name} opens its {symbol} airdrop claim to early users today",
    "Major exchange will list {name} ({symbol}) for spot trading",
    "{name} token generation event: {symbol} claims open on Thursday",
)
NEWS_TOPICS = (
    "central banks weigh another pause as inflation cools",
    "chip makers report record orders for data-centre hardware",
    "regulators publish a consultation on stablecoin reserves",
    "shipping rates ease as port congestion clears",
    "a heatwave lifts power prices across the region",
)
UNAVAILABLE_ANSWER = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
NOT_FOUND_ANSWER = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
HOOK_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class BenchFailure(Exception):
    """sigwatch did not start, exited or stalled, or a step was refused; the message says which."""


# --- the world (its own process) ---------------------------------------------------------------


def projects(count: int) -> list[tuple[str, str]]:
    """``count`` made-up project names and ticker symbols, the same in every run."""
    rng = random.Random(12)
    syllables = "bra cor dex fin gol hal ixi jun kor lum mav nor oqu pex qir ros sul tav".split()
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(syllables) for _ in range(4)).capitalize())
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [
        (f"{name} Network", f"X{letters[i // 676 % 26]}{letters[i // 26 % 26]}{letters[i % 26]}")
        for i, name in enumerate(sorted(names))
    ]


def feed_role(feed: int) -> str:
    """What feed number ``feed`` does: news, silent, unavailable (503) or unanswered."""
    if feed % FAILING_EVERY == FAILING_EVERY - 1:
        return "unavailable" if feed // FAILING_EVERY % 2 == 0 else "unanswered"
    return "silent" if feed % SILENT_EVERY == SILENT_EVERY - 2 else "news"


@dataclass
class Item:
    """One published item of a feed."""

    serial: int
    title: str
    published: datetime


@dataclass
class WorldFeed:
    """A feed's newest items and its answers, rebuilt only when an item is published."""

    number: int
    items: deque[Item] = field(default_factory=lambda: deque(maxlen=FEED_ITEMS))
    version: int = 0
    etag: bytes = b""
    full: bytes = b""
    not_modified: bytes = b""

    def publish(self, item: Item) -> None:
        """Add ``item`` as the newest; the oldest drops out beyond ``FEED_ITEMS``."""
        self.items.appendleft(item)
        self.version += 1
        self.full = b""

    def answers(self) -> tuple[bytes, bytes, bytes]:
        """(ETag, full answer, 304 answer) of the feed as it is now."""
        if not self.full:
            feed = self.number
            parts = [
                '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
                f"<title>Soak wire {feed}</title><link>https://wire{feed}.example/</link>"
                f"<description>Feed {feed} of the soak benchmark</description>"
            ]
            for item in self.items:
                link = f"https://wire{feed}.example/story-{item.serial}"
                title = escape(item.title)
                parts.append(
                    f"<item><title>{title}</title><link>{link}</link>"
                    f'<guid isPermaLink="false">soak-{item.serial}</guid>'
                    f"<pubDate>{format_datetime(item.published)}</pubDate>"
                    f"<description><![CDATA[<p>{title}. Report {item.serial} from wire {feed}; "
                    f"figures remain provisional.</p>]]></description></item>"
                )
            parts.append("</channel></rss>")
            body = "".join(parts).encode()
            self.etag = f'"soak-{feed}-v{self.version}"'.encode()
            self.full = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
                b"ETag: "
                + self.etag
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            self.not_modified = b"HTTP/1.1 304 Not Modified\r\nETag: " + self.etag + b"\r\n\r\n"
        return self.etag, self.full, self.not_modified


class World:
    """The feeds, the failing hosts and the webhook receiver, and what they have done."""

    def __init__(self, feeds: int, entity_count: int, items_per_s: float, counts: Any) -> None:
        self.counts = counts
        self.items_per_s = items_per_s
        self.watchlist = projects(entity_count)
        self.rng = random.Random(20261204)
        self.serial = 0
        self.feeds = [WorldFeed(feed) for feed in range(feeds)]
        self.news = [feed for feed in self.feeds if feed_role(feed.number) == "news"]
        before = datetime.now(UTC) - timedelta(days=1)
        for feed in self.feeds:
            if feed_role(feed.number) in ("news", "silent"):
                for minutes in range(FIRST_ITEMS, 0, -1):
                    feed.publish(self._news_item(before - timedelta(minutes=minutes)))

    def _news_item(self, published: datetime) -> Item:
        self.serial += 1
        topic = NEWS_TOPICS[self.serial % len(NEWS_TOPICS)]
        return Item(self.serial, f"Markets: {topic} (report {self.serial})", published)

    def _next_item(self) -> Item:
        """The next published item: plain news, or every EVENT_EVERY-th an announcement."""
        if self.counts[PUBLISHED] % EVENT_EVERY:
            return self._news_item(datetime.now(UTC))
        self.serial += 1
        telling = self.counts[EVENTS]
        self.counts[EVENTS] += 1
        announcement = telling // TELLINGS
        # A stride through the watchlist, so consecutive stories are of unrelated projects.
        name, symbol = self.watchlist[announcement * 7919 % len(self.watchlist)]
        phrase = EVENT_PHRASES[announcement % len(EVENT_PHRASES)]
        return Item(self.serial, phrase.format(name=name, symbol=symbol), datetime.now(UTC))

    async def publish_forever(self) -> None:
        """Publish ``items_per_s`` items a second, each to a news feed chosen at random."""
        due = 0.0
        while True:
            await asyncio.sleep(PUBLISH_TICK_S)
            due += self.items_per_s * PUBLISH_TICK_S
            while due >= 1 and self.news:
                self.rng.choice(self.news).publish(self._next_item())
                self.counts[PUBLISHED] += 1
                due -= 1

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection: answer each request in turn."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.split(b"\r\n")
                method, _, rest = request_line.partition(b" ")
                path = rest.partition(b" ")[0]
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get(b"content-length") or 0))
                answer = self.answer(method, path, headers)
                if answer is None:
                    # A server that has hung: keep the connection until the client gives up.
                    self.counts[LEFT_UNANSWERED] += 1
                    await reader.read()
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> bytes | None:
        """The complete answer to one request; None: leave it unanswered."""
        if path == b"/hook" and method == b"POST":
            self.counts[WEBHOOKS] += 1
            return HOOK_ANSWER
        match = re.fullmatch(rb"/feed/(\d+)\.xml", path)
        if match is None or int(match[1]) >= len(self.feeds):
            return NOT_FOUND_ANSWER
        feed = self.feeds[int(match[1])]
        role = feed_role(feed.number)
        if role == "unavailable":
            self.counts[SERVICE_UNAVAILABLE] += 1
            return UNAVAILABLE_ANSWER
        if role == "unanswered":
            return None
        etag, full, not_modified = feed.answers()
        if headers.get(b"if-none-match") == etag:
            self.counts[NOT_MODIFIED] += 1
            return not_modified
        self.counts[OK] += 1
        return full


def run_world(
    feeds: int,
    entity_count: int,
    items_per_s: float,
    ports: Any,
    counts: Any,
    ready: multiprocessing.synchronize.Event,
) -> None:
    """The world process: listen on four free ports of 127.0.0.1, publish and serve."""
    # The parent stops this process; Ctrl-C in the terminal is the parent's to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    world = World(feeds, entity_count, items_per_s, counts)

    async def main() -> None:
        servers = [
            await asyncio.start_server(world.connection, "127.0.0.1", 0, backlog=1024)
            for _ in range(4)
        ]
        for index, server in enumerate(servers):
            ports[index] = server.sockets[0].getsockname()[1]
        ready.set()
        await world.publish_forever()

    asyncio.run(main())


@dataclass
class WorldProcess:
    """The running world process, its ports and its counters."""

    process: multiprocessing.Process
    ports: tuple[int, ...]
    counts: Any

    @classmethod
    def start(cls, feeds: int, entity_count: int, items_per_s: float) -> WorldProcess:
        """Start the world and wait (bounded) until it listens."""
        ports = multiprocessing.Array("i", 4, lock=False)
        counts = multiprocessing.Array("q", 7, lock=False)
        ready = multiprocessing.Event()
        process = multiprocessing.Process(
            target=run_world,
            args=(feeds, entity_count, items_per_s, ports, counts, ready),
            daemon=True,
        )
        process.start()
        if not ready.wait(SERVER_START_TIMEOUT_S):
            process.kill()
            raise BenchFailure(f"the world did not start within {SERVER_START_TIMEOUT_S:g}s")
        return cls(process, tuple(ports), counts)

    def url(self, feed: int) -> str:
        """The address of feed number ``feed``, on the host its role puts it."""
        role = feed_role(feed)
        port = self.ports[
            UNAVAILABLE if role == "unavailable" else UNANSWERED if role == "unanswered" else FEEDS
        ]
        return f"http://127.0.0.1:{port}/feed/{feed}.xml"

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[HOOKS]}/hook"

    def count(self, which: int) -> int:
        """One of the counters (OK, NOT_MODIFIED …) as it is now."""
        return int(self.counts[which])

    def stop(self) -> None:
        """End the world process, killing it if it does not stop within seconds."""
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# --- sigwatch: the database, the watchlist and the process --------------------------------------


async def prepare(settings: Settings, world: WorldProcess, args: argparse.Namespace) -> int:
    """Migrate, check the database is the benchmark's own, add an admin and the sources; the
    admin's id."""
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as session:
            existing = await session.scalar(select(func.count()).select_from(Source))
        if existing:
            raise BenchFailure(f"the new database already holds {existing} sources")
        rng = random.Random(5)
        now = datetime.now(UTC)
        async with sessions.begin() as session:
            admin = await users.create_user(
                session, username="bench", password_hash="unused", role="admin"
            )
            for feed in range(args.sources):
                config = {"url": world.url(feed)}
                session.add(
                    Source(
                        owner_id=admin.id,
                        kind="rss",
                        name=f"soak {feed_role(feed)} {feed}",
                        config=config,
                        origin=source_origin("rss", config),
                        poll_interval_s=args.poll_interval_s,
                        # Spread over the first interval, as sources added over time are.
                        next_poll_at=now + timedelta(seconds=rng.uniform(0, args.poll_interval_s)),
                    )
                )
            await session.flush()
            return admin.id
    finally:
        await engine.dispose()


def sigwatch_environ(settings: Settings) -> dict[str, str]:
    """The environment of the sigwatch commands: the deployed settings, except that the SSRF
    guard lets them reach 127.0.0.1, the per-host rate limit is off and ``rss`` may be polled
    every ``MIN_POLL_INTERVAL_S``."""
    return {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": SECRET_KEY,
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        # Every news feed is on the one local server: the per-host politeness limit (10/s by
        # default) would throttle the polls of what stands for a thousand hosts.
        "SIGWATCH_HOST_RATE_LIMIT": "",
        "SIGWATCH_MIN_POLL_INTERVAL_RSS_S": str(MIN_POLL_INTERVAL_S),
        "SIGWATCH_LOG_LEVEL": "warning",
    }


def import_watchlist(environ: dict[str, str], entity_count: int, tmp: Path) -> None:
    """Write the watchlist as YAML and load it with ``sigwatch watchlist import``."""
    path = tmp / "watchlist.yaml"
    document = {
        "entities": [{"name": name, "symbols": [symbol]} for name, symbol in projects(entity_count)]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sigwatch", "watchlist", "import", str(path)],
            env=environ,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise BenchFailure(
            f"sigwatch watchlist import did not finish within {IMPORT_TIMEOUT_S:g}s"
        ) from None
    added = re.search(r"(\d+) entities added", done.stdout)
    if done.returncode != 0 or added is None or int(added[1]) != entity_count:
        raise BenchFailure(
            f"sigwatch watchlist import exited with status {done.returncode}, "
            f"{entity_count} entities expected: {(done.stdout + done.stderr).strip()[-500:]}"
        )


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sigwatch(environ: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``sigwatch up`` without the demo, in a session of its own so that Ctrl-C reaches only
    this process, which stops it with SIGTERM as a deployment would."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "up", "--port", str(port)],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
            start_new_session=True,
        )


def log_tail(path: Path, lines: int = 8) -> str:
    """The last ``lines`` lines of a log, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(api: httpx.Client, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait (bounded) until sigwatch answers ``/health/ready`` with 200."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise BenchFailure(
                f"sigwatch up exited with status {process.returncode} while starting; its log "
                f"ends:\n{log_tail(log_path)}"
            )
        try:
            if api.get("/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise BenchFailure(
                f"sigwatch was not ready within {START_TIMEOUT_S:g}s; its log ends:\n"
                f"{log_tail(log_path)}"
            )
        time.sleep(0.25)


def subscribe(api: httpx.Client, world: WorldProcess, admin_id: int) -> None:
    """Through the API, as a user would: the webhook channel and a subscription of every alert
    and every system alert."""
    token = auth.issue_token(
        SECRET_KEY, user_id=admin_id, role="admin", token_type="access", ttl_s=600
    )
    headers = {"Authorization": f"Bearer {token}"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = api.post(path, json=body, headers=headers)
        if answer.status_code != 201:
            raise BenchFailure(f"POST {path} answered {answer.status_code}: {answer.text[:300]}")
        result: dict[str, Any] = answer.json()
        return result

    channel = post(
        "/api/v1/channels",
        {"kind": "webhook", "name": "receiver", "config": {"url": world.hook_url}},
    )
    post(
        "/api/v1/subscriptions",
        {
            "name": "everything",
            "channel_ids": [channel["id"]],
            "mode": "instant",
            "system_alerts": True,
        },
    )


def stop_sigwatch(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a deployment stops it; SIGKILL when it has not exited in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- measuring ----------------------------------------------------------------------------------


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used so far (Linux /proc)."""
    # The command name in parentheses may hold spaces; the fields after it start at field 3.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[14 - 3]) + int(fields[15 - 3])) / CLOCK_TICKS_PER_S


def resident_mb(pid: int) -> tuple[float, float]:
    """Process ``pid``'s resident memory and its anonymous part (heap, not mapped files), MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            found[name] = int(value.split()[0]) / 1024  # kB
    return found["VmRSS"], found["RssAnon"]


@dataclass(frozen=True)
class Metrics:
    """What sigwatch's ``/metrics`` says it has done since it started."""

    polls: dict[str, float]
    posts: float
    alerts: dict[str, float]
    deliveries: dict[str, float]
    queue_depth: float

    @property
    def polls_total(self) -> int:
        return int(sum(self.polls.values()))


def read_metrics(api: httpx.Client) -> Metrics:
    """One scrape of ``/metrics``: polls by outcome, posts stored, alerts, deliveries."""
    answer = api.get("/metrics")
    answer.raise_for_status()
    totals: dict[str, dict[str, float]] = {"polls": {}, "alerts": {}, "deliveries": {}}
    posts = queue_depth = 0.0
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "sigwatch_polls_total":
                outcome = sample.labels["outcome"]
                totals["polls"][outcome] = totals["polls"].get(outcome, 0) + sample.value
            elif sample.name == "sigwatch_alerts_total":
                change = sample.labels["change"]
                totals["alerts"][change] = totals["alerts"].get(change, 0) + sample.value
            elif sample.name == "sigwatch_deliveries_total":
                outcome = sample.labels["outcome"]
                totals["deliveries"][outcome] = totals["deliveries"].get(outcome, 0) + sample.value
            elif sample.name == "sigwatch_posts_ingested_total":
                posts += sample.value if sample.labels["change"] == "new" else 0
            elif sample.name == "sigwatch_queue_depth":
                queue_depth = sample.value
    return Metrics(totals["polls"], posts, totals["alerts"], totals["deliveries"], queue_depth)


def slope_per_min(samples: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, MB) samples, in MB per minute."""
    count = len(samples)
    mean_t = sum(t for t, _ in samples) / count
    mean_mb = sum(mb for _, mb in samples) / count
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    covariance = sum((t - mean_t) * (mb - mean_mb) for t, mb in samples)
    return covariance / spread * 60


@dataclass
class Soak:
    """The samples of one run: (seconds since ready, VmRSS MB, RssAnon MB)."""

    samples: list[tuple[float, float, float]] = field(default_factory=list)
    metrics: Metrics | None = None
    cpu_s: float = 0.0

    def after(self, warmup_s: float, column: int) -> list[tuple[float, float]]:
        """(seconds, MB) of the samples taken after the warm-up; column 1 VmRSS, 2 RssAnon."""
        return [(row[0], row[column]) for row in self.samples if row[0] >= warmup_s]


def soak(
    api: httpx.Client,
    process: subprocess.Popen[bytes],
    log_path: Path,
    world: WorldProcess,
    args: argparse.Namespace,
) -> Soak:
    """Sample sigwatch's memory and metrics every ``--sample-s`` for ``--minutes``; fail when
    it exits or no poll is recorded for ``STALL_S``."""
    result = Soak()
    started = time.monotonic()
    cpu = process_cpu_s(process.pid)
    end = started + args.minutes * 60
    last_polls, last_progress_at, scrape_error = -1, started, ""
    next_report = started + PROGRESS_EVERY_S
    while True:
        now = time.monotonic()
        if process.poll() is not None:
            raise BenchFailure(
                f"sigwatch exited with status {process.returncode} after {now - started:.0f}s "
                f"of the soak; its log ends:\n{log_tail(log_path)}"
            )
        rss, anon = resident_mb(process.pid)
        result.samples.append((now - started, rss, anon))
        try:
            result.metrics = read_metrics(api)
            scrape_error = ""
        except httpx.HTTPError as exc:
            # A scrape that fails counts as no progress, which the stall deadline bounds.
            scrape_error = f"; /metrics failed: {exc!r}"
        polls = result.metrics.polls_total if result.metrics is not None else 0
        if polls > last_polls:
            last_polls, last_progress_at = polls, now
        elif now - last_progress_at > STALL_S:
            raise BenchFailure(
                f"no poll was recorded for {STALL_S:g}s ({polls:,} in all, the world answered "
                f"{world.count(OK) + world.count(NOT_MODIFIED):,}{scrape_error}); sigwatch's "
                f"log ends:\n"
                f"{log_tail(log_path)}"
            )
        if now >= next_report:
            print(f"  {progress_line(now - started, rss, result.metrics)}", flush=True)
            next_report += PROGRESS_EVERY_S
        if now >= end:
            break
        time.sleep(max(0.0, min(args.sample_s, end - time.monotonic())))
    result.cpu_s = process_cpu_s(process.pid) - cpu
    return result


def progress_line(elapsed_s: float, rss: float, metrics: Metrics | None) -> str:
    """One readable line of how the soak stands."""
    if metrics is None:
        return f"{elapsed_s / 60:4.1f} min: {rss:6.1f} MB resident, no metrics yet"
    return (
        f"{elapsed_s / 60:4.1f} min: {rss:6.1f} MB resident, {metrics.polls_total:,} polls "
        f"({metrics.polls.get('not_modified', 0):,.0f} 304s, {metrics.polls.get('error', 0):,.0f} "
        f"errors), {metrics.posts:,.0f} posts, {metrics.alerts.get('created', 0):,.0f} alerts, "
        f"{metrics.queue_depth:,.0f} due and waiting"
    )


async def stored(settings: Settings) -> tuple[int, int, int]:
    """Posts and alerts in the database, and sources that recorded an error."""
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            posts = await session.scalar(select(func.count()).select_from(Post))
            alerts = await session.scalar(select(func.count()).select_from(Alert))
            failing = await session.scalar(
                select(func.count()).select_from(Source).where(Source.last_error_at.is_not(None))
            )
    finally:
        await engine.dispose()
    return int(posts or 0), int(alerts or 0), int(failing or 0)


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start the world and sigwatch, soak, stop them; the figures of the last line."""
    settings = load_settings(
        data_dir=tmp / "data",
        secret_key=SECRET_KEY,
        allowed_private_networks=["127.0.0.1/32"],
    )
    world = WorldProcess.start(args.sources, args.entities, args.items_per_s)
    process: subprocess.Popen[bytes] | None = None
    try:
        admin_id = asyncio.run(prepare(settings, world, args))
        environ = sigwatch_environ(settings)
        loading = time.monotonic()
        import_watchlist(environ, args.entities, tmp)
        print(
            f"watchlist of {args.entities:,} entities imported in "
            f"{time.monotonic() - loading:.1f}s",
            flush=True,
        )
        port, log_path = free_port(), tmp / "sigwatch.log"
        starting = time.monotonic()
        process = start_sigwatch(environ, port, log_path)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT_S, trust_env=False
        ) as api:
            wait_ready(api, process, log_path)
            print(f"sigwatch up ready in {time.monotonic() - starting:.1f}s", flush=True)
            subscribe(api, world, admin_id)
            result = soak(api, process, log_path, world, args)
        stop_sigwatch(process)
        if process.returncode != 0:
            raise BenchFailure(
                f"sigwatch exited with status {process.returncode} when stopped; its log "
                f"ends:\n{log_tail(log_path)}"
            )
    finally:
        if process is not None:
            stop_sigwatch(process)
        world.stop()
    posts, alerts, failing = asyncio.run(stored(settings))
    return figures(result, world, args, posts, alerts, failing)


def figures(
    result: Soak,
    world: WorldProcess,
    args: argparse.Namespace,
    posts: int,
    alerts: int,
    failing: int,
) -> dict[str, Any]:
    """Print the readable lines and check the run did what a soak needs; the last line's
    figures."""
    measured = result.after(args.warmup_s, 1)
    if len(measured) < 3:
        raise BenchFailure(
            f"only {len(measured)} samples after the {args.warmup_s:g}s warm-up: give --minutes "
            "well beyond --warmup-s"
        )
    if not alerts:
        raise BenchFailure("no alert was made: the soak did not exercise detection")
    metrics = result.metrics
    assert metrics is not None
    rss = [row[1] for row in result.samples]
    slope = slope_per_min(measured)
    anon_slope = slope_per_min(result.after(args.warmup_s, 2))
    roles = [feed_role(feed) for feed in range(args.sources)]
    elapsed_min = result.samples[-1][0] / 60
    warm = measured[0][1]
    webhooks = world.count(WEBHOOKS)
    print(
        f"sigwatch up, {args.sources:,} rss sources ({roles.count('news'):,} news, "
        f"{roles.count('silent'):,} silent, {roles.count('unavailable')} answering 503, "
        f"{roles.count('unanswered')} never answering), {args.entities:,} entities, polled every "
        f"{MIN_POLL_INTERVAL_S}-{args.poll_interval_s} s, {elapsed_min:.1f} min"
    )
    print(
        f"resident memory: start {rss[0]:.1f} MB, after the {args.warmup_s:g}s warm-up "
        f"{warm:.1f} MB, end {rss[-1]:.1f} MB, max {max(rss):.1f} MB; slope since the warm-up "
        f"{slope:+.2f} MB/min ({len(measured)} samples; anonymous memory {anon_slope:+.2f} "
        f"MB/min, {result.samples[-1][2]:.1f} MB at the end)"
    )
    print(
        f"polls: {metrics.polls_total:,} ({metrics.polls.get('success', 0):,.0f} with content, "
        f"{metrics.polls.get('not_modified', 0):,.0f} 304s, {metrics.polls.get('error', 0):,.0f} "
        f"errors), {metrics.polls_total / (elapsed_min * 60):.0f}/s; {posts:,} posts stored, "
        f"{alerts:,} alerts ({metrics.alerts.get('corroborated', 0):,.0f} corroborations), "
        f"{webhooks:,} webhooks received; {failing} sources recorded errors; sigwatch used "
        f"{result.cpu_s / (elapsed_min * 60):.0%} of a core"
    )
    print(
        f"world: {world.count(PUBLISHED):,} items published ({world.count(EVENTS):,} "
        f"announcements), answered {world.count(OK):,} feeds, {world.count(NOT_MODIFIED):,} "
        f"304s, {world.count(SERVICE_UNAVAILABLE):,} 503s, left "
        f"{world.count(LEFT_UNANSWERED):,} unanswered"
    )
    for what, met in (
        (f"<= {TARGET_RSS_MB_END:g} MB resident at the end", rss[-1] <= TARGET_RSS_MB_END),
        (
            f"no growth (slope <= {TARGET_SLOPE_MB_PER_MIN:g} MB/min)",
            slope <= TARGET_SLOPE_MB_PER_MIN,
        ),
    ):
        print(f"target {what}: {'met' if met else 'MISSED'}")
    return {
        "rss_mb_start": round(rss[0], 1),
        "rss_mb_warm": round(warm, 1),
        "rss_mb_max": round(max(rss), 1),
        "rss_anon_mb_end": round(result.samples[-1][2], 1),
        "rss_anon_mb_slope_per_min": round(anon_slope, 3),
        "polls": metrics.polls_total,
        "polls_ok": int(metrics.polls.get("success", 0)),
        "polls_304": int(metrics.polls.get("not_modified", 0)),
        "polls_error": int(metrics.polls.get("error", 0)),
        "posts": posts,
        "alerts": alerts,
        "webhooks": webhooks,
        "failing_sources": failing,
        "cpu_core_share": round(result.cpu_s / (elapsed_min * 60), 3),
        "minutes": round(elapsed_min, 2),
        "warmup_s": args.warmup_s,
        "sources": args.sources,
        "entities": args.entities,
        "items_per_s": args.items_per_s,
        "poll_interval_s": args.poll_interval_s,
        "min_poll_interval_s": MIN_POLL_INTERVAL_S,
        "database": "sqlite",
        "rss_mb_end": round(rss[-1], 1),
        "rss_mb_slope_per_min": round(slope, 3),
    }


def stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into an exit that runs the clean-up of the child processes."""
    raise SystemExit("bench_soak stopped by SIGTERM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time of the soak")
    parser.add_argument(
        "--warmup-s", type=float, default=60.0, help="seconds left out of the slope"
    )
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--entities", type=int, default=10_000, help="watchlist size")
    parser.add_argument(
        "--items-per-s", type=float, default=5.0, help="items published, all feeds together"
    )
    parser.add_argument(
        "--poll-interval-s", type=int, default=10, help="each source's poll_interval_s"
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    args = parser.parse_args()
    if args.poll_interval_s < MIN_POLL_INTERVAL_S:
        parser.error(f"--poll-interval-s must be at least {MIN_POLL_INTERVAL_S}")
    configure_logging("warning")
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="sigwatch-bench-soak-") as tmp:
            result = run(args, Path(tmp))
    except BenchFailure as exc:
        raise SystemExit(f"bench_soak failed: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit("bench_soak interrupted; sigwatch and the world were stopped") from None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
