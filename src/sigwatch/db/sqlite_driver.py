"""SQLite through aiosqlite, each statement in one trip to its thread.

aiosqlite runs every sqlite3 call on a thread of its own and hands the answer back to the event
loop, and SQLAlchemy's adapter makes three or four such calls per statement (open a cursor,
execute, fetch the rows, close the cursor). Each trip waits for a turn of the loop, so on a busy
worker a statement costs several turns: a delivery's group commit took 8–16 ms where the same
statements alone take 1.5 ms, and storing one post with its alert took about 90 trips. Here a
statement opens its cursor, executes, fetches and closes in one function run on that thread:
one trip. Results are buffered, as SQLAlchemy's adapter buffers them already; streaming
(server-side) cursors are left as they were.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

#: What one statement leaves behind: description, rowcount, lastrowid and every row.
_Outcome = tuple[Any, int, int | None, list[Any]]


def _run_statement(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> _Outcome:
    """Run one statement on aiosqlite's thread and collect all SQLAlchemy will read of it."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose every statement is one trip to the connection's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no aiosqlite cursor is ever opened
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # None before any insert, as DBAPI

    async def _async_soft_close(self) -> None:
        return None  # nothing is open between statements

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(operation, seq_of_parameters, many=True)

    def _run(self, operation: str, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            outcome: _Outcome = await_(
                connection._execute(  # type: ignore[no-untyped-call]  # aiosqlite's own queue
                    _run_statement, connection._conn, operation, parameters, many
                )
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass, typed as its base


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's DBAPI, with :class:`OneTripCursor` for every buffered cursor."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        return _OneTripConnection(self, super().connect(*arg, **kw)._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    """The DBAPI module to give ``create_async_engine(module=...)`` for a SQLite URL."""
    return OneTripDBAPI(aiosqlite, sqlite3)
