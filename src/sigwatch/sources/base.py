"""The contract every source kind implements.

A source kind is a class with a ``kind`` name, a pydantic ``Options`` model validated from the
source's stored config, and ``async fetch(state) -> FetchResult``. ``state`` is what the previous
fetch returned (ETag, Last-Modified, a cursor …), so a source is resumable and polite. Sources know
nothing of the database; they raise :class:`~sigwatch.errors.SourceError` subclasses on failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from sigwatch.net.client import OutboundClient


@dataclass(slots=True)
class CollectedPost:
    """One item as a source saw it, before storage."""

    external_id: str
    text: str
    url: str | None = None
    author: str | None = None
    title: str | None = None
    html: str | None = None
    published_at: datetime | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FetchResult:
    """What one fetch produced: posts, the state for the next fetch, and non-fatal problems."""

    posts: list[CollectedPost]
    state: dict[str, Any]
    not_modified: bool = False
    warnings: list[str] = field(default_factory=list)


class Source(Protocol):
    """A source kind: built from validated options and the outbound client, fetches posts."""

    kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: Any, client: OutboundClient) -> None: ...

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """Fetch what is new since ``state``; raise SourceError when nothing usable came back."""
        ...
