"""Schema migrations: upgrade to head, and refuse to run on a database at an unknown revision."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from sigwatch.errors import DatabaseOutOfDate

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@cache
def _script() -> ScriptDirectory:
    """The migrations this code carries, read once per process (they never change under it)."""
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _script().get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _check_known(revision: str | None) -> None:
    if revision is None:
        return
    known = {rev.revision for rev in _script().walk_revisions()}
    if revision not in known:
        raise DatabaseOutOfDate(
            f"the database is at revision {revision}, which this sigwatch does not know: it was "
            "migrated by a newer sigwatch. Upgrade sigwatch, or point SIGWATCH_DATABASE_URL at "
            "another database."
        )


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What an upgrade did: the revision the database was at (None: empty) and is at now."""

    from_revision: str | None
    to_revision: str

    @property
    def migrated(self) -> bool:
        """Whether any migration ran."""
        return self.from_revision != self.to_revision


async def upgrade(engine: AsyncEngine) -> Upgrade:
    """Bring the database to the newest revision; says from which revision it came."""
    before = await current_revision(engine)
    _check_known(before)
    if before == head_revision():
        return Upgrade(from_revision=before, to_revision=before)

    def _upgrade(connection: Connection) -> None:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
    return Upgrade(from_revision=before, to_revision=head_revision())


async def require_current(engine: AsyncEngine) -> None:
    """Raise DatabaseOutOfDate unless the database is at the newest revision."""
    revision = await current_revision(engine)
    _check_known(revision)
    if revision != head_revision():
        raise DatabaseOutOfDate(
            f"the database is at revision {revision or '(empty)'} but this sigwatch needs "
            f"{head_revision()}: run `sigwatch db upgrade`."
        )
