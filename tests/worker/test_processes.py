"""Worker processes against one database: no double polls, SIGKILL takeover, SIGTERM exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from feedbuilder import rss_feed
from localserver import Handler, Static
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.jobs import get_job, queue_poll
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Post, Source
from sigwatch.db.sources import create_source


def start_worker(
    settings: Settings, tmp_path: Path, name: str, **env: str
) -> subprocess.Popen[bytes]:
    """Start ``sigwatch worker`` as its own process, logging JSON to a file."""
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": "x" * 40,
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LOG_FORMAT": "json",
        **env,
    }
    with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )


def log_events(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    events = []
    for line in (tmp_path / f"{name}.log").read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(signum)
    return process.wait(timeout=30)


async def prepare(settings: Settings, urls: list[str], **kw: Any) -> tuple[Any, list[int]]:
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    ids = []
    async with sessions.begin() as session:
        for url in urls:
            source = await create_source(
                session, owner_id=None, kind="rss", name=url, config={"url": url}, **kw
            )
            ids.append(source.id)
    return engine, ids


def timed_feed(
    server: Any, path: str, body: bytes, delay_s: float, log: list[tuple[str, float, float]]
) -> str:
    """Serve ``body`` after ``delay_s``, recording when each request started and ended."""
    lock = threading.Lock()

    def write(handler: Handler) -> None:
        started = time.monotonic()
        server.stopping.wait(delay_s)
        handler.send_static(Static(body, headers={"Content-Type": "application/rss+xml"}))
        with lock:
            log.append((path, started, time.monotonic()))

    server.routes[path] = write
    return server.url(path)


async def test_two_workers_never_poll_one_source_at_once(postgres_settings, server, tmp_path):
    calls: list[tuple[str, float, float]] = []
    urls = [
        timed_feed(server, f"/feed{n}.xml", rss_feed([f"item {n}"]), 0.3, calls) for n in range(16)
    ]
    engine, ids = await prepare(postgres_settings, urls, poll_interval_s=3600)
    workers = [
        start_worker(postgres_settings, tmp_path, f"w{n}", SIGWATCH_WORKER_CONCURRENCY="3")
        for n in range(2)
    ]
    try:
        sessions = session_factory(engine)
        async with asyncio.timeout(60):
            while True:
                async with sessions() as session:
                    polled = await session.scalar(
                        select(Source.id).where(Source.last_success_at.is_(None)).limit(1)
                    )
                if polled is None:
                    break
                await asyncio.sleep(0.2)
    finally:
        codes = [stop(w) for w in workers]
        await engine.dispose()
    assert codes == [0, 0]
    per_path = Counter(path for path, _, _ in calls)
    assert set(per_path) == {f"/feed{n}.xml" for n in range(16)}
    assert max(per_path.values()) == 1, f"a source was polled twice: {per_path}"
    polled_by = [
        sum(1 for e in log_events(tmp_path, f"w{n}") if e.get("event") == "source polled")
        for n in range(2)
    ]
    assert sum(polled_by) == 16 and min(polled_by) > 0, polled_by


async def test_worker_killed_mid_poll_loses_nothing(postgres_settings, server, tmp_path):
    first_request = threading.Event()
    body = rss_feed(["survived", "also survived"])

    def write(handler: Handler) -> None:
        if not first_request.is_set():
            first_request.set()
            server.stopping.wait(60)  # hangs: this worker is about to die
            return
        handler.send_static(Static(body))

    server.routes["/feed.xml"] = write
    engine, (source_id,) = await prepare(postgres_settings, [server.url("/feed.xml")])
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        job_id = (await queue_poll(session, source_id, requested_by=None)).id

    doomed = start_worker(
        postgres_settings, tmp_path, "doomed", SIGWATCH_LEASE_S="5", SIGWATCH_FETCH_TIMEOUT_S="4"
    )
    try:
        assert await asyncio.to_thread(first_request.wait, 30), "the worker never polled"
        doomed.kill()
        doomed.wait(timeout=10)
        successor = start_worker(
            postgres_settings,
            tmp_path,
            "successor",
            SIGWATCH_LEASE_S="5",
            SIGWATCH_FETCH_TIMEOUT_S="4",
        )
        try:
            async with asyncio.timeout(40):
                while True:
                    async with sessions() as session:
                        job = await get_job(session, job_id)
                    if job.status == "succeeded":
                        break
                    await asyncio.sleep(0.2)
        finally:
            assert stop(successor) == 0
        async with sessions() as session:
            titles = sorted(await session.scalars(select(Post.title)))
            source = await session.get(Source, source_id)
        assert titles == ["also survived", "survived"]
        assert source is not None and source.lease_owner is None
        assert job.counters["new"] == 2
    finally:
        if doomed.poll() is None:
            doomed.kill()
        await engine.dispose()


async def test_sigterm_lets_the_in_flight_poll_finish_and_exits_zero(
    sqlite_settings, server, tmp_path
):
    calls: list[tuple[str, float, float]] = []
    url = timed_feed(server, "/slow.xml", rss_feed(["finished anyway"]), 1.5, calls)
    engine, (source_id,) = await prepare(sqlite_settings, [url])
    worker = start_worker(sqlite_settings, tmp_path, "graceful")
    try:
        async with asyncio.timeout(30):
            while not server.requests:
                await asyncio.sleep(0.05)
        code = stop(worker, signal.SIGTERM)
    finally:
        if worker.poll() is None:
            worker.kill()
    sessions = session_factory(engine)
    async with sessions() as session:
        titles = list(await session.scalars(select(Post.title)))
        source = await session.get(Source, source_id)
    await engine.dispose()
    assert code == 0
    assert titles == ["finished anyway"]
    assert source is not None and source.lease_owner is None


@pytest.mark.parametrize("command", [["worker"], ["api"]])
def test_processes_refuse_a_database_that_is_not_upgraded(command, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sigwatch", *command],
        env={
            **os.environ,
            "SIGWATCH_DATA_DIR": str(tmp_path / "data"),
            "SIGWATCH_SECRET_KEY": "x" * 40,
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "sigwatch db upgrade" in result.stderr
