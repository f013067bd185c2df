"""Shared fixtures: per-test settings on SQLite, and on PostgreSQL / Redis when configured.

PostgreSQL and Redis tests read SIGWATCH_TEST_DATABASE_URL / SIGWATCH_TEST_REDIS_URL. Without them
they skip with a reason; under CI (CI=true) a missing service fails the run instead of skipping.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog

from localserver import LocalServer
from sigwatch.config import Settings, load_settings

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SIGWATCH_* setting leaks from the developer's shell into a test."""
    for name in list(os.environ):
        if name.startswith("SIGWATCH_") and not name.startswith("SIGWATCH_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(Path(__file__).parent)  # so no stray .env is read
    yield


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    """Undo what a CLI command's configure_logging did, so log settings never leak across tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _require(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if value:
        return value
    if os.environ.get("CI") == "true":
        pytest.fail(f"{variable} is not set under CI: {what} tests must run, not skip")
    pytest.skip(f"set {variable} to run the {what} tests")


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh SQLite database in this test's own directory."""
    return load_settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET)


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A freshly created PostgreSQL database for this test, dropped afterwards."""
    base = _require("SIGWATCH_TEST_DATABASE_URL", "PostgreSQL")
    if base.startswith(("postgres://", "postgresql://")):
        base = "postgresql+asyncpg://" + base.split("://", 1)[1]
    name = f"sigwatch_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(_admin_dsn(base))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at SIGWATCH_TEST_DATABASE_URL is unreachable: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    prefix, _, _ = base.rpartition("/")
    yield f"{prefix}/{name}"
    admin = await asyncpg.connect(_admin_dsn(base))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def postgres_settings(tmp_path: Path, postgres_url: str) -> Settings:
    """Settings for a fresh PostgreSQL database."""
    return load_settings(
        data_dir=tmp_path / "data", database_url=postgres_url, secret_key=TEST_SECRET
    )


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """The same test on SQLite and on PostgreSQL."""
    name = "sqlite_settings" if request.param == "sqlite" else "postgres_settings"
    result: Settings = request.getfixturevalue(name)
    return result


@pytest.fixture
def redis_url() -> str:
    """The Redis URL for tests (a dedicated database number is advised)."""
    return _require("SIGWATCH_TEST_REDIS_URL", "Redis")


@pytest.fixture
def start_server() -> Iterator[Callable[..., LocalServer]]:
    """Start real HTTP servers on a loopback address, port 0; all stop after the test."""
    started: list[LocalServer] = []

    def start(host: str = "127.0.0.1") -> LocalServer:
        running = LocalServer(host).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(start_server: Callable[..., LocalServer]) -> LocalServer:
    """A real HTTP server on 127.0.0.1, port 0."""
    return start_server("127.0.0.1")
