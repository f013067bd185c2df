"""Migration 0006 on a database holding sources and posts: origins filled, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from sigwatch.db.engine import create_engine
from sigwatch.db.migrate import MIGRATIONS_DIR, upgrade
from sigwatch.db.types import JSONType, UTCDateTime

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _upgrade_to(revision: str):
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


async def _seed(connection) -> None:
    await connection.execute(
        text(
            "INSERT INTO users (id, username, password_hash, role, is_active, created_at, "
            "token_version) VALUES (1, 'alice', 'x', 'user', true, :now, 0), "
            "(2, 'bob', 'x', 'user', true, :now, 0)"
        ).bindparams(bindparam("now", type_=UTCDateTime())),
        {"now": NOW},
    )
    feeds = [
        (1, 1, "https://News.Example:443/feed/#top"),
        (2, 1, "https://news.example/feed"),  # the same feed again: alice's second copy
        (3, 2, "https://news.example/feed"),  # bob's own copy is his, and stays
        (4, 1, "http://other.example:8080/rss?x=1"),
    ]
    for source_id, owner_id, url in feeds:
        await connection.execute(
            text(
                "INSERT INTO sources (id, owner_id, kind, name, config, enabled, "
                "poll_interval_s, state, consecutive_failures, next_poll_at, created_at, "
                "updated_at) VALUES (:id, :owner, 'rss', :name, :config, true, 300, :state, 0, "
                ":now, :now, :now)"
            ).bindparams(
                bindparam("now", type_=UTCDateTime()),
                bindparam("config", type_=JSONType),
                bindparam("state", type_=JSONType),
            ),
            {
                "id": source_id,
                "owner": owner_id,
                "name": f"feed {source_id}",
                "config": {"url": url},
                "state": {},
                "now": NOW,
            },
        )
        await connection.execute(
            text(
                "INSERT INTO posts (source_id, external_id, text, collected_at, content_hash, "
                "metrics, raw) VALUES (:id, 'p', 'a post', :now, 'h', :empty, :empty)"
            ).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("empty", type_=JSONType)),
            {"id": source_id, "now": NOW, "empty": {}},
        )


async def test_migration_fills_origins_keeps_posts_and_removes_later_duplicates(settings):
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to("0005"))
        async with engine.begin() as connection:
            await _seed(connection)

        await upgrade(engine)

        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT id, origin, enabled, deleted_at FROM sources ORDER BY id")
                )
            ).all()
            posts = await connection.scalar(text("SELECT count(*) FROM posts"))
            if engine.dialect.name == "sqlite":
                table_sql = await connection.scalar(
                    text("SELECT sql FROM sqlite_master WHERE name = 'sources'")
                )
                foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
        assert [(row.id, row.origin) for row in rows] == [
            (1, "https://news.example/feed"),
            (2, "https://news.example/feed"),
            (3, "https://news.example/feed"),
            (4, "http://other.example:8080/rss?x=1"),
        ]
        assert [row.deleted_at is not None for row in rows] == [False, True, False, False]
        assert [bool(row.enabled) for row in rows] == [True, False, True, True]
        assert posts == 4, "no post may be lost by the rebuild of the sources table"
        if engine.dialect.name == "sqlite":
            assert "AUTOINCREMENT" in table_sql
            assert foreign_keys == 1
    finally:
        await engine.dispose()


async def test_a_fresh_database_migrates_to_head_with_the_new_columns(settings):
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT origin, deleted_at FROM sources"))
    finally:
        await engine.dispose()
