"""The contract every source kind implements.

A source kind is a class with a ``kind`` name, a pydantic ``Options`` model validated from the
source's stored config, and ``async fetch(state) -> FetchResult``. ``state`` is what the previous
fetch returned (ETag, Last-Modified, a cursor …), so a source is resumable and polite. Sources know
nothing of the database; they raise :class:`~sigwatch.errors.SourceError` subclasses on failure.

A kind built from ``(options, client, platforms)`` gets the operator's platform settings
(:class:`Platforms`: API addresses, default tokens). A kind that can reach further back than its
latest posts also implements :class:`Backfills`: one page of older posts per call, with the
cursor of the next page, so an archive run can stop anywhere and go on from its cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from sigwatch.config import Settings
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
    """What one fetch produced: posts, the state for the next fetch, and non-fatal problems.

    ``wait_s`` is set when the platform asked not to be called again for that long (an
    exhausted rate limit): the next poll is no sooner, whatever the source's interval.
    """

    posts: list[CollectedPost]
    state: dict[str, Any]
    not_modified: bool = False
    warnings: list[str] = field(default_factory=list)
    wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class Platforms:
    """Where the platforms' APIs answer, the operator's default credentials and the browser
    that renders pages (settings).

    Tests point these at a server on 127.0.0.1 serving recorded answers.
    """

    x_api_url: str = "https://api.x.com"
    x_bearer_token: str | None = None
    telegram_url: str = "https://t.me"
    reddit_url: str = "https://www.reddit.com"
    discord_api_url: str = "https://discord.com/api/v10"
    #: The Chromium that renders pages for ``web`` sources with ``render: true``.
    browser_path: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Platforms:
        """The platform settings (``SIGWATCH_X_API_URL`` …) as sources read them."""
        token = settings.x_bearer_token
        return cls(
            x_api_url=settings.x_api_url.rstrip("/"),
            x_bearer_token=token.get_secret_value() if token is not None else None,
            telegram_url=settings.telegram_url.rstrip("/"),
            reddit_url=settings.reddit_url.rstrip("/"),
            discord_api_url=settings.discord_api_url.rstrip("/"),
            browser_path=settings.browser_path,
        )


@dataclass(slots=True)
class BackfillPage:
    """One page of older posts, and where the next (older) page starts; None: no older posts.

    ``state``, when given, replaces the source's fetch state (what the page learnt on the way,
    such as an account id resolved once).
    """

    posts: list[CollectedPost]
    cursor: dict[str, Any] | None
    state: dict[str, Any] | None = None


class Source(Protocol):
    """A source kind: built from validated options, the outbound client and the platform
    settings; fetches what is new."""

    kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: Any, client: OutboundClient, platforms: Platforms) -> None: ...

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """Fetch what is new since ``state``; raise SourceError when nothing usable came back."""
        ...


class Backfills(Protocol):
    """A source kind that can page back through older posts (an account's timeline)."""

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The page of posts older than ``cursor`` (None: start from the newest); SourceError
        when nothing usable came back."""
        ...


def can_backfill(source: Source) -> bool:
    """Whether ``source``'s kind pages back through older posts."""
    return callable(getattr(source, "backfill", None))
