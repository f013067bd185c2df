"""Shared fixtures: per-test settings on SQLite, and on PostgreSQL / Redis when configured.

PostgreSQL and Redis tests read SIGWATCH_TEST_DATABASE_URL / SIGWATCH_TEST_REDIS_URL. Without them
they skip with a reason; under CI (CI=true) a missing service fails the run instead of skipping.
That decision is made in ``pytest_runtest_setup``, before any fixture of the test is built, so a
skipped test never leaves a half-started app or event loop behind.

Databases: ``settings`` names an empty database of the test's own (migration tests need that).
A test that wants one at the newest revision asks for ``migrated_database`` and gets a copy of a
template migrated once per session: the SQLite template file is copied, and on PostgreSQL the
test's database is created with ``CREATE DATABASE … TEMPLATE``. An Alembic upgrade per test cost
about a third of the suite's time. The templates are built from the code of this run, never
kept between runs, so a migration added since the last run is always in them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import structlog
from sqlalchemy.engine import make_url

from localserver import LocalServer
from sigwatch.config import Settings, load_settings
from sigwatch.db.engine import create_engine
from sigwatch.db.migrate import upgrade

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


#: Fixtures that reach a service, by the variable that configures it and the service's name.
_SERVICE_FIXTURES = {
    "postgres_url": ("SIGWATCH_TEST_DATABASE_URL", "PostgreSQL"),
    "postgres_settings": ("SIGWATCH_TEST_DATABASE_URL", "PostgreSQL"),
    "redis_url": ("SIGWATCH_TEST_REDIS_URL", "Redis"),
}


def _services_needed(item: pytest.Item) -> list[tuple[str, str]]:
    """The services a test reaches: through its fixtures, its ``settings`` case or its markers."""
    names = set(getattr(item, "fixturenames", ()))
    needed = {_SERVICE_FIXTURES[name] for name in names & _SERVICE_FIXTURES.keys()}
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("settings") == "postgres":
        needed.add(_SERVICE_FIXTURES["postgres_url"])
    if item.get_closest_marker("postgres"):
        needed.add(_SERVICE_FIXTURES["postgres_url"])
    if item.get_closest_marker("redis"):
        needed.add(_SERVICE_FIXTURES["redis_url"])
    return sorted(needed)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the services it reaches, so ``-m "not postgres"`` selects by them."""
    for item in items:
        for _variable, what in _services_needed(item):
            item.add_marker("postgres" if what == "PostgreSQL" else "redis")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (under CI: fail) a test whose service is not configured, before any fixture runs."""
    for variable, what in _services_needed(item):
        _require(variable, what)


Result = TypeVar("Result")


def _run_in_own_loop(work: Coroutine[Any, Any, Result]) -> Result:
    """Run ``work`` on a new event loop in a helper thread.

    Session templates are built from synchronous fixtures, which may be set up while a test's
    loop is running (an async fixture asks for them): a thread keeps the two loops apart.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="template") as pool:
        return pool.submit(asyncio.run, work).result()


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.effective_database_url).database
    assert database, f"no SQLite file in {settings.effective_database_url}"
    return Path(database)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once for this run; tests get copies of it."""
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("sqlite-template"), secret_key=TEST_SECRET
    )
    _run_in_own_loop(_migrate(settings))
    path = _sqlite_path(settings)
    # Fold the write-ahead log into the file, so copying the one file copies everything.
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return path


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh SQLite database in this test's own directory."""
    return load_settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET)


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _postgres_base_url() -> str:
    base = _require("SIGWATCH_TEST_DATABASE_URL", "PostgreSQL")
    if base.startswith(("postgres://", "postgresql://")):
        base = "postgresql+asyncpg://" + base.split("://", 1)[1]
    return base


def _database_url(base: str, name: str) -> str:
    prefix, _, _ = base.rpartition("/")
    return f"{prefix}/{name}"


async def _admin_execute(base: str, statement: str) -> None:
    try:
        admin = await asyncpg.connect(_admin_dsn(base))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at SIGWATCH_TEST_DATABASE_URL is unreachable: {exc}")
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head once for this run, dropped at its end.

    Its name is new each run, so two runs at once (two checkouts, one server) never share it.
    """
    base = _postgres_base_url()
    name = f"sigwatch_template_{uuid.uuid4().hex[:12]}"

    async def build() -> None:
        await _admin_execute(base, f'CREATE DATABASE "{name}"')
        settings = load_settings(
            data_dir=Path("/nonexistent"),
            database_url=_database_url(base, name),
            secret_key=TEST_SECRET,
        )
        await _migrate(settings)  # disposes its engine: a template must have no sessions

    _run_in_own_loop(build())
    yield name
    _run_in_own_loop(_admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


#: Stash key: the PostgreSQL database of this test was created from the migrated template.
_CLONED_FROM_TEMPLATE = pytest.StashKey[bool]()


@pytest.fixture
async def postgres_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A freshly created PostgreSQL database for this test, dropped afterwards.

    Empty, unless the test also asks for ``migrated_database``: then it is created as a copy of
    the session's migrated template, which is much quicker than migrating it.
    """
    base = _postgres_base_url()
    name = f"sigwatch_test_{uuid.uuid4().hex[:12]}"
    if "migrated_database" in request.fixturenames:
        template = request.getfixturevalue("postgres_template")
        await _admin_execute(base, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        request.node.stash[_CLONED_FROM_TEMPLATE] = True
    else:
        await _admin_execute(base, f'CREATE DATABASE "{name}"')
    yield _database_url(base, name)
    await _admin_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
async def migrated_database(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's database (that of ``settings``) at the newest revision; returns ``settings``.

    SQLite: the session's template file is copied into place. PostgreSQL: ``postgres_url`` saw
    this fixture among the test's and created the database from the template; should it not
    have (the fixture was asked for late, by name), the database is migrated here instead.
    """
    if settings.is_sqlite:
        target = _sqlite_path(settings)
        if target.exists():
            pytest.fail(f"{target} exists already: migrated_database copies into a new database")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
    elif not request.node.stash.get(_CLONED_FROM_TEMPLATE, False):
        await _migrate(settings)
    return settings


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
