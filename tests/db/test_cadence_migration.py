"""Migration 0009_cadence up and down on a database holding a source and its posts."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection

from sigwatch.db.engine import create_engine
from sigwatch.db.migrate import MIGRATIONS_DIR
from sigwatch.db.types import JSONType, UTCDateTime

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CADENCE_COLUMNS = {
    "post_gap_s",
    "post_gap_samples",
    "last_new_post_at",
    "effective_interval_s",
    "interval_reason",
}


def _alembic(action: str, revision: str):
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)

    return run


def _source_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("sources")}


async def _seed(connection) -> None:
    stamp = {"now": NOW, "empty": {}}
    typed = (
        bindparam("now", type_=UTCDateTime()),
        bindparam("empty", type_=JSONType),
    )
    await connection.execute(
        text(
            "INSERT INTO sources (id, kind, name, config, enabled, poll_interval_s, state, "
            "consecutive_failures, next_poll_at, created_at, updated_at) VALUES (7, 'rss', "
            "'feed', :empty, true, 300, :empty, 0, :now, :now, :now)"
        ).bindparams(*typed),
        stamp,
    )
    await connection.execute(
        text(
            "INSERT INTO posts (source_id, external_id, text, collected_at, content_hash, "
            "metrics, raw) VALUES (7, 'p', 'a post', :now, 'h', :empty, :empty)"
        ).bindparams(*typed),
        stamp,
    )


async def test_cadence_columns_come_and_go_and_the_source_and_its_posts_stay(settings):
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_alembic("upgrade", "0008"))
            await _seed(connection)
        async with engine.begin() as connection:
            await connection.run_sync(_alembic("upgrade", "0009_cadence"))
            assert CADENCE_COLUMNS <= await connection.run_sync(_source_columns)
            row = (
                await connection.execute(
                    text(
                        "SELECT post_gap_s, post_gap_samples, last_new_post_at, "
                        "effective_interval_s, interval_reason FROM sources WHERE id = 7"
                    )
                )
            ).one()
            assert tuple(row) == (None, 0, None, None, None)

        async with engine.begin() as connection:
            await connection.run_sync(_alembic("downgrade", "0008"))
            assert not CADENCE_COLUMNS & await connection.run_sync(_source_columns)
            kept = await connection.scalar(text("SELECT name FROM sources WHERE id = 7"))
            posts = await connection.scalar(text("SELECT count(*) FROM posts"))
        assert (kept, posts) == ("feed", 1), "the downgrade must keep the source and its posts"

        async with engine.begin() as connection:
            await connection.run_sync(_alembic("upgrade", "0009_cadence"))
            assert CADENCE_COLUMNS <= await connection.run_sync(_source_columns)
    finally:
        await engine.dispose()
