"""Migration 0010 (system alerts) goes up, down and up again; one open alarm per condition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from sigwatch.db.engine import create_engine
from sigwatch.db.migrate import MIGRATIONS_DIR
from sigwatch.db.types import JSONType, UTCDateTime

NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _migrate(direction: str, revision: str):
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)

    return run


_ALARM = text(
    "INSERT INTO system_alerts (source_id, condition, state, reason, detail, opened_at, "
    "last_seen_at) VALUES (1, 'failing', :state, 'down', :detail, :now, :now)"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("detail", type_=JSONType))


async def test_system_alerts_migrate_down_and_up_again(settings):
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate("upgrade", "head"))
        async with engine.begin() as connection:
            await connection.run_sync(_migrate("downgrade", "0009_cadence"))
        async with engine.begin() as connection:
            await connection.run_sync(_migrate("upgrade", "head"))
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO sources (id, kind, name, config, enabled, poll_interval_s, "
                    "state, consecutive_failures, next_poll_at, created_at, updated_at) VALUES "
                    "(1, 'rss', 'feed', :empty, true, 300, :empty, 0, :now, :now, :now)"
                ).bindparams(
                    bindparam("now", type_=UTCDateTime()), bindparam("empty", type_=JSONType)
                ),
                {"now": NOW, "empty": {}},
            )
            for state in ("cleared", "cleared", "open"):  # cleared ones may repeat
                await connection.execute(_ALARM, {"state": state, "detail": {}, "now": NOW})
            row = await connection.execute(
                text("SELECT unchanged_polls, freshness FROM sources WHERE id = 1")
            )
            assert tuple(row.one()) == (0, None)
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(_ALARM, {"state": "open", "detail": {}, "now": NOW})
    finally:
        await engine.dispose()
