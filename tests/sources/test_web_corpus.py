"""WebSource against the real saved pages of the shared corpus, checked against its facts.

Each ``web_page`` entry of ../shared/corpus/manifest.json is served from 127.0.0.1 as the site
would serve it; what the selectors pull out must match the facts the manifest read out of the
page (``expect``). The tests skip when the corpus is not checked out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sigwatch.sources import web
from sigwatch.sources.web import WebOptions, WebSource

#: Where the corpus_dir fixture looks; read here too, to give each page its own test id.
CORPUS_DIR = (Path(__file__).parents[2] / "../shared/corpus").resolve()
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _web_pages() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "manifest.json"
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text(encoding="utf-8"))
    return [entry for entry in entries if entry.get("kind") == "web_page"]


PAGES = _web_pages() or [None]
IDS = [entry["path"] for entry in PAGES] if PAGES != [None] else ["corpus-missing"]


@pytest.fixture(autouse=True)
def fresh_robots_cache(monkeypatch):
    monkeypatch.setattr(web, "_robots_cache", {})


def same_text(value: str | None) -> str:
    return " ".join((value or "").split())


async def collect(server, client, corpus_dir: Path, entry: dict[str, Any], **selectors: str):
    body = (corpus_dir / entry["path"]).read_bytes()
    url = server.serve("/" + entry["path"], body, headers=HTML)  # no robots.txt: a 404
    options = WebOptions(url=url, **selectors)
    return await WebSource(options, client).fetch({})


@pytest.mark.parametrize("entry", PAGES, ids=IDS)
async def test_the_title_and_language_of_each_page(server, client, corpus_dir, entry):
    result = await collect(
        server, client, corpus_dir, entry, item="html", title="title", text="@lang"
    )

    [post] = result.posts
    assert post.title == same_text(entry["expect"]["html_title"])
    assert post.text == entry["expect"]["html_lang"]
    assert post.external_id.startswith("sha256:") and post.url is None


@pytest.mark.parametrize("entry", PAGES, ids=IDS)
async def test_the_open_graph_title_read_from_a_meta_attribute(server, client, corpus_dir, entry):
    expected = entry["expect"].get("og_title")

    result = await collect(
        server, client, corpus_dir, entry, item="head", title="meta[property='og:title']@content"
    )

    # A page without one gives an item with nothing to read: no post, and a warning.
    assert [post.title for post in result.posts] == ([same_text(expected)] if expected else [])


@pytest.mark.parametrize("entry", PAGES, ids=IDS)
async def test_the_first_heading(server, client, corpus_dir, entry):
    expected = entry["expect"].get("h1")

    result = await collect(server, client, corpus_dir, entry, item="body", title="h1")

    assert [post.title for post in result.posts] == ([same_text(expected)] if expected else [])


@pytest.mark.parametrize("entry", PAGES, ids=IDS)
async def test_every_link_is_an_item_with_an_absolute_url(server, client, corpus_dir, entry):
    result = await collect(
        server, client, corpus_dir, entry, item="a[href]", title="@href", link="@href"
    )

    urls = [post.url for post in result.posts]
    assert 0 < len(result.posts) <= entry["expect"]["a_href_count"]
    assert len({post.external_id for post in result.posts}) == len(result.posts)
    assert all(url is None or urlsplit(url).scheme in ("http", "https") for url in urls)
    assert all(url is None or "#" not in url for url in urls)


async def test_a_real_blogs_recent_articles_list_is_a_listing(server, client, corpus_dir):
    [entry] = [e for e in _web_pages() if e["path"] == "web/firefox-nightly-blog.html"]

    result = await collect(
        server,
        client,
        corpus_dir,
        entry,
        item="ul.recent-posts > li",
        title="h5",
        link="h5 a",
        date="time",
    )

    assert [p.title for p in result.posts] == [
        f"These Weeks in Firefox: Issue {n}" for n in (106, 105, 104, 103, 102)
    ]
    assert result.posts[0].url == (
        "https://blog.nightly.mozilla.org/2021/12/17/these-weeks-in-firefox-issue-106/"
    )
    assert result.posts[0].published_at is not None
    assert result.posts[0].published_at.isoformat() == "2021-12-17T21:43:42+00:00"
    assert result.warnings == []


async def test_a_real_article_as_one_post_with_its_byline_in_the_text(server, client, corpus_dir):
    [entry] = [e for e in _web_pages() if e["path"] == "web/firefox-nightly-blog.html"]

    result = await collect(
        server,
        client,
        corpus_dir,
        entry,
        item="article.post",
        title="h1",
        date="time.published",
        text="address.vcard",
    )

    [post] = result.posts
    assert post.title == entry["expect"]["h1"]
    assert post.text == entry["expect"]["readability_expected"]["byline"]
    assert post.published_at is not None and post.published_at.year == 2020
