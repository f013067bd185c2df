"""Polling throughput of one worker process, full feeds and 304s, against a bare fetch-and-parse.

The feed server is a minimal asyncio HTTP/1.1 server in its own process on 127.0.0.1. It serves
``--sources`` distinct RSS feeds of ``--items`` items each, every feed with its own ETag; a GET
whose If-None-Match matches that ETag is answered 304 with no body. Answers are built once at
start, so serving one is a dictionary lookup and a write. Every tenth item names a project of
the watchlist (``--entities`` of them) with an event, so detection finds events, folds them
into stories and raises alerts, as in production; the other items are plain news.

The bare loop runs in this process first: ``httpx.AsyncClient`` and the parser RssSource uses
(``parse_posts``: the fast path or feedparser, then a post per entry), ``worker_concurrency``
requests at a time, nothing stored. It polls every feed once unconditionally (full feeds), then
once with the ETag it got (304s). CPU per poll is this process's CPU time over the phase.

Then sigwatch: one ``sigwatch worker`` process with the deployed settings (log level, lease,
concurrency, timeouts: the defaults or the SIGWATCH_* environment, the same concurrency as the
bare loop), except that the SSRF guard allows 127.0.0.1/32 and the per-host rate limit is off
(every feed is on the one local server). The database is migrated and holds
the watchlist and the sources, none due. A few warm-up sources are made due and polled first,
so the worker has started, compiled the watchlist and connected before anything is timed.
Phase 1 (full): every source's ``next_poll_at`` is set to now; the worker claims them, fetches
each feed, stores its posts, runs detection and records the poll. Phase 2 (304): every source
is made due again; the worker sends the ETag it stored and records the 304. A phase's rate is
its polls over the span from the first claim to the last recorded poll, read from the sources'
own ``last_polled_at`` and ``last_success_at`` (the up to one second the idle worker takes to
notice due work is left out, and printed apart). CPU per poll is the worker process's user and
system time (/proc/<pid>/stat) from the moment the sources were made due until the last poll
was recorded. The feed server's CPU share over each phase is printed too: well below one core
means it was not what limited the rate.

Phase 3 (scheduling precision): with the worker idle, ``--lateness-sources`` sources are given
due times 25 ms apart, the first a little over the idle tick ahead (so the worker has looked
since); each one's lateness is its claim (``last_polled_at``) less its due time, printed as
claim_lateness_p50_ms and claim_lateness_p99_ms.

Every wait has a deadline: a phase not recorded in full within ``--phase-timeout-s`` (or a
poll recorded as failed, or a worker that exits) ends the benchmark with what was missing and
exit status 1.

    .venv/bin/python benchmarks/bench_poll.py [--sources 1000] [--items 50] [--entities 200]
        [--database-url URL] [--phase-timeout-s 300] [--lateness-sources 40]

``--database-url`` must name a database of the benchmark's own (it refuses one with sources);
the default is SQLite in a temp dir. The last line is one JSON object: polls_304_per_s,
full_per_s, ratio_304, ratio_full, cpu_ms_per_poll_304, cpu_ms_per_poll_full,
claim_lateness_p50_ms, claim_lateness_p99_ms, the bare loop's figures (bare_*) and the
parameters of the run.
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
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings, load_settings
from sigwatch.db import entities, users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Alert, Post, Source
from sigwatch.net.client import FetchedResponse
from sigwatch.observability.logging import configure_logging
from sigwatch.sources.registry import source_origin
from sigwatch.sources.rss import parse_posts

SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"
TARGET_304_PER_S = 500
TARGET_FULL_PER_S = 100
TARGET_RATIO = 0.5
#: Sources polled before anything is timed; also how the benchmark knows the worker is up.
WARMUP_SOURCES = 8
#: Every this many items one announces an event of a watchlist project.
EVENT_EVERY = 10
SERVER_START_TIMEOUT_S = 10.0
WORKER_START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 30.0
PROGRESS_EVERY_S = 5.0
#: How often the benchmark reads the sources' progress (their own timestamps time the phase).
PROGRESS_POLL_S = 0.1
#: Scheduling precision: the first source falls due this long after the worker went idle (more
#: than its idle tick, so it has looked since), the others this far apart.
LATENESS_FIRST_DUE_S = 1.5
LATENESS_SPACING_S = 0.025
#: The feed server's answer counters: 200s, 304s and 404s.
OK, NOT_MODIFIED, NOT_FOUND = 0, 1, 2
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


class BenchFailure(Exception):
    """A phase missed its deadline, a poll failed or a process died; the message says which."""


# --- the feed server (its own process) --------------------------------------------------------


def projects(count: int) -> list[tuple[str, str]]:
    """``count`` made-up project names and ticker symbols, the same in every run."""
    rng = random.Random(7)
    syllables = "bra cor dex fin gol hal ixi jun kor lum mav nor oqu pex qir ros sul tav".split()
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(syllables) for _ in range(3)).capitalize())
    return [(f"{name} Network", f"X{i:03d}") for i, name in enumerate(sorted(names))]


def feed_body(feed: int, items: int, watchlist: Sequence[tuple[str, str]]) -> bytes:
    """An RSS 2.0 feed of ``items`` items, distinct for each ``feed`` number."""
    published = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Bench wire {feed}</title><link>https://wire{feed}.example/</link>"
        f"<description>Feed {feed} of the polling benchmark</description>"
    ]
    for item in range(items):
        serial = feed * items + item
        link = f"https://wire{feed}.example/{2026 - item // 40}/story-{serial}"
        if item % EVENT_EVERY == 0 and watchlist:
            # Every project in turn, each with every kind of event: stories told by many feeds.
            announcement = serial // EVENT_EVERY
            name, symbol = watchlist[announcement // len(EVENT_PHRASES) % len(watchlist)]
            phrase = EVENT_PHRASES[announcement % len(EVENT_PHRASES)]
            title = phrase.format(name=name, symbol=symbol)
        else:
            title = f"Markets: {NEWS_TOPICS[serial % len(NEWS_TOPICS)]} (report {serial})"
        body = (
            f"<p>{title}. Analysts quoted in report {serial} expect the trend to continue "
            f"into the next quarter, though several cautioned that figures remain provisional. "
            f'<a href="{link}">Read the full story</a>.</p>'
        )
        parts.append(
            f"<item><title>{title}</title><link>{link}</link>"
            f'<guid isPermaLink="false">wire{feed}-{serial}</guid>'
            f"<pubDate>{format_datetime(published - timedelta(minutes=item))}</pubDate>"
            f"<author>desk{serial % 17}@wire{feed}.example</author>"
            f"<description><![CDATA[{body}]]></description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def build_answers(
    feeds: int, items: int, entity_count: int
) -> dict[bytes, tuple[bytes, bytes, bytes]]:
    """Path -> (ETag, full answer, 304 answer), every answer a complete HTTP/1.1 response."""
    watchlist = projects(entity_count)
    answers = {}
    for feed in range(feeds):
        body = feed_body(feed, items, watchlist)
        etag = f'"feed-{feed}-v1"'.encode()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
            b"ETag: " + etag + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        not_modified = b"HTTP/1.1 304 Not Modified\r\nETag: " + etag + b"\r\n\r\n"
        answers[f"/feed/{feed}.xml".encode()] = (etag, head + body, not_modified)
    return answers


class FeedProtocol(asyncio.Protocol):
    """One keep-alive connection: answer each GET from the prepared answers, in order."""

    NOT_FOUND_ANSWER = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    def __init__(self, answers: dict[bytes, tuple[bytes, bytes, bytes]], counts: Any) -> None:
        self.answers = answers
        self.counts = counts
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.transport.write(self.answer(head))

    def answer(self, head: bytes) -> bytes:
        request_line, *header_lines = head.split(b"\r\n")
        path = request_line.split(b" ")[1] if request_line.count(b" ") == 2 else b""
        found = self.answers.get(path)
        if found is None:
            self.counts[NOT_FOUND] += 1
            return self.NOT_FOUND_ANSWER
        etag, full, not_modified = found
        for line in header_lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"if-none-match" and value.strip() == etag:
                self.counts[NOT_MODIFIED] += 1
                return not_modified
        self.counts[OK] += 1
        return full


def serve_feeds(
    feeds: int,
    items: int,
    entity_count: int,
    port: multiprocessing.sharedctypes.Synchronized[int],
    counts: Any,
    ready: multiprocessing.synchronize.Event,
) -> None:
    """The feed server process: build the answers, bind 127.0.0.1 on a free port, serve."""
    answers = build_answers(feeds, items, entity_count)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: FeedProtocol(answers, counts), "127.0.0.1", 0, backlog=1024
        )
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class FeedServer:
    """The running feed server process, its port and its answer counters."""

    process: multiprocessing.Process
    port: int
    counts: Any

    @classmethod
    def start(cls, feeds: int, items: int, entity_count: int) -> FeedServer:
        """Start the server process and wait (bounded) until it listens."""
        port = multiprocessing.Value("i", 0)
        counts = multiprocessing.Array("q", 3, lock=False)
        ready = multiprocessing.Event()
        process = multiprocessing.Process(
            target=serve_feeds,
            args=(feeds, items, entity_count, port, counts, ready),
            daemon=True,
        )
        process.start()
        if not ready.wait(SERVER_START_TIMEOUT_S):
            process.kill()
            raise BenchFailure(f"the feed server did not start within {SERVER_START_TIMEOUT_S}s")
        return cls(process, port.value, counts)

    def url(self, feed: int) -> str:
        """The address of feed number ``feed``."""
        return f"http://127.0.0.1:{self.port}/feed/{feed}.xml"

    def answered(self) -> tuple[int, int, int]:
        """How many 200s, 304s and 404s the server has sent so far."""
        return self.counts[OK], self.counts[NOT_MODIFIED], self.counts[NOT_FOUND]

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far."""
        assert self.process.pid is not None
        return process_cpu_s(self.process.pid)

    def stop(self) -> None:
        """End the server process, killing it if it does not stop within seconds."""
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# --- measuring -------------------------------------------------------------------------------


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used so far (Linux /proc)."""
    # The command name in parentheses may hold spaces; the fields after it start at field 3.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[14 - 3]) + int(fields[15 - 3])) / CLOCK_TICKS_PER_S


@dataclass(frozen=True)
class Phase:
    """What one phase measured."""

    polls: int
    seconds: float
    cpu_s: float
    server_cpu_s: float
    #: Seconds from making the sources due until the last poll was recorded (worker only).
    wall_s: float = 0.0

    @property
    def per_s(self) -> float:
        return self.polls / self.seconds

    @property
    def cpu_ms_per_poll(self) -> float:
        return self.cpu_s * 1000 / self.polls

    @property
    def server_share(self) -> float:
        """The feed server's CPU over the phase, as a share of one core."""
        return self.server_cpu_s / (self.wall_s or self.seconds)


# --- the bare loop -----------------------------------------------------------------------------


async def bare_phase(
    server: FeedServer,
    feeds: int,
    items: int,
    concurrency: int,
    etags: dict[str, str],
    *,
    conditional: bool,
    timeout_s: float,
) -> Phase:
    """Poll every feed once with httpx and RssSource's parser, ``concurrency`` at a time.

    Unconditional polls fill ``etags`` (and must parse ``items`` posts a feed); conditional
    ones send them.
    """
    urls = iter([server.url(feed) for feed in range(feeds)])
    statuses: Counter[int] = Counter()
    posts = 0
    expected = 304 if conditional else 200

    async def poller(client: httpx.AsyncClient) -> None:
        nonlocal posts
        for url in urls:  # one shared iterator: each URL is polled by exactly one poller
            headers = {"If-None-Match": etags[url]} if conditional else {}
            response = await client.get(url, headers=headers)
            statuses[response.status_code] += 1
            if response.status_code == 200:
                etags[url] = response.headers["etag"]
                fetched = FetchedResponse(
                    url=str(response.url),
                    status=response.status_code,
                    headers=response.headers,
                    body=response.content,
                )
                posts += len(parse_posts(fetched).posts)

    server_cpu = server.cpu_s()
    cpu = time.process_time()
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=20, trust_env=False, follow_redirects=False) as client:
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(poller(client) for _ in range(concurrency)))
        except TimeoutError:
            raise BenchFailure(
                f"the bare loop polled {statuses.total()} of {feeds} feeds within {timeout_s}s"
            ) from None
    seconds = time.perf_counter() - started
    phase = Phase(
        polls=feeds,
        seconds=seconds,
        cpu_s=time.process_time() - cpu,
        server_cpu_s=server.cpu_s() - server_cpu,
    )
    if statuses[expected] != feeds:
        raise BenchFailure(f"the bare loop expected {feeds} answers {expected}, got {statuses}")
    if not conditional and posts != feeds * items:
        raise BenchFailure(f"the bare loop parsed {posts} posts, {feeds * items} expected")
    return phase


# --- sigwatch: the database and the worker process -----------------------------------------


@dataclass(frozen=True)
class SourceGroup:
    """Sources added together: their ids are the range first..last."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def where(self) -> Any:
        return Source.id.between(self.first, self.last)


async def add_sources(
    sessions: async_sessionmaker[AsyncSession],
    server: FeedServer,
    feeds: range,
    owner_id: int,
    label: str,
) -> SourceGroup:
    """One rss source per feed, owned by ``owner_id``, not due for a day."""
    later = datetime.now(UTC) + timedelta(days=1)
    rows = []
    for feed in feeds:
        config = {"url": server.url(feed)}
        rows.append(
            Source(
                owner_id=owner_id,
                kind="rss",
                name=f"{label} {feed}",
                config=config,
                origin=source_origin("rss", config),
                next_poll_at=later,
            )
        )
    async with sessions.begin() as session:
        session.add_all(rows)
        await session.flush()
        ids = sorted(row.id for row in rows)
    if ids[-1] - ids[0] + 1 != len(ids):
        raise BenchFailure("the benchmark's sources did not get consecutive ids")
    return SourceGroup(ids[0], ids[-1])


async def prepare(
    settings: Settings, server: FeedServer, feeds: int, entity_count: int
) -> tuple[async_sessionmaker[AsyncSession], SourceGroup, SourceGroup, Any]:
    """Migrate, check the database is the benchmark's own, add the watchlist and the sources."""
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        existing = await session.scalar(select(func.count()).select_from(Source))
    if existing:
        await engine.dispose()
        raise BenchFailure(
            f"the database already holds {existing} sources: give the benchmark an empty one"
        )
    async with sessions.begin() as session:
        owner = await users.create_user(
            session, username="bench", password_hash="unused", role="admin"
        )
        for name, symbol in projects(entity_count):
            await entities.create_entity(session, name=name, symbols=[symbol])
        owner_id = owner.id
    warmup = await add_sources(
        sessions, server, range(feeds, feeds + WARMUP_SOURCES), owner_id, "warm-up"
    )
    measured = await add_sources(sessions, server, range(feeds), owner_id, "bench")
    return sessions, warmup, measured, engine


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """``sigwatch worker`` as deployed, except that the SSRF guard lets it reach 127.0.0.1 and
    the per-host rate limit is off."""
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": SECRET_KEY,
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        # All the feeds are on one local server: the per-host politeness limit (10/s by
        # default) would measure itself, not the worker.
        "SIGWATCH_HOST_RATE_LIMIT": "",
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )


def log_tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a log, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class Progress:
    """Where a group's polls stand since ``since``."""

    succeeded: int
    failed: int
    leased: int
    first_claim: datetime | None
    last_record: datetime | None


async def progress(
    sessions: async_sessionmaker[AsyncSession], group: SourceGroup, since: datetime
) -> Progress:
    """One read of the group's sources: recorded, failed and leased since ``since``."""
    succeeded = Source.last_success_at >= since
    failed = and_(
        Source.last_error_at >= since,
        or_(Source.last_success_at.is_(None), Source.last_success_at < since),
    )
    async with sessions() as session:
        row = (
            await session.execute(
                select(
                    func.count().filter(succeeded),
                    func.count().filter(failed),
                    func.count().filter(Source.lease_owner.is_not(None)),
                    func.min(Source.last_polled_at).filter(Source.last_polled_at >= since),
                    func.max(Source.last_success_at).filter(succeeded),
                ).where(group.where())
            )
        ).one()
    return Progress(*row)


async def first_error(
    sessions: async_sessionmaker[AsyncSession], group: SourceGroup, since: datetime
) -> str:
    """The error of the group's first source that failed since ``since``."""
    async with sessions() as session:
        error = await session.scalar(
            select(Source.last_error)
            .where(group.where(), Source.last_error_at >= since)
            .order_by(Source.id)
            .limit(1)
        )
    return str(error)


async def worker_phase(
    sessions: async_sessionmaker[AsyncSession],
    group: SourceGroup,
    worker: subprocess.Popen[bytes],
    log_path: Path,
    server: FeedServer,
    label: str,
    timeout_s: float,
) -> Phase:
    """Make every source of ``group`` due now; wait until the worker has recorded each poll."""
    since = datetime.now(UTC)
    server_cpu = server.cpu_s()
    cpu = process_cpu_s(worker.pid)
    started = time.perf_counter()
    async with sessions.begin() as session:
        await session.execute(update(Source).where(group.where()).values(next_poll_at=since))
    deadline = started + timeout_s
    next_report = started + PROGRESS_EVERY_S
    while True:
        now = time.perf_counter()
        seen = await progress(sessions, group, since)
        if seen.succeeded + seen.failed == group.size:
            break
        if worker.poll() is not None:
            raise BenchFailure(
                f"{label}: the worker exited with status {worker.returncode} after "
                f"{seen.succeeded} of {group.size} polls; its log ends:\n{log_tail(log_path)}"
            )
        if now > deadline:
            missing = group.size - seen.succeeded - seen.failed
            raise BenchFailure(
                f"{label}: after {timeout_s:g}s {seen.succeeded} of {group.size} polls were "
                f"recorded, {seen.failed} failed, {missing} missing ({seen.leased} of them "
                f"claimed and in progress, {missing - seen.leased} never claimed); the "
                f"worker's log ends:\n{log_tail(log_path)}"
            )
        if now >= next_report:
            print(f"  {label}: {seen.succeeded}/{group.size} polls recorded", flush=True)
            next_report = now + PROGRESS_EVERY_S
        await asyncio.sleep(PROGRESS_POLL_S)
    wall_s = time.perf_counter() - started
    cpu_s = process_cpu_s(worker.pid) - cpu
    server_cpu_s = server.cpu_s() - server_cpu
    if seen.failed:
        raise BenchFailure(
            f"{label}: {seen.failed} of {group.size} polls failed, the first with: "
            f"{await first_error(sessions, group, since)}"
        )
    assert seen.first_claim is not None and seen.last_record is not None
    return Phase(
        polls=group.size,
        seconds=(seen.last_record - seen.first_claim).total_seconds(),
        cpu_s=cpu_s,
        server_cpu_s=server_cpu_s,
        wall_s=wall_s,
    )


async def stored(sessions: async_sessionmaker[AsyncSession], group: SourceGroup) -> tuple[int, int]:
    """Posts stored for ``group``, and alerts in the database."""
    async with sessions() as session:
        posts = await session.scalar(
            select(func.count())
            .select_from(Post)
            .where(Post.source_id.between(group.first, group.last))
        )
        alerts = await session.scalar(select(func.count()).select_from(Alert))
    return int(posts or 0), int(alerts or 0)


async def lateness_phase(
    sessions: async_sessionmaker[AsyncSession],
    group: SourceGroup,
    worker: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float,
) -> list[float]:
    """Give ``group``'s sources due times spaced apart; each one's claim lateness in seconds."""
    start = datetime.now(UTC) + timedelta(seconds=LATENESS_FIRST_DUE_S)
    due = {
        source_id: start + timedelta(seconds=n * LATENESS_SPACING_S)
        for n, source_id in enumerate(range(group.first, group.last + 1))
    }
    async with sessions.begin() as session:
        for source_id, at in due.items():
            await session.execute(
                update(Source).where(Source.id == source_id).values(next_poll_at=at)
            )
    deadline = time.perf_counter() + LATENESS_FIRST_DUE_S + timeout_s
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(Source.id, Source.last_polled_at, Source.last_success_at).where(
                        group.where()
                    )
                )
            ).all()
        if all(row.last_success_at is not None and row.last_success_at >= start for row in rows):
            return sorted((row.last_polled_at - due[row.id]).total_seconds() for row in rows)
        if worker.poll() is not None or time.perf_counter() > deadline:
            raise BenchFailure(
                f"scheduling: the sources due one by one were not all polled within "
                f"{timeout_s:g}s; the worker's log ends:\n{log_tail(log_path)}"
            )
        await asyncio.sleep(PROGRESS_POLL_S)


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which ``share`` of the sorted ``values`` lie (nearest rank)."""
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a deployment stops a worker; SIGKILL when it has not exited in time."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


async def measure_sigwatch(
    settings: Settings, server: FeedServer, args: argparse.Namespace, tmp: Path
) -> tuple[Phase, Phase, list[float]]:
    """The worker process's phases, full feeds then 304s, each checked at the server, then the
    claim lateness of sources due one by one."""
    feeds = args.sources
    sessions, warmup, measured, engine = await prepare(settings, server, feeds, args.entities)
    log_path = tmp / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        worker = start_worker(settings, log_path)
        await worker_phase(
            sessions, warmup, worker, log_path, server, "warm-up", WORKER_START_TIMEOUT_S
        )
        before = server.answered()
        full = await worker_phase(
            sessions, measured, worker, log_path, server, "full feeds", args.phase_timeout_s
        )
        sent = server.answered()[OK] - before[OK]
        posts, alerts = await stored(sessions, measured)
        if sent != feeds or posts != feeds * args.items:
            raise BenchFailure(
                f"full feeds: the server sent {sent} feeds for {feeds} polls and {posts} posts "
                f"were stored, {feeds * args.items} expected"
            )
        print(
            describe(f"sigwatch, {args.items}-item feeds", full)
            + f"  ({posts:,} posts stored, {alerts:,} alerts; {full.wall_s:.2f}s from due)",
            flush=True,
        )
        before = server.answered()
        not_modified = await worker_phase(
            sessions, measured, worker, log_path, server, "304s", args.phase_timeout_s
        )
        sent = server.answered()[NOT_MODIFIED] - before[NOT_MODIFIED]
        if sent != feeds:
            raise BenchFailure(
                f"304s: the server answered {sent} of {feeds} polls with 304: the worker did "
                "not send the ETags it stored"
            )
        print(
            describe("sigwatch, 304s", not_modified) + f"  ({not_modified.wall_s:.2f}s from due)",
            flush=True,
        )
        late = SourceGroup(measured.first, measured.first + min(args.lateness_sources, feeds) - 1)
        lateness = await lateness_phase(sessions, late, worker, log_path, args.phase_timeout_s)
        print(
            f"{'sigwatch, claim lateness':<24} p50 {percentile(lateness, 0.5) * 1000:.1f} ms  "
            f"p99 {percentile(lateness, 0.99) * 1000:.1f} ms  max {lateness[-1] * 1000:.1f} ms  "
            f"({len(lateness)} sources due {LATENESS_SPACING_S * 1000:g} ms apart, idle worker)",
            flush=True,
        )
        return full, not_modified, lateness
    finally:
        if worker is not None:
            stop_worker(worker)
        await engine.dispose()


# --- the run ---------------------------------------------------------------------------------


def describe(name: str, phase: Phase) -> str:
    """One readable line of a phase's figures."""
    return (
        f"{name:<24} {phase.per_s:>7,.0f} polls/s  {phase.cpu_ms_per_poll:>6.2f} ms CPU/poll  "
        f"feed server {phase.server_share:>4.0%} of a core"
    )


async def run(
    settings: Settings, server: FeedServer, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """The bare loop's phases, then sigwatch's; the figures of the last line."""
    feeds, concurrency = args.sources, settings.worker_concurrency
    etags: dict[str, str] = {}
    bare_full = await bare_phase(
        server,
        feeds,
        args.items,
        concurrency,
        etags,
        conditional=False,
        timeout_s=args.phase_timeout_s,
    )
    print(describe(f"bare loop, {args.items}-item feeds", bare_full), flush=True)
    bare_304 = await bare_phase(
        server,
        feeds,
        args.items,
        concurrency,
        etags,
        conditional=True,
        timeout_s=args.phase_timeout_s,
    )
    print(describe("bare loop, 304s", bare_304), flush=True)

    full, not_modified, lateness = await measure_sigwatch(settings, server, args, tmp)

    ratio_full = full.per_s / bare_full.per_s
    ratio_304 = not_modified.per_s / bare_304.per_s
    for what, rate, target, ratio in (
        ("304s", not_modified.per_s, TARGET_304_PER_S, ratio_304),
        ("full feeds", full.per_s, TARGET_FULL_PER_S, ratio_full),
    ):
        verdict = "met" if rate >= target and ratio >= TARGET_RATIO else "MISSED"
        print(
            f"target {what}: >= {target}/s and >= {TARGET_RATIO} of the bare loop: {verdict} "
            f"({rate:,.0f}/s, {ratio:.2f} of the bare loop)"
        )
    return {
        "polls_304_per_s": round(not_modified.per_s),
        "full_per_s": round(full.per_s),
        "ratio_304": round(ratio_304, 3),
        "ratio_full": round(ratio_full, 3),
        "cpu_ms_per_poll_304": round(not_modified.cpu_ms_per_poll, 3),
        "cpu_ms_per_poll_full": round(full.cpu_ms_per_poll, 3),
        "claim_lateness_p50_ms": round(percentile(lateness, 0.5) * 1000, 1),
        "claim_lateness_p99_ms": round(percentile(lateness, 0.99) * 1000, 1),
        "bare_polls_304_per_s": round(bare_304.per_s),
        "bare_full_per_s": round(bare_full.per_s),
        "bare_cpu_ms_per_poll_304": round(bare_304.cpu_ms_per_poll, 3),
        "bare_cpu_ms_per_poll_full": round(bare_full.cpu_ms_per_poll, 3),
        "server_core_share_max": round(
            max(p.server_share for p in (bare_full, bare_304, full, not_modified)), 3
        ),
        "worker_concurrency": concurrency,
        "sources": feeds,
        "items": args.items,
        "database": settings.effective_database_url.split(":", 1)[0].split("+", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--entities", type=int, default=200, help="watchlist size")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--phase-timeout-s", type=float, default=300.0)
    parser.add_argument(
        "--lateness-sources", type=int, default=40, help="sources due one by one (precision)"
    )
    args = parser.parse_args()
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = load_settings(
            data_dir=tmp / "data",
            database_url=args.database_url,
            secret_key=SECRET_KEY,
            allowed_private_networks=["127.0.0.1/32"],
        )
        try:
            server = FeedServer.start(args.sources + WARMUP_SOURCES, args.items, args.entities)
            try:
                figures = asyncio.run(run(settings, server, args, tmp))
            finally:
                server.stop()
        except BenchFailure as exc:
            raise SystemExit(f"bench_poll failed: {exc}") from None
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
