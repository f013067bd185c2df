"""A poll slower than the lease keeps its lease: two worker processes never poll it at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import select

from localserver import Handler, Static
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.sources.registry import SOURCE_KINDS
from worker.pagedkind import PagedSource
from worker.test_processes import log_events, stop

LEASE_S = 5
PAGES = 3
PAGE_S = 2.2  # each page well inside the 4 s fetch timeout; the three outlast the 5 s lease


def start_paged_worker(settings: Settings, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """A ``sigwatch worker`` process that also knows the paged test kind."""
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": "x" * 40,
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LEASE_S": str(LEASE_S),
        "SIGWATCH_FETCH_TIMEOUT_S": "4",
        "SIGWATCH_WORKER_CONCURRENCY": "1",
        "SIGWATCH_LOG_FORMAT": "json",
    }
    script = Path(__file__).with_name("pagedkind.py")
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(script), "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )


async def test_poll_slower_than_the_lease_is_not_taken_over_by_a_second_worker(
    postgres_settings, server, tmp_path, monkeypatch
):
    monkeypatch.setitem(SOURCE_KINDS, PagedSource.kind, PagedSource)
    requests: list[str] = []
    lock = threading.Lock()

    def slow_page(handler: Handler) -> None:
        with lock:
            requests.append(handler.path)
        server.stopping.wait(PAGE_S)
        handler.send_static(Static(f"page {handler.path}".encode()))

    urls = []
    for n in range(PAGES):
        server.routes[f"/page{n}"] = slow_page
        urls.append(server.url(f"/page{n}"))
    engine = create_engine(postgres_settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="paged",
            name="archive",
            config={"urls": urls},
            poll_interval_s=3600,
        )
    workers = [start_paged_worker(postgres_settings, tmp_path, f"w{n}") for n in range(2)]
    try:
        async with asyncio.timeout(40):
            while True:
                async with sessions() as session:
                    row = await session.get(Source, source.id, populate_existing=True)
                    assert row is not None
                if row.last_success_at is not None:
                    break
                await asyncio.sleep(0.2)
        started = time.monotonic()
        while time.monotonic() - started < 1.5:  # a second poll, if one was wrongly made
            await asyncio.sleep(0.1)
        async with sessions() as session:
            owner = await session.scalar(select(Source.lease_owner).where(Source.id == source.id))
    finally:
        codes = [stop(worker) for worker in workers]
        await engine.dispose()
    assert codes == [0, 0]
    assert sorted(requests) == [f"/page{n}" for n in range(PAGES)], requests
    polls = [
        event
        for n in range(2)
        for event in log_events(tmp_path, f"w{n}")
        if event.get("event") == "source polled"
    ]
    assert len(polls) == 1 and polls[0]["duration_ms"] > LEASE_S * 1000
    assert owner is None
