"""discover_feed against real pages and feeds served on 127.0.0.1."""

from __future__ import annotations

import pytest

from sigwatch.errors import BlockedAddress, ParseError
from sigwatch.sources.discover import discover_feed

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>one</title><guid isPermaLink="false">1</guid></item></channel></rss>"""
EMPTY_FEED = (
    b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'
)
HTML = {"Content-Type": "text/html; charset=utf-8"}


def page(head: str) -> bytes:
    html = f"<!doctype html><html><head><title>Home</title>{head}</head><body>hi</body></html>"
    return html.encode()


async def test_feed_url_is_returned_as_is(server, client):
    url = server.serve("/feed.xml", FEED, headers={"Content-Type": "application/rss+xml"})

    assert await discover_feed(client, url) == url


async def test_feed_behind_a_redirect_gives_the_final_url(server, client):
    server.serve("/new/feed.xml", FEED, headers={"Content-Type": "application/rss+xml"})
    url = server.redirect("/old-feed", "/new/feed.xml", status=301)

    assert await discover_feed(client, url) == server.url("/new/feed.xml")


async def test_empty_feed_counts_as_a_feed(server, client):
    url = server.serve("/atom", EMPTY_FEED, headers={"Content-Type": "application/atom+xml"})

    assert await discover_feed(client, url) == url


async def test_relative_alternate_link_is_resolved_against_the_page(server, client):
    head = '<link rel="alternate" type="application/rss+xml" title="RSS" href="feeds/all.xml">'
    url = server.serve("/blog/", page(head), headers=HTML)

    assert await discover_feed(client, url) == server.url("/blog/feeds/all.xml")
    assert [r.path for r in server.requests] == ["/blog/"]  # the link is trusted, not fetched


async def test_first_rss_or_atom_link_wins_over_json_feed(server, client):
    head = (
        '<link rel="alternate" type="application/feed+json" href="/feed.json">'
        '<link rel="stylesheet" type="text/css" href="/style.css">'
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
        '<link rel="alternate" type="application/rss+xml" href="/rss.xml">'
    )
    url = server.serve("/", page(head), headers=HTML)

    assert await discover_feed(client, url) == server.url("/atom.xml")


async def test_base_element_is_honoured(server, client):
    head = (
        '<base href="https://cdn.example/site/">'
        '<link rel="alternate" type="application/rss+xml" href="rss">'
    )
    url = server.serve("/", page(head), headers=HTML)

    assert await discover_feed(client, url) == "https://cdn.example/site/rss"


async def test_common_paths_are_tried_when_the_page_links_no_feed(server, client):
    url = server.serve("/", page(""), headers=HTML)
    server.serve("/rss", page(""), headers=HTML)  # answers, but is not a feed
    server.serve("/rss.xml", FEED, headers={"Content-Type": "application/xml"})

    assert await discover_feed(client, url) == server.url("/rss.xml")
    assert [r.path for r in server.requests] == ["/", "/feed", "/rss", "/feed.xml", "/rss.xml"]


async def test_json_feed_link_is_the_last_resort(server, client):
    head = '<link rel="alternate" type="application/feed+json" href="/feed.json">'
    url = server.serve("/", page(head), headers=HTML)

    assert await discover_feed(client, url) == server.url("/feed.json")


async def test_no_feed_anywhere_raises_parse_error(server, client):
    url = server.serve("/", page(""), headers=HTML)

    with pytest.raises(ParseError, match=r"no feed found at .*: .*give the feed URL itself"):
        await discover_feed(client, url)


async def test_discovery_goes_through_the_guard(server, guarded_client):
    url = server.serve("/", page(""), headers=HTML)

    with pytest.raises(BlockedAddress):
        await discover_feed(guarded_client, url)
