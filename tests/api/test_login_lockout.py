"""Password guessing: backoff, then a temporary lock per account and per address; admin unlock."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select

from sigwatch import auth
from sigwatch.api import create_app
from sigwatch.config import Settings
from sigwatch.db.models import AuditLog

from .conftest import PASSWORD

TOKEN = "/api/v1/auth/token"
WRONG = "not the password"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Three failures lock an account for a minute; no backoff before, so tests need not wait."""
    return settings.model_copy(
        update={
            "login_account_backoff_after": 3,
            "login_account_lock_after": 3,
            "login_ip_backoff_after": 50,
            "login_ip_lock_after": 50,
            "login_backoff_base_s": 0.0,
            "login_lock_s": 60,
        }
    )


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the app checks with argon2, in order."""
    checked: list[str] = []
    verify = auth.verify_password

    def counting(password: str, password_hash: str | None) -> tuple[bool, str | None]:
        checked.append(password)
        return verify(password, password_hash)

    monkeypatch.setattr(auth, "verify_password", counting)
    return checked


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, data={"username": username, "password": password})


async def audit_rows(sessions, *actions: str) -> list[AuditLog]:
    async with sessions() as session:
        stmt = select(AuditLog).where(AuditLog.action.in_(actions)).order_by(AuditLog.id)
        return list(await session.scalars(stmt))


async def test_wrong_passwords_lock_the_account_and_the_right_one_is_refused(client, accounts):
    for _ in range(2):
        assert (await sign_in(client, "alice", WRONG)).status_code == 401
    locking = await sign_in(client, "alice", WRONG)
    assert locking.status_code == 429
    assert 55 <= int(locking.headers["Retry-After"]) <= 60
    assert "locked" in locking.json()["detail"]

    refused = await sign_in(client, "alice", PASSWORD)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    detail = refused.json()["detail"]
    assert "locked for" in detail and "3 failed attempts" in detail
    assert "sigwatch user unlock alice" in detail and "/unlock" in detail
    # Other accounts are not affected.
    assert (await sign_in(client, "bob", PASSWORD)).status_code == 200


async def test_no_password_is_hashed_while_the_account_is_locked(client, accounts, verifications):
    for _ in range(3):
        await sign_in(client, "alice", WRONG)
    assert len(verifications) == 3
    for password in (WRONG, PASSWORD, WRONG):
        assert (await sign_in(client, "alice", password)).status_code == 429
    assert len(verifications) == 3


async def test_attempts_during_a_lock_do_not_extend_it(client, accounts):
    for _ in range(3):
        await sign_in(client, "alice", WRONG)
    first = int((await sign_in(client, "alice", WRONG)).headers["Retry-After"])
    await asyncio.sleep(1.1)
    later = int((await sign_in(client, "alice", WRONG)).headers["Retry-After"])
    assert later < first


async def test_backoff_makes_the_next_attempt_wait_before_any_lock(settings, accounts):
    settings = settings.model_copy(
        update={
            "login_account_backoff_after": 1,
            "login_account_lock_after": 10,
            "login_backoff_base_s": 30.0,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await sign_in(client, "alice", WRONG)).status_code == 401
            waiting = await sign_in(client, "alice", PASSWORD)
    assert waiting.status_code == 429
    assert 28 <= int(waiting.headers["Retry-After"]) <= 30
    assert "wait" in waiting.json()["detail"] and "locked" not in waiting.json()["detail"]


async def test_a_lock_ends_by_itself_and_its_count_starts_again(settings, accounts):
    app = create_app(settings.model_copy(update={"login_lock_s": 1}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(3):
                await sign_in(client, "alice", WRONG)
            assert (await sign_in(client, "alice", PASSWORD)).status_code == 429
            await asyncio.sleep(1.1)
            # The expired lock is forgiven: one more wrong password is just wrong, not a lock.
            assert (await sign_in(client, "alice", WRONG)).status_code == 401
            assert (await sign_in(client, "alice", PASSWORD)).status_code == 200


async def test_a_successful_sign_in_resets_the_account_count(client, accounts):
    for _ in range(2):
        await sign_in(client, "alice", WRONG)
    assert (await sign_in(client, "alice", PASSWORD)).status_code == 200
    for _ in range(2):
        assert (await sign_in(client, "alice", WRONG)).status_code == 401
    assert (await sign_in(client, "alice", PASSWORD)).status_code == 200


async def test_unknown_usernames_are_locked_like_real_ones(client, accounts):
    answers = [await sign_in(client, "nobody", WRONG) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [401, 401, 429, 429]
    assert "sigwatch user unlock nobody" in answers[3].json()["detail"]


async def test_the_lock_is_kept_in_the_database_across_app_instances(settings, client, accounts):
    for _ in range(3):
        await sign_in(client, "alice", WRONG)
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as second:
            assert (await sign_in(second, "alice", PASSWORD)).status_code == 429


async def test_an_admin_unlocks_the_account(client, accounts):
    for _ in range(3):
        await sign_in(client, "alice", WRONG)
    assert (await sign_in(client, "alice", PASSWORD)).status_code == 429

    url = f"/api/v1/users/{accounts.alice.id}/unlock"
    forbidden = await client.post(url, headers=accounts.bob.headers)
    assert forbidden.status_code == 403
    unlocked = await client.post(url, headers=accounts.admin.headers)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["unlocked"] is True and unlocked.json()["user"]["username"] == "alice"
    assert (await sign_in(client, "alice", PASSWORD)).status_code == 200
    again = await client.post(url, headers=accounts.admin.headers)
    assert again.json()["unlocked"] is False


async def test_unlocking_an_unknown_user_is_a_404(client, accounts):
    missing = await client.post("/api/v1/users/9999/unlock", headers=accounts.admin.headers)
    assert missing.status_code == 404


async def test_failures_locks_and_unlocks_are_audited_without_passwords(client, accounts, sessions):
    for _ in range(3):
        await sign_in(client, "alice", WRONG)
    await sign_in(client, "ghost", WRONG)
    await client.post(f"/api/v1/users/{accounts.alice.id}/unlock", headers=accounts.admin.headers)

    failed = await audit_rows(sessions, "login_failed")
    assert [(row.object_type, row.object_id) for row in failed] == [
        ("user", str(accounts.alice.id))
    ] * 3 + [("login", "ghost")]
    assert failed[2].after is not None and failed[2].after["account_failures"] == 3
    assert failed[0].after is not None and failed[0].after["ip"] == "127.0.0.1"
    (locked,) = await audit_rows(sessions, "login_locked")
    assert locked.object_id == str(accounts.alice.id) and locked.after is not None
    assert locked.after["scope"] == "account" and locked.after["locked_until"]
    (unlocked,) = await audit_rows(sessions, "login_unlocked")
    assert unlocked.actor == "admin" and unlocked.object_id == str(accounts.alice.id)
    everything = json.dumps([[row.before, row.after] for row in failed + [locked, unlocked]])
    assert WRONG not in everything and PASSWORD not in everything


async def test_one_address_guessing_across_usernames_is_locked(settings, accounts):
    settings = settings.model_copy(
        update={
            "login_account_lock_after": 100,
            "login_ip_backoff_after": 4,
            "login_ip_lock_after": 4,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        guesser = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
        neighbour = httpx.ASGITransport(app=app, client=("203.0.113.8", 4000))
        async with (
            httpx.AsyncClient(transport=guesser, base_url="http://test") as client,
            httpx.AsyncClient(transport=neighbour, base_url="http://test") as other,
        ):
            answers = [
                await sign_in(client, name, WRONG) for name in ("alice", "bob", "admin", "carol")
            ]
            refused = await sign_in(client, "alice", PASSWORD)
            allowed = await sign_in(other, "alice", PASSWORD)
    assert [answer.status_code for answer in answers] == [401, 401, 401, 429]
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "your address (203.0.113.7)" in refused.json()["detail"]
    assert allowed.status_code == 200
