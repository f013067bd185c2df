"""Fixtures for API tests: a migrated database with three users, the app, and an HTTP client.

The database is a copy of the session's migrated template (``migrated_database``, in the root
conftest), not migrated per test.

Users are made the way the CLI makes them (``sigwatch.auth`` + ``sigwatch.db.users``). Argon2 is
slow on purpose, so the password is hashed once per session and every user shares that hash;
tests that do not exercise sign-in get their tokens from ``sigwatch.auth`` directly.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch import auth
from sigwatch.api import create_app
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db import users
from sigwatch.db.engine import create_engine, session_factory

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Account:
    """A user made for a test, with ready-made auth headers."""

    id: int
    username: str
    role: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Accounts:
    """An admin and two ordinary users, alice and bob."""

    admin: Account
    alice: Account
    bob: Account


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD hashed once for the whole run."""
    return auth.hash_password(PASSWORD)


def bearer(settings: Settings, user_id: int, role: str) -> dict[str, str]:
    """Headers with a fresh access token for ``user_id``, signed as the app signs them."""
    token = auth.issue_token(
        ensure_secret_key(settings),
        user_id=user_id,
        role=role,
        token_type="access",
        ttl_s=settings.access_token_ttl_s,
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def accounts(migrated_database: Settings, password_hash: str) -> Accounts:
    """A migrated database holding admin, alice and bob (all with PASSWORD)."""
    settings = migrated_database
    engine = create_engine(settings)
    try:
        made: dict[str, Account] = {}
        async with session_factory(engine).begin() as session:
            for username, role in (("admin", "admin"), ("alice", "user"), ("bob", "user")):
                user = await users.create_user(
                    session, username=username, password_hash=password_hash, role=role
                )
                made[username] = Account(user.id, username, role, bearer(settings, user.id, role))
    finally:
        await engine.dispose()
    return Accounts(**made)


@pytest.fixture
async def app(settings: Settings, accounts: Accounts) -> AsyncIterator[FastAPI]:
    """The app, started (lifespan entered) over the prepared database."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that talks to the app in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    """The app's own session factory, to look at what requests stored."""
    factory: async_sessionmaker[AsyncSession] = app.state.runtime.sessions
    return factory


@pytest.fixture
def closed_port() -> int:
    """A local TCP port on which nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
