"""Changing a password: one's own with the old one, or by an admin; either retires every token."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import jwt
import pytest
from sqlalchemy import select

from sigwatch import auth
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.models import AuditLog, User

from .conftest import PASSWORD

NEW = "a brand new passphrase"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Wrong old passwords count like failed sign-ins: three lock, with no backoff wait."""
    return settings.model_copy(
        update={
            "login_account_backoff_after": 3,
            "login_account_lock_after": 3,
            "login_backoff_base_s": 0.0,
        }
    )


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )


async def token_pair(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    answer = await sign_in(client, username, password)
    assert answer.status_code == 200, answer.text
    pair: dict[str, str] = answer.json()
    return pair


def bearer(pair: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def me(client: httpx.AsyncClient, pair: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers=bearer(pair))


async def refresh(client: httpx.AsyncClient, pair: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})


async def change(client, pair, old: str, new: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/password",
        json={"old_password": old, "new_password": new},
        headers=bearer(pair),
    )


async def test_changing_ones_password_retires_old_tokens_and_returns_working_ones(client, accounts):
    old = await token_pair(client, "alice", PASSWORD)
    other_device = await token_pair(client, "alice", PASSWORD)

    changed = await change(client, old, PASSWORD, NEW)
    assert changed.status_code == 200, changed.text
    fresh = changed.json()

    for stale in (old, other_device):
        denied = await me(client, stale)
        assert denied.status_code == 401
        assert "password was changed" in denied.json()["detail"]
        assert "sign in again" in denied.json()["detail"]
        assert (await refresh(client, stale)).status_code == 401
    # The pair handed back is signed in the same second as the change and still works.
    assert (await me(client, fresh)).json()["username"] == "alice"
    renewed = await refresh(client, fresh)
    assert renewed.status_code == 200
    assert (await me(client, renewed.json())).status_code == 200
    assert (await sign_in(client, "alice", PASSWORD)).status_code == 401
    assert (await me(client, await token_pair(client, "alice", NEW))).status_code == 200


async def test_a_token_from_the_same_second_as_the_change_is_told_apart(
    settings, client, accounts, sessions
):
    pair = await token_pair(client, "alice", PASSWORD)
    changed = await change(client, pair, PASSWORD, NEW)
    issued_at = jwt.decode(changed.json()["access_token"], options={"verify_signature": False})[
        "iat"
    ]
    async with sessions() as session:
        user = await session.get(User, accounts.alice.id)
        assert user is not None and user.token_version == 1
    secret = ensure_secret_key(settings)
    same_second = datetime.fromtimestamp(issued_at, UTC)
    before = auth.issue_token(
        secret,
        user_id=accounts.alice.id,
        role="user",
        token_type="access",
        ttl_s=900,
        token_version=0,
        now=same_second,
    )
    after = auth.issue_token(
        secret,
        user_id=accounts.alice.id,
        role="user",
        token_type="access",
        ttl_s=900,
        token_version=1,
        now=same_second,
    )
    assert (await me(client, {"access_token": before})).status_code == 401
    assert (await me(client, {"access_token": after})).status_code == 200


async def test_a_wrong_old_password_is_refused_and_counts_toward_the_lock(client, accounts):
    pair = await token_pair(client, "alice", PASSWORD)
    wrong = await change(client, pair, "not my password", NEW)
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "old_password"]
    assert "not the current password" in wrong.json()["detail"][0]["msg"]
    await change(client, pair, "not my password", NEW)
    locked = await change(client, pair, "not my password", NEW)
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    # Locked: even the right old password is refused, and the tokens are untouched.
    assert (await change(client, pair, PASSWORD, NEW)).status_code == 429
    assert (await me(client, pair)).status_code == 200


async def test_the_new_password_must_differ_and_be_long_enough(client, accounts):
    pair = await token_pair(client, "alice", PASSWORD)
    same = await change(client, pair, PASSWORD, PASSWORD)
    assert same.status_code == 422 and same.json()["detail"][0]["loc"] == ["body", "new_password"]
    short = await change(client, pair, PASSWORD, "short")
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "new_password"]
    assert (await me(client, pair)).status_code == 200


async def test_password_change_needs_a_signed_in_caller(client, accounts):
    anonymous = await client.post(
        "/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": NEW}
    )
    assert anonymous.status_code == 401


async def test_an_admin_sets_a_password_and_the_users_tokens_stop_working(
    client, accounts, sessions
):
    held = await token_pair(client, "bob", PASSWORD)
    for _ in range(3):
        await sign_in(client, "bob", "guessing")
    assert (await sign_in(client, "bob", PASSWORD)).status_code == 429

    reset = await client.patch(
        f"/api/v1/users/{accounts.bob.id}", json={"password": NEW}, headers=accounts.admin.headers
    )
    assert reset.status_code == 200, reset.text
    assert (await me(client, held)).status_code == 401
    assert (await refresh(client, held)).status_code == 401
    # The admin's new password also lifts the lockout, so bob can use it at once.
    assert (await me(client, await token_pair(client, "bob", NEW))).status_code == 200

    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditLog)
                .where(AuditLog.object_id == str(accounts.bob.id))
                .where(AuditLog.action.in_(("update", "login_unlocked")))
                .order_by(AuditLog.id)
            )
        )
    assert [row.action for row in rows] == ["update", "login_unlocked"]
    update = rows[0]
    assert update.after is not None and update.after["password_changed"] is True
    assert update.after["token_version"] == 1
    assert "password_hash" not in json.dumps([update.before, update.after])
    assert NEW not in json.dumps([update.before, update.after])


async def test_ones_own_change_is_audited_without_the_password(client, accounts, sessions):
    pair = await token_pair(client, "alice", PASSWORD)
    await change(client, pair, PASSWORD, NEW)
    async with sessions() as session:
        (row,) = await session.scalars(select(AuditLog).where(AuditLog.action == "password_change"))
    assert row.actor == "alice" and row.object_id == str(accounts.alice.id)
    assert row.before is not None and row.after is not None
    assert row.before["token_version"] == 0 and row.after["token_version"] == 1
    assert row.after["password_changed_at"]
    shown = json.dumps([row.before, row.after])
    assert "password_hash" not in shown and NEW not in shown and PASSWORD not in shown


async def test_api_keys_survive_a_password_change(client, accounts):
    made = await client.post(
        "/api/v1/api-keys", json={"name": "script"}, headers=accounts.alice.headers
    )
    key = made.json()["key"]
    pair = await token_pair(client, "alice", PASSWORD)
    assert (await change(client, pair, PASSWORD, NEW)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers={"X-API-Key": key})).status_code == 200
