"""Reading stored rows: one by id as its owner may see it, or a keyset page at a time."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.errors import InvalidInput, NotFound

#: The largest id of an INTEGER key, and of a BIGINT one.
MAX_INT_ID = 2**31 - 1
MAX_BIGINT_ID = 2**63 - 1

T = TypeVar("T")
#: Largest page a list returns.
MAX_PAGE = 200


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    """Pack the sort key of the last item into an opaque, URL-safe cursor."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Unpack a cursor made by encode_cursor, or raise InvalidInput naming the field."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "not a cursor returned by this API") from None
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return values


def decode_id_cursor(cursor: str, max_id: int = MAX_INT_ID) -> int:
    """Unpack a cursor made by ``encode_cursor(id)``, checking the id fits the key's range."""
    (value,) = decode_cursor(cursor, 1)
    if type(value) is not int or not 0 <= value <= max_id:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return value


async def fetch_id_page(session: AsyncSession, statement: Select[Any], limit: int) -> Page[Any]:
    """Run ``statement`` (ordered by id and limited to ``limit + 1``) as one keyset page."""
    rows = list(await session.scalars(statement))
    items = rows[:limit]
    return Page(items, encode_cursor(items[-1].id) if len(rows) > limit else None)


def check_limit(limit: int) -> None:
    """InvalidInput unless ``limit`` is a page size the lists accept."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE}")


async def get_visible(
    session: AsyncSession,
    model: type[T],
    row_id: int,
    what: str,
    *,
    owner_id: int | None = None,
    owner_column: str = "owner_id",
) -> T:
    """The row with this id, if ``owner_id`` owns it (None: anyone may see it); NotFound naming
    ``what`` otherwise, also for ids out of the key's range."""
    row = await session.get(model, row_id) if 0 < row_id <= MAX_INT_ID else None
    if row is None or (owner_id is not None and getattr(row, owner_column) != owner_id):
        raise NotFound(f"no {what} with id {row_id}")
    return row
