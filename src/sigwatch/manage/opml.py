"""Importing an OPML feed list: one shared RSS source per feed not already present."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.config import Settings
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.sources import iter_sources
from sigwatch.manage.sources import create_source
from sigwatch.sources.opml import OpmlFeed


@dataclass(frozen=True, slots=True)
class ImportResult:
    """How many feeds became sources, and how many were skipped as already present."""

    added: int
    skipped: int


def name_from_url(url: str) -> str:
    """A display name for a feed with no title: its host and path."""
    parts = urlsplit(url)
    return (parts.hostname or url) + (parts.path if parts.path not in ("", "/") else "")


async def import_feeds(
    session: AsyncSession,
    feeds: Iterable[OpmlFeed],
    *,
    poll_interval_s: int | None,
    secret_key: str,
    actor: str,
    settings: Settings | None = None,
) -> ImportResult:
    """Add each feed whose URL no RSS source has yet (a file's repeats count once), audited.

    Importing the same file twice adds nothing the second time, so an import can be rerun
    after fixing the file.
    """
    present = {source.config.get("url") async for source in iter_sources(session, kind="rss")}
    added = skipped = 0
    for feed in feeds:
        if feed.url in present:
            skipped += 1
            continue
        source = await create_source(
            session,
            kind="rss",
            name=feed.title or name_from_url(feed.url),
            config={"url": feed.url},
            secret_key=secret_key,
            poll_interval_s=poll_interval_s,
            settings=settings,
            owner_id=None,
        )
        after = snapshot(source, exclude=("state", "lease_owner", "lease_expires_at"))
        await record_audit(session, actor, "import", "source", source.id, None, after)
        present.add(feed.url)
        added += 1
    return ImportResult(added=added, skipped=skipped)
