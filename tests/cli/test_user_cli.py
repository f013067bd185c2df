"""`sigwatch user passwd` and `sigwatch user unlock`, for an admin locked out of the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sigwatch.api import create_app
from sigwatch.cli import app
from sigwatch.config import load_settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import AuditLog

OLD = "correct horse battery"
NEW = "a brand new passphrase"
WRONG = "not the password"
# Three wrong passwords lock an account; no backoff wait before that, so the tests need not wait.
LOCKOUT_ENV = {
    "SIGWATCH_LOGIN_ACCOUNT_BACKOFF_AFTER": "3",
    "SIGWATCH_LOGIN_ACCOUNT_LOCK_AFTER": "3",
    "SIGWATCH_LOGIN_BACKOFF_BASE_S": "0",
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def sigwatch(data_dir: Path):
    """Run ``sigwatch ARGS`` in process with its own data directory; returns the result."""
    runner = CliRunner()
    env = {"SIGWATCH_DATA_DIR": str(data_dir), "SIGWATCH_LOG_LEVEL": "warning", **LOCKOUT_ENV}

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env=env)

    return run


@pytest.fixture
def sigwatch_async(sigwatch):
    """``sigwatch`` for async tests: the CLI runs its own event loop, so it runs in a thread."""

    async def run(*args: str, input: str | None = None):
        return await asyncio.to_thread(sigwatch, *args, input=input)

    return run


@pytest.fixture
async def api(data_dir: Path, sigwatch_async, monkeypatch) -> AsyncIterator[httpx.AsyncClient]:
    """The API over the same data directory, with the admin ``root`` made by the CLI."""
    created = await sigwatch_async(
        "user", "create", "root", "--admin", "--password-stdin", input=OLD + "\n"
    )
    assert created.exit_code == 0, created.output
    for name, value in LOCKOUT_ENV.items():
        monkeypatch.setenv(name, value)
    application = create_app(load_settings(data_dir=data_dir))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def sign_in(api: httpx.AsyncClient, password: str) -> httpx.Response:
    return await api.post("/api/v1/auth/token", data={"username": "root", "password": password})


async def audit_actions(data_dir: Path) -> list[tuple[str, str]]:
    engine = create_engine(load_settings(data_dir=data_dir))
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(select(AuditLog).order_by(AuditLog.id))
            return [(row.actor, row.action) for row in rows]
    finally:
        await engine.dispose()


async def test_user_passwd_from_stdin_sets_the_password_and_retires_old_tokens(
    api, sigwatch_async, data_dir
):
    before = await sign_in(api, OLD)
    assert before.status_code == 200
    old_token = {"Authorization": f"Bearer {before.json()['access_token']}"}

    changed = await sigwatch_async("user", "passwd", "root", "--stdin", input=NEW + "\n")
    assert changed.exit_code == 0, changed.output
    assert "changed" in changed.output

    assert (await api.get("/api/v1/auth/me", headers=old_token)).status_code == 401
    assert (await sign_in(api, OLD)).status_code == 401
    assert (await sign_in(api, NEW)).status_code == 200
    assert ("cli", "password_change") in await audit_actions(data_dir)


async def test_user_passwd_prompts_twice_and_lifts_a_lockout(api, sigwatch_async):
    for _ in range(3):
        await sign_in(api, WRONG)
    assert (await sign_in(api, OLD)).status_code == 429

    changed = await sigwatch_async("user", "passwd", "root", input=f"{NEW}\n{NEW}\n")
    assert changed.exit_code == 0, changed.output
    assert (await sign_in(api, NEW)).status_code == 200


def test_user_passwd_refuses_a_short_password_and_an_unknown_user(sigwatch):
    assert sigwatch("user", "create", "root", "--password-stdin", input=OLD + "\n").exit_code == 0
    short = sigwatch("user", "passwd", "root", "--stdin", input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    missing = sigwatch("user", "passwd", "nobody", "--stdin", input=NEW + "\n")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output


async def test_user_unlock_lifts_the_lock_and_is_audited(api, sigwatch_async, data_dir):
    for _ in range(3):
        await sign_in(api, WRONG)
    assert (await sign_in(api, OLD)).status_code == 429

    unlocked = await sigwatch_async("user", "unlock", "root")
    assert unlocked.exit_code == 0, unlocked.output
    assert "unlocked" in unlocked.output
    assert (await sign_in(api, OLD)).status_code == 200
    assert ("cli", "login_unlocked") in await audit_actions(data_dir)

    nothing = await sigwatch_async("user", "unlock", "root")
    assert nothing.exit_code == 0 and "was not locked" in nothing.output
    missing = await sigwatch_async("user", "unlock", "nobody")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output
