"""A test source kind that pages back through a timeline served by the real local server.

``timeline`` polls ``/timeline/latest`` and backfills ``/timeline/page?before=ID``: older posts
newest first, a few per page, with the id to continue before (none on the oldest page). The
server side, :class:`Timeline`, records which pages were asked for and can fail one on demand,
so tests see exactly what a backfill fetched. The tests of this file check the kind plumbing the
CLI, API and worker tests rely on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import BaseModel, ConfigDict

from localserver import Handler, LocalServer, Static
from sigwatch.errors import Conflict, ParseError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import BackfillPage, CollectedPost, FetchResult, Platforms
from sigwatch.sources.registry import SOURCE_KINDS, backfill_kinds, ensure_backfillable
from sigwatch.worker.backfill import learnt_state

#: When a timeline starts by default: post ``n`` is published ``n`` hours later.
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class TimelineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


class TimelineSource:
    """An account's timeline: the newest page on a poll, older pages on a backfill."""

    kind: ClassVar[str] = "timeline"
    Options: ClassVar[type[BaseModel]] = TimelineOptions

    def __init__(self, options: TimelineOptions, client: OutboundClient, platforms: Platforms):
        self._url = options.url.rstrip("/")
        self._client = client

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        posts, _ = await self._page(f"{self._url}/latest")
        since = max((int(post.external_id) for post in posts), default=state.get("since", 0))
        return FetchResult(posts=posts, state={**state, "since": since})

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        query = "" if cursor is None else f"?before={cursor['before']}"
        posts, older = await self._page(f"{self._url}/page{query}")
        # Returns the whole state it was given plus what it learnt, as a kind may.
        learnt = {**state, "account_id": "acct-1"}
        return BackfillPage(
            posts=posts, cursor=None if older is None else {"before": older}, state=learnt
        )

    async def _page(self, url: str) -> tuple[list[CollectedPost], int | None]:
        answer = await self._client.get(url)
        try:
            data = json.loads(answer.body)
        except ValueError as exc:
            raise ParseError(f"{url} did not answer JSON: {exc}") from None
        posts = [
            CollectedPost(
                external_id=str(item["id"]),
                text=item["text"],
                url=f"https://timeline.example/{item['id']}",
                author="@someone",
                published_at=datetime.fromisoformat(item["published_at"]),
                metrics={"likes": item["id"], "media_urls": item["media"]},
            )
            for item in data["posts"]
        ]
        return posts, data["older"]


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the kind known to this process's registry for one test."""
    monkeypatch.setitem(SOURCE_KINDS, TimelineSource.kind, TimelineSource)  # type: ignore[arg-type]


class Timeline:
    """``count`` posts served ``page_size`` a page; ``fail_before`` makes that page answer 500.

    Post ``n`` says ``text`` followed by its number and was published ``n`` hours after
    ``epoch``.
    """

    def __init__(
        self,
        server: LocalServer,
        *,
        count: int,
        page_size: int = 5,
        epoch: datetime = EPOCH,
        text: str = "post number",
    ) -> None:
        self.count = count
        self.page_size = page_size
        self.epoch = epoch
        self.text = text
        self.fail_before: int | None = None
        #: The ``before`` of every page served (None: the newest page), failures included.
        self.asked: list[int | None] = []
        self.served: list[int | None] = []
        self.latest_served = 0
        self.url = server.url("/timeline")
        server.routes["/timeline/page"] = self._write_page
        server.routes["/timeline/latest"] = self._write_latest

    def post(self, number: int) -> dict[str, Any]:
        return {
            "id": number,
            "text": f"{self.text} {number}",
            "published_at": (self.epoch + timedelta(hours=number)).isoformat(),
            "media": [f"https://cdn.timeline.example/{number}.jpg"],
        }

    def _write_page(self, handler: Handler) -> None:
        values = parse_qs(urlsplit(handler.path).query).get("before")
        before = int(values[0]) if values else None
        self.asked.append(before)
        if before is not None and before == self.fail_before:
            handler.send_static(Static(b"upstream broke", 500, {"Content-Type": "text/plain"}))
            return
        self.served.append(before)
        top = self.count if before is None else before - 1
        numbers = list(range(top, max(0, top - self.page_size), -1))
        older = numbers[-1] if numbers and numbers[-1] > 1 else None
        self._send(handler, {"posts": [self.post(n) for n in numbers], "older": older})

    def _write_latest(self, handler: Handler) -> None:
        self.latest_served += 1
        numbers = list(range(self.count, max(0, self.count - self.page_size), -1))
        self._send(handler, {"posts": [self.post(n) for n in numbers], "older": None})

    @staticmethod
    def _send(handler: Handler, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        handler.send_static(Static(body, 200, {"Content-Type": "application/json"}))


def test_a_kind_with_backfill_is_listed_as_one_that_can(monkeypatch):
    register(monkeypatch)
    assert "timeline" in backfill_kinds() and "rss" not in backfill_kinds()


def test_an_rss_source_cannot_be_backfilled_and_the_error_names_the_kinds_that_can(monkeypatch):
    register(monkeypatch)
    with pytest.raises(Conflict) as refused:
        ensure_backfillable(4, "rss", enabled=True)
    message = str(refused.value)
    assert message.startswith("source 4 cannot be backfilled: rss sources reach only their")
    able = message.split("kinds that can: ", 1)[1].split(", ")
    assert "timeline" in able and "rss" not in able


def test_a_paused_source_is_refused_with_how_to_resume_it(monkeypatch):
    register(monkeypatch)
    with pytest.raises(Conflict, match="sigwatch source resume 4"):
        ensure_backfillable(4, "timeline", enabled=False)


def test_only_the_keys_a_page_changed_are_merged_into_the_fetch_state():
    given = {"since": 10, "etag": "a"}
    returned = {"since": 10, "etag": "a", "account_id": "acct-1"}
    assert learnt_state(given, returned) == {"account_id": "acct-1"}
    assert learnt_state(given, None) == {}
