"""A test source kind that fetches several pages one after another, and a CLI that knows it.

A poll of it lasts as long as its pages take together, so it can outlast the lease while no
single request comes near the fetch timeout (as an archiver paging through an account would).
Run this file as ``python pagedkind.py worker`` to start a worker process that has the kind.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import CollectedPost, FetchResult, Platforms


class PagedOptions(BaseModel):
    """The pages to fetch, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str]


class PagedSource:
    """Fetches every page in turn; each page is one post."""

    kind: ClassVar[str] = "paged"
    Options: ClassVar[type[BaseModel]] = PagedOptions

    def __init__(self, options: PagedOptions, client: OutboundClient, platforms: Platforms) -> None:
        self._urls = options.urls
        self._client = client

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """GET each page in order."""
        posts = []
        for url in self._urls:
            response = await self._client.get(url)
            posts.append(CollectedPost(external_id=url, text=response.body.decode()))
        return FetchResult(posts=posts, state={})


def register() -> None:
    """Make the kind known to this process's registry."""
    from sigwatch.sources.registry import SOURCE_KINDS

    SOURCE_KINDS[PagedSource.kind] = PagedSource  # type: ignore[assignment]


if __name__ == "__main__":
    register()
    from sigwatch.cli import app

    app(prog_name="sigwatch")
