"""A source's health in the API names its host's breaker: as the worker left it, or unknown.

The worker's poll path opens the breaker against a real failing server on 127.0.0.1; the API
(in the same process with the same settings, as ``sigwatch up`` runs, or through Redis, as
split processes do) shows it; an API process that cannot see the breakers says unknown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from localserver import LocalServer
from sigwatch import auth
from sigwatch.api import create_app
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db import users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.sources import create_source
from sigwatch.net.hosts import host_key
from sigwatch.worker.runner import collect_once


@pytest.fixture
def breaker_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allowed_private_networks": ["127.0.0.1/32"],
            "fetch_timeout_s": 2.0,
            "breaker_failures": 2,
            "breaker_open_s": 600.0,
            "host_rate_limit": None,
        }
    )


@pytest.fixture
async def sessions(
    breaker_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(breaker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def open_breaker(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], server: LocalServer
) -> int:
    """Two failing feeds on ``server``, polled: its breaker opens. The first feed's id."""
    server.serve("/a.xml", b"down", status=503)
    server.serve("/b.xml", b"down", status=503)
    ids = []
    async with sessions.begin() as session:
        for path in ("/a.xml", "/b.xml"):
            source = await create_source(
                session, owner_id=None, kind="rss", name=path, config={"url": server.url(path)}
            )
            ids.append(source.id)
    await collect_once(settings, sessions, ids)
    return ids[0]


async def read_source(settings: Settings, sessions, source_id: int) -> dict:
    """GET /api/v1/sources/{id} as an admin, through an app built from ``settings``."""
    async with sessions.begin() as session:
        admin = await users.create_user(
            session, username=f"admin{source_id}", password_hash="x", role="admin"
        )
    token = auth.issue_token(
        ensure_secret_key(settings), user_id=admin.id, role="admin", token_type="access", ttl_s=600
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        shown = await client.get(
            f"/api/v1/sources/{source_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert shown.status_code == 200, shown.text
        listed = await client.get("/api/v1/sources", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200, listed.text
    body = shown.json()
    assert [s["breaker"] for s in listed.json()["items"] if s["id"] == source_id] == [
        body["breaker"]
    ]
    return body


async def test_in_one_process_the_api_shows_the_breaker_the_worker_opened(
    breaker_settings: Settings, sessions, server: LocalServer
) -> None:
    source_id = await open_breaker(breaker_settings, sessions, server)

    body = await read_source(breaker_settings, sessions, source_id)

    breaker = body["breaker"]
    assert breaker["host"] == host_key(server.url())
    assert breaker["state"] == "open" and breaker["failures"] == 2
    assert breaker["summary"].startswith("open until ") and breaker["summary"].endswith(" UTC")
    assert breaker["retry_at"] is not None


async def test_an_api_process_without_redis_says_unknown_rather_than_closed(
    breaker_settings: Settings, sessions, server: LocalServer
) -> None:
    source_id = await open_breaker(breaker_settings, sessions, server)
    # Other settings stand for another process: it has polled nothing itself.
    elsewhere = breaker_settings.model_copy()

    body = await read_source(elsewhere, sessions, source_id)

    assert body["breaker"]["state"] == "unknown"
    assert body["breaker"]["summary"] == "unknown"
    assert body["breaker"]["host"] == host_key(server.url())


async def test_with_redis_the_api_process_reads_the_workers_breaker(
    breaker_settings: Settings, sessions, server: LocalServer, redis_url: str
) -> None:
    worker = breaker_settings.model_copy(update={"redis_url": redis_url})
    api = breaker_settings.model_copy(update={"redis_url": redis_url})
    key = f"sigwatch:breaker:source:{host_key(server.url())}"
    try:
        source_id = await open_breaker(worker, sessions, server)

        body = await read_source(api, sessions, source_id)

        assert body["breaker"]["state"] == "open"
    finally:
        redis = Redis.from_url(redis_url)
        await redis.delete(key)
        await redis.aclose()


async def test_a_healthy_host_shows_closed_where_it_is_known(
    breaker_settings: Settings, sessions, server: LocalServer
) -> None:
    url = server.serve("/ok.xml", b"<rss version='2.0'><channel></channel></rss>")
    async with sessions.begin() as session:
        source = await create_source(
            session, owner_id=None, kind="rss", name="ok", config={"url": url}
        )
    await collect_once(breaker_settings, sessions, [source.id])

    body = await read_source(breaker_settings, sessions, source.id)

    assert body["breaker"]["state"] == "closed"
    assert body["breaker"]["summary"] == "closed"
