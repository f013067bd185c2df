"""Every RSS/Atom file of the shared corpus, served over HTTP and read through RssSource.

The manifest's ``expect`` holds facts read out of each file with feedparser; the posts must agree.
Where feedparser's answer depends on chardet being installed, ``with_chardet_installed`` wins
when it is.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from sigwatch.errors import ParseError
from sigwatch.sources.rss import RssSource
from sigwatch.sources.text import normalize_whitespace

CHARDET_INSTALLED = importlib.util.find_spec("chardet") is not None


def content_type_for(corpus_dir: Path, entry: dict[str, Any]) -> str:
    """The Content-Type the file was recorded with, or application/xml."""
    if entry.get("headers_file"):
        recorded = json.loads((corpus_dir / entry["headers_file"]).read_text(encoding="utf-8"))
        headers = {k.lower(): v for k, v in (recorded.get("headers") or {}).items()}
        value = headers.get("content-type")
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return str(value)
    hint = entry["expect"].get("test_header_in_file")  # e.g. "Content-type: text/xml"
    if hint and hint.lower().startswith("content-type:"):
        return str(hint.split(":", 1)[1].strip())
    return "application/xml"


def expected(entry: dict[str, Any]) -> dict[str, Any]:
    facts = dict(entry["expect"])
    if CHARDET_INSTALLED and "with_chardet_installed" in facts:
        facts.update(facts["with_chardet_installed"])
    return facts


def parse_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = parsedate_to_datetime(value)
    return parsed.astimezone(UTC)


async def test_corpus_feed_is_read_as_recorded(corpus_dir, corpus_feed, server, client):
    path = corpus_dir / corpus_feed["path"]
    url = server.serve(
        "/" + corpus_feed["path"],
        path.read_bytes(),
        headers={"Content-Type": content_type_for(corpus_dir, corpus_feed)},
    )
    facts = expected(corpus_feed)
    source = RssSource(RssSource.Options(url=url), client)

    try:
        result = await source.fetch({})
    except ParseError as exc:
        assert facts["item_count"] == 0, f"ParseError on a file with items: {exc}"
        return

    posts = result.posts
    assert len(posts) == facts["item_count"]
    assert json.loads(json.dumps([p.raw for p in posts])) == [p.raw for p in posts]
    assert all(p.external_id for p in posts)
    assert all(p.published_at is None or p.published_at.tzinfo is not None for p in posts)
    if corpus_feed.get("malformed") and posts:
        assert result.warnings, "a malformed feed with items must carry a warning"
    if not posts:
        return
    first = posts[0]
    if facts.get("first_title") is not None:
        assert normalize_whitespace(first.title or "") == normalize_whitespace(facts["first_title"])
    else:
        assert not first.title
    if facts.get("first_link") is not None:
        assert first.url == facts["first_link"]
    if facts.get("first_id") is not None:
        assert first.external_id == facts["first_id"]
    if facts.get("first_published") is not None:
        assert first.published_at == parse_date(facts["first_published"])
    if facts.get("first_enclosures") is not None:
        hrefs = [e["href"] for e in first.raw.get("enclosures", [])]
        assert hrefs == facts["first_enclosures"]
