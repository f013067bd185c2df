"""An x_user source polled by the worker: a refused token pauses it, a spent rate limit delays it.

The worker's own path (claim, fetch over real HTTP from 127.0.0.1, record the outcome) with
the X API answered by the local server and the operator's default token from the settings.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_x_source import LOOKUP, TIMELINE, fixture, serve

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.worker.runner import collect_once


@pytest.fixture
def x_settings(migrated_database: Settings, server) -> Settings:
    """Settings whose X API is the local server, with an operator's default token."""
    return migrated_database.model_copy(
        update={
            "x_api_url": server.url("").rstrip("/"),
            "x_bearer_token": SecretStr("operator-t0ken-for-the-worker"),
        }
    )


@pytest.fixture
async def sessions(x_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(x_settings)
    yield session_factory(engine)
    await engine.dispose()


async def poll_account(settings: Settings, sessions, client) -> Source:
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="x_user",
            name="@XDevelopers",
            config={"username": "XDevelopers"},
            poll_interval_s=60,
        )
    await collect_once(settings, sessions, [source.id], client=client)
    async with sessions() as session:
        stored = await session.get(Source, source.id)
        assert stored is not None
        return stored


async def test_an_account_whose_token_x_refuses_is_paused_with_the_reason(
    x_settings, sessions, server, client
):
    server.serve(LOOKUP, fixture("error_401.json"), status=401)

    source = await poll_account(x_settings, sessions, client)

    assert source.enabled is False
    assert source.last_error is not None
    assert "HTTP 401" in source.last_error and "SIGWATCH_X_BEARER_TOKEN" in source.last_error
    assert "sigwatch source resume ID" in source.last_error
    assert "operator-t0ken" not in source.last_error


async def test_a_spent_rate_limit_delays_the_next_poll_to_the_reset(
    x_settings, sessions, server, client
):
    serve(server, LOOKUP, "user_lookup.json")
    reset = str(int(time.time()) + 1800)
    serve(
        server,
        TIMELINE,
        "user_timeline_newest.json",
        **{"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset},
    )
    before = utcnow()

    source = await poll_account(x_settings, sessions, client)

    assert source.enabled is True and source.last_error is None
    assert source.state["user_id"] == "2244994945"
    assert source.next_poll_at >= before + timedelta(seconds=1780)
