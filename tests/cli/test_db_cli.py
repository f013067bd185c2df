"""``sigwatch db upgrade`` says what it did, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from sigwatch.db.migrate import head_revision


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request) -> dict[str, str]:
    """No override for SQLite (the data directory's file); a fresh database for PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"SIGWATCH_DATABASE_URL": request.getfixturevalue("postgres_url")}


def test_upgrade_of_an_empty_database_says_from_where_to_where(cli, database_env):
    first = cli("db", "upgrade", **database_env)
    assert first.exit_code == 0, first.output
    assert f"database migrated from (empty) to {head_revision()}" in first.output
    again = cli("db", "upgrade", **database_env)
    assert again.exit_code == 0, again.output
    assert f"database is up to date (revision {head_revision()})" in again.output
