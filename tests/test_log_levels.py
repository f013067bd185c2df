"""At the default level a running sigwatch logs what it does, not every SQL statement it runs."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from sigwatch.db.engine import create_engine
from sigwatch.observability.logging import configure_logging


@pytest.mark.parametrize(("level", "logs_sql"), [("info", False), ("debug", True)])
async def test_sql_statements_are_logged_only_in_a_debug_session(settings, capsys, level, logs_sql):
    configure_logging(level, "json")  # its handler writes to the captured stderr
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 42 AS answer"))
    finally:
        await engine.dispose()
        configure_logging("info", "json")
    assert ("SELECT 42" in capsys.readouterr().err) is logs_sql
