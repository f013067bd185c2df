"""The telegram kind against the recorded channel previews of the shared corpus.

Each ``telegram_preview`` entry of ../shared/corpus/manifest.json is served from the local
server as the preview page of the channel it shows, fetched through TelegramSource, and what
the source extracts is checked against the entry's ``expect`` facts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sigwatch.sources.base import Platforms
from sigwatch.sources.telegram import TelegramOptions, TelegramSource
from sigwatch.sources.text import normalize_whitespace

CORPUS_DIR = (Path(__file__).parents[2] / "../shared/corpus").resolve()


def _entries() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "manifest.json"
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text(encoding="utf-8"))
    return [entry for entry in entries if entry.get("kind") == "telegram_preview"]


ENTRIES = _entries()
# One placeholder when the corpus is absent, so the corpus_dir fixture reports the skip.
PARAMS = ENTRIES or [None]
IDS = [entry["path"] for entry in ENTRIES] or ["corpus-missing"]


async def _fetch(entry: dict[str, Any], corpus_dir: Path, server, client):
    channel = entry["expect"]["first_post"].rpartition("/")[0]
    body = (corpus_dir / entry["path"]).read_bytes()
    server.serve(f"/s/{channel}", body, headers={"Content-Type": "text/html; charset=utf-8"})
    platforms = Platforms(telegram_url=server.url("").rstrip("/"))
    source = TelegramSource(TelegramOptions(channel=channel), client, platforms)
    return source, await source.fetch({})


def test_the_corpus_has_telegram_previews(corpus_dir):
    assert len(ENTRIES) >= 13


@pytest.mark.parametrize("entry", PARAMS, ids=IDS)
async def test_messages_ids_and_dates_match_the_manifest(entry, corpus_dir, server, client):
    expect = entry["expect"]

    _, result = await _fetch(entry, corpus_dir, server, client)

    posts = result.posts
    assert len(posts) == expect["message_count"]
    assert posts[0].external_id == expect["first_post"]
    assert posts[-1].external_id == expect["last_post"]
    assert posts[0].published_at is not None
    assert posts[0].published_at.isoformat() == expect["first_datetime"]
    assert result.warnings == []


@pytest.mark.parametrize("entry", PARAMS, ids=IDS)
async def test_text_matches_the_manifest(entry, corpus_dir, server, client):
    expect = entry["expect"]

    _, result = await _fetch(entry, corpus_dir, server, client)

    posts = result.posts
    assert sum(1 for post in posts if post.text) == expect["with_text_count"]
    prefix = expect["first_text_prefix"]
    if prefix is None:
        assert posts[0].text == ""
    else:
        assert normalize_whitespace(posts[0].text).startswith(normalize_whitespace(prefix))
    for post in posts:
        assert not re.search(r"</?[a-z]+[^>]*>", post.text)  # no markup left in the text
        assert post.url == f"https://t.me/{post.external_id}"
        assert post.author and post.raw["html"].lstrip().startswith("<div")
        assert isinstance(post.metrics.get("views"), int)


@pytest.mark.parametrize("entry", PARAMS, ids=IDS)
async def test_the_older_page_link_matches_the_manifest(entry, corpus_dir, server, client):
    expect = entry["expect"]
    source, _ = await _fetch(entry, corpus_dir, server, client)

    page = await source.backfill({}, None)

    more = expect.get("more_links") or []
    if not more:
        assert page.cursor is None
        return
    await source.backfill({}, page.cursor)
    assert server.requests[-1].path == more[0]


async def test_the_full_page_gives_the_channel_title(corpus_dir, server, client):
    entry = next(e for e in ENTRIES if not e["expect"]["fragment"])

    _, result = await _fetch(entry, corpus_dir, server, client)

    titles = {post.raw["channel_title"] for post in result.posts}
    assert titles == {entry["expect"]["channel_title"]}
    # The first message has a <br/> between its two sentences: the line break is kept.
    assert "сообщает Baza.\nСудя по сервису" in result.posts[0].text


FRAGMENT_FACTS = {
    "message_media_forwarded_from.html": ("forwarded_from", {"name": "Пул N3"}),
    "message_media_file.html": ("media", "document"),
    "message_media_photo_and_video.html": ("media", "photo"),
    "message_media_round_video.html": ("media", "round_video"),
    "message_voice.html": ("media", "voice"),
    "message_sticker.html": ("media", "sticker"),
    "message_poll.html": ("poll", "Как лучше?"),
    "message_link_preview.html": ("link_preview", "Георгий Зотов"),
}


@pytest.mark.parametrize("name", sorted(FRAGMENT_FACTS))
async def test_each_fragment_feature_is_in_raw(name, corpus_dir, server, client):
    entry = next(e for e in ENTRIES if e["path"].endswith(f"/{name}"))
    key, fact = FRAGMENT_FACTS[name]

    _, result = await _fetch(entry, corpus_dir, server, client)

    raw = result.posts[0].raw
    if key == "media":
        assert fact in {item["type"] for item in raw["media"]}
        assert all(item.get("url", "").startswith("https://") for item in raw["media"])
    elif key == "poll":
        assert raw["poll"]["question"] == fact and len(raw["poll"]["options"]) == 3
    elif key == "link_preview":
        assert fact in raw["link_preview"]["title"]
    else:
        assert fact.items() <= raw[key].items()


async def test_the_edited_fragment_is_marked_edited(corpus_dir, server, client):
    entry = next(e for e in ENTRIES if e["path"].endswith("/message_link_preview_video.html"))

    _, result = await _fetch(entry, corpus_dir, server, client)

    assert result.posts[0].metrics["edited"] is True


async def test_the_signed_fragment_is_authored_by_its_signature(corpus_dir, server, client):
    entry = next(e for e in ENTRIES if e["path"].endswith("/message_with_from_author.html"))

    _, result = await _fetch(entry, corpus_dir, server, client)

    assert result.posts[0].author is not None
    assert result.posts[0].author.endswith("rkadiy Ivanov")


async def test_views_are_numbers_as_the_page_shows_them(corpus_dir, server, client):
    entry = next(e for e in ENTRIES if e["path"].endswith("/message_media_forwarded_from.html"))

    _, result = await _fetch(entry, corpus_dir, server, client)

    assert result.posts[0].metrics["views"] == 214_400
