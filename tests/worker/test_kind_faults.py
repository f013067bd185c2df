"""Every source kind against every fault a platform throws, in one worker run beside a healthy
feed on another host: each faulty source ends failing (or paused) with a readable reason and a
later next poll, stores nothing, and the healthy source's posts are stored all the same.

The platforms (X, Telegram, Reddit, Discord) are pointed at the local server through their
settings, as an operator would point them at a proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from localserver import LocalServer
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Post, Source
from sigwatch.db.types import utcnow
from sigwatch.manage.sources import create_source
from sigwatch.worker.runner import collect_once

DISCORD_CHANNEL = "123456789012345678"

#: Each kind's example config and the paths its first fetch requests.
KINDS: dict[str, tuple[Callable[[LocalServer], dict[str, Any]], list[str]]] = {
    "rss": (lambda s: {"url": s.url("/rss.xml")}, ["/rss.xml"]),
    "x_user": (
        lambda s: {"username": "watched", "bearer_token": "x-t0ken-for-faults"},
        ["/2/users/by/username/watched"],
    ),
    "x_search": (
        lambda s: {"query": "token launch", "bearer_token": "x-t0ken-for-faults"},
        ["/2/tweets/search/recent"],
    ),
    "telegram": (lambda s: {"channel": "watched_channel"}, ["/s/watched_channel"]),
    "reddit": (lambda s: {"subreddit": "watched"}, ["/r/watched/new.json"]),
    "discord": (
        lambda s: {"channel_id": DISCORD_CHANNEL, "bot_token": "d1scord-t0ken-for-faults"},
        [f"/channels/{DISCORD_CHANNEL}", f"/channels/{DISCORD_CHANNEL}/messages"],
    ),
    "web": (
        lambda s: {"url": s.url("/page.html"), "item": "article", "title": "h2"},
        ["/robots.txt", "/page.html"],
    ),
    "json": (
        lambda s: {"url": s.url("/api.json"), "items": "items", "id": "id", "title": "title"},
        ["/api.json"],
    ),
}


def fault(name: str, server: LocalServer, path: str) -> None:
    """Make ``path`` answer with the fault called ``name``."""
    if name == "server-error":
        server.serve(path, b"upstream down", status=503)
    elif name == "rate-limited":
        server.serve(path, b"slow down", status=429, headers={"Retry-After": "120"})
    elif name == "refused":
        server.serve(path, b'{"message": "401: Unauthorized"}', status=401)
    elif name == "malformed":
        server.serve(path, b"<html><body>a login wall</body></html>")
    elif name == "truncated":
        server.serve(path, b'{"data": [{"id": "12', headers={"Content-Type": "application/json"})
    elif name == "oversize":
        server.stream(path, 3_000_000, chunked=True)
    elif name == "hangs":
        server.sleep_then_serve(path, 10.0)
    elif name == "redirect-loop":
        server.redirect(path, path)
    else:
        raise AssertionError(name)


FAULTS = [
    "server-error",
    "rate-limited",
    "refused",
    "malformed",
    "truncated",
    "oversize",
    "hangs",
    "redirect-loop",
]
#: Kinds whose platform's 401 means the credentials must be fixed by a person: paused.
PAUSED_ON_REFUSAL = {"x_user", "x_search", "discord"}


@pytest.fixture
def fault_settings(settings: Settings, server: LocalServer) -> Settings:
    root = server.url("").rstrip("/")
    return settings.model_copy(
        update={
            "allowed_private_networks": ["127.0.0.1/32"],
            "fetch_timeout_s": 1.0,
            "max_response_bytes": 1_000_000,
            "max_redirects": 3,
            "x_api_url": root,
            "telegram_url": root,
            "reddit_url": root,
            "discord_api_url": root,
        }
    )


@pytest.fixture
async def sessions(
    fault_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(fault_settings)
    yield session_factory(engine)
    await engine.dispose()


@pytest.mark.parametrize("name", FAULTS)
async def test_every_kind_fails_well_and_the_healthy_source_goes_on(
    name, fault_settings, sessions, server, start_server
):
    # On a host of its own: the eight failures open the shared host's circuit breaker, which
    # rightly holds back every source on that host.
    elsewhere = start_server()
    elsewhere.serve("/good.xml", rss_feed(["Example Protocol mainnet is live"]))
    ids: dict[str, int] = {}
    secret_key = ensure_secret_key(fault_settings)
    async with sessions.begin() as session:
        for kind, (config, paths) in KINDS.items():
            for path in paths:
                fault(name, server, path)
            source = await create_source(
                session,
                owner_id=None,
                kind=kind,
                name=kind,
                config=config(server),
                secret_key=secret_key,
                poll_interval_s=60,
            )
            ids[kind] = source.id
        healthy = await create_source(
            session,
            owner_id=None,
            kind="rss",
            name="healthy",
            config={"url": elsewhere.url("/good.xml")},
            secret_key=secret_key,
        )
    before = utcnow()

    await collect_once(fault_settings, sessions, [*ids.values(), healthy.id])

    async with sessions() as session:
        counted = await session.execute(
            select(Post.source_id, func.count()).group_by(Post.source_id)
        )
        stored = dict(list(counted))
        assert stored == {healthy.id: 1}
        for kind, source_id in ids.items():
            source = await session.get(Source, source_id)
            assert source is not None
            what = f"{kind} after {name}: {source.last_error!r}"
            assert source.consecutive_failures == 1 and source.last_error, what
            assert "x-t0ken" not in source.last_error and "d1scord" not in source.last_error
            assert source.lease_owner is None, what
            paused = name == "refused" and kind in PAUSED_ON_REFUSAL
            assert source.enabled is not paused, what
            assert source.next_poll_at > before + timedelta(seconds=30), what
            if name == "rate-limited":
                assert source.next_poll_at >= before + timedelta(seconds=110), what
