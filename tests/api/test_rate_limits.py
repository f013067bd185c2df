"""API rate limits: budgets per client address, per user and per API key; Redis shares them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from sigwatch.api import create_app
from sigwatch.auth import generate_api_key
from sigwatch.config import Settings, load_settings
from sigwatch.db.api_keys import create_api_key
from sigwatch.errors import ConfigError

ME = "/api/v1/auth/me"


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """Tiny budgets, so a test spends them in a few requests (the database kind does not matter)."""
    return sqlite_settings.model_copy(
        update={
            "rate_limit_per_ip": "5/minute",
            "rate_limit_per_user": "3/minute",
            "rate_limit_per_api_key": "2/minute",
        }
    )


@asynccontextmanager
async def serving(settings: Settings, host: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app instance, seen as coming from ``host``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(host, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_answers_carry_the_tightest_budget_in_ratelimit_headers(client, accounts):
    answer = await client.get(ME, headers=accounts.alice.headers)
    assert answer.status_code == 200
    # The user's budget (3/minute) is tighter than the address's (5/minute).
    assert answer.headers["RateLimit-Limit"] == "3"
    assert answer.headers["RateLimit-Remaining"] == "2"
    assert 1 <= int(answer.headers["RateLimit-Reset"]) <= 60


async def test_a_user_over_budget_gets_429_with_retry_after_and_a_reason(client, accounts):
    for _ in range(3):
        assert (await client.get(ME, headers=accounts.alice.headers)).status_code == 200
    refused = await client.get(ME, headers=accounts.alice.headers)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    detail = refused.json()["detail"]
    assert "rate limit exceeded" in detail and "3 requests per minute per user" in detail
    assert "SIGWATCH_RATE_LIMIT_PER_USER" in detail


async def test_each_user_has_a_budget_of_their_own(settings, accounts):
    async with serving(settings.model_copy(update={"rate_limit_per_ip": "100/minute"})) as client:
        for _ in range(3):
            await client.get(ME, headers=accounts.alice.headers)
        assert (await client.get(ME, headers=accounts.alice.headers)).status_code == 429
        assert (await client.get(ME, headers=accounts.bob.headers)).status_code == 200


async def test_each_api_key_has_a_budget_of_its_own(settings, accounts, sessions):
    async with sessions.begin() as session:
        first, second = generate_api_key(), generate_api_key()
        for name, new in (("one", first), ("two", second)):
            await create_api_key(
                session,
                user_id=accounts.alice.id,
                name=name,
                prefix=new.prefix,
                key_hash=new.key_hash,
            )
    async with serving(settings.model_copy(update={"rate_limit_per_ip": "100/minute"})) as client:
        for _ in range(2):
            assert (await client.get(ME, headers={"X-API-Key": first.key})).status_code == 200
        refused = await client.get(ME, headers={"X-API-Key": first.key})
        assert refused.status_code == 429 and "per API key" in refused.json()["detail"]
        assert (await client.get(ME, headers={"X-API-Key": second.key})).status_code == 200
        # Alice's access tokens spend from her user budget, not from her keys'.
        assert (await client.get(ME, headers=accounts.alice.headers)).status_code == 200


async def test_each_client_address_has_a_budget_of_its_own(settings, accounts):
    async with serving(settings, "192.0.2.1") as first, serving(settings, "192.0.2.2") as second:
        # Unauthenticated calls count against the address, and carry the headers too.
        answers = [await first.get(ME) for _ in range(6)]
        assert [answer.status_code for answer in answers] == [401] * 5 + [429]
        assert answers[0].headers["RateLimit-Limit"] == "5"
        assert "per client address" in answers[5].json()["detail"]
        assert (await second.get(ME)).status_code == 401


async def test_a_wrong_token_still_spends_from_the_address(settings, accounts):
    async with serving(settings, "192.0.2.9") as client:
        forged = {"Authorization": "Bearer not.a.token"}
        answers = [await client.get(ME, headers=forged) for _ in range(6)]
    assert [answer.status_code for answer in answers] == [401] * 5 + [429]


async def test_health_and_metrics_are_not_limited(client, accounts):
    for _ in range(8):
        live = await client.get("/health/live")
        assert live.status_code == 200 and "RateLimit-Limit" not in live.headers
    assert (await client.get("/metrics")).status_code != 429


async def test_rate_limits_can_be_turned_off(settings, accounts):
    async with serving(settings.model_copy(update={"rate_limit_enabled": False})) as client:
        answers = [await client.get(ME, headers=accounts.alice.headers) for _ in range(5)]
    assert all(answer.status_code == 200 for answer in answers)
    assert "RateLimit-Limit" not in answers[0].headers


def test_a_malformed_limit_is_refused_at_startup_with_the_setting_named(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGWATCH_RATE_LIMIT_PER_USER", "lots")
    with pytest.raises(ConfigError) as refused:
        load_settings(data_dir=tmp_path)
    message = str(refused.value)
    assert "RATE_LIMIT_PER_USER" in message.upper() and "600/minute" in message


def test_several_limits_in_one_setting_are_accepted(tmp_path):
    settings = load_settings(data_dir=tmp_path, rate_limit_per_ip="10/second;600/minute")
    assert settings.rate_limit_per_ip == "10/second;600/minute"


async def test_an_unreachable_redis_falls_back_to_counting_in_process(
    settings, accounts, closed_port
):
    unreachable = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port}/0"})
    async with serving(unreachable) as client:
        answers = [await client.get(ME, headers=accounts.alice.headers) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Remaining"] == "2"


@pytest.mark.redis
async def test_two_app_instances_share_a_budget_through_redis(settings, accounts, redis_url):
    shared = settings.model_copy(update={"redis_url": redis_url})
    # A fresh address per run, so counts left in Redis by an earlier run do not interfere.
    address = f"rl-test-{uuid.uuid4().hex}"
    async with serving(shared, address) as first, serving(shared, address) as second:
        assert [(await first.get(ME)).status_code for _ in range(3)] == [401] * 3
        answers = [await second.get(ME) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert answers[0].headers["RateLimit-Remaining"] == "1"
