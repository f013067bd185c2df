"""RssSource against feeds served from a real server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from sigwatch.errors import BlockedAddress, FetchError, ParseError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.registry import build_source, validate_config
from sigwatch.sources.rss import RssSource

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
<channel>
  <title>Crypto wire</title>
  <link>https://wire.example/</link>
  <item>
    <title>Acme &amp; Co announce   TGE</title>
    <link>/posts/tge</link>
    <guid isPermaLink="false">post-1</guid>
    <author>desk@wire.example (News desk)</author>
    <category>launch</category>
    <category>airdrop</category>
    <enclosure url="https://cdn.example/a.mp3" length="123" type="audio/mpeg"/>
    <pubDate>Fri, 12 Dec 2025 17:33:11 -0500</pubDate>
    <description><![CDATA[<p>Token generation event on <b>Friday</b>.</p>
      <script>steal()</script><p>Claim &amp; trade <a href="javascript:alert(1)">here</a></p>
      <img src="https://cdn.example/x.png" onerror="steal()">]]></description>
  </item>
  <item>
    <title>Second</title>
    <link>https://wire.example/posts/2</link>
    <description>Plain second item</description>
  </item>
  <item>
    <title>Third, no id</title>
    <description>nothing else</description>
    <pubDate>not a date at all</pubDate>
  </item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom wire</title>
  <id>urn:feed</id>
  <updated>2025-12-02T20:24:36Z</updated>
  <entry>
    <title type="html">Mainnet &lt;em&gt;live&lt;/em&gt;</title>
    <id>urn:entry:1</id>
    <link rel="alternate" href="https://atom.example/1"/>
    <updated>2025-12-02T20:24:36+02:00</updated>
    <summary>short summary</summary>
    <content type="html">&lt;p&gt;The full &lt;i&gt;story&lt;/i&gt;&lt;/p&gt;</content>
  </entry>
</feed>
"""


def rss_source(client: OutboundClient, url: str) -> RssSource:
    return RssSource(RssSource.Options(url=url), client)


async def test_entries_become_posts_in_feed_order(server, client):
    url = server.serve("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})

    result = await rss_source(client, url).fetch({})

    assert [p.title for p in result.posts] == ["Acme & Co announce TGE", "Second", "Third, no id"]
    assert result.warnings == []
    assert result.not_modified is False


async def test_entry_fields_are_mapped(server, client):
    url = server.serve("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})

    post = (await rss_source(client, url).fetch({})).posts[0]

    assert post.external_id == "post-1"
    assert post.url == server.url("/posts/tge")  # relative link made absolute
    assert post.author == "desk@wire.example (News desk)"
    assert post.published_at == datetime(2025, 12, 12, 22, 33, 11, tzinfo=UTC)
    assert post.text == "Token generation event on Friday. Claim & trade here"
    assert "Acme" not in post.text  # the title is kept apart from the body text


async def test_html_is_sanitised(server, client):
    url = server.serve("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})

    html = (await rss_source(client, url).fetch({})).posts[0].html

    assert html is not None
    assert "<b>Friday</b>" in html
    assert "script" not in html and "steal" not in html and "javascript:" not in html


async def test_raw_is_a_small_json_safe_record(server, client):
    url = server.serve("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})

    raw = (await rss_source(client, url).fetch({})).posts[0].raw

    assert json.loads(json.dumps(raw)) == raw
    assert raw["id"] == "post-1"
    assert raw["tags"] == ["launch", "airdrop"]
    assert raw["enclosures"] == [
        {"href": "https://cdn.example/a.mp3", "type": "audio/mpeg", "length": "123"}
    ]


async def test_external_id_falls_back_to_link_then_content_hash(server, client):
    url = server.serve("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})

    posts = (await rss_source(client, url).fetch({})).posts
    again = (await rss_source(client, url).fetch({})).posts

    assert posts[1].external_id == "https://wire.example/posts/2"
    assert posts[2].external_id.startswith("sha256:")
    assert posts[2].external_id == again[2].external_id  # stable across fetches
    assert posts[2].url is None


async def test_unparseable_date_gives_no_published_at(server, client):
    url = server.serve("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})

    posts = (await rss_source(client, url).fetch({})).posts

    assert posts[1].published_at is None
    assert posts[2].published_at is None


async def test_atom_full_content_wins_over_summary_and_html_title_becomes_text(server, client):
    url = server.serve("/atom.xml", ATOM, headers={"Content-Type": "application/atom+xml"})

    post = (await rss_source(client, url).fetch({})).posts[0]

    assert post.title == "Mainnet live"
    assert post.text == "The full story"
    assert post.html == "<p>The full <i>story</i></p>"
    assert post.published_at == datetime(2025, 12, 2, 18, 24, 36, tzinfo=UTC)
    assert post.external_id == "urn:entry:1"


async def test_etag_makes_the_next_fetch_conditional_and_304_means_not_modified(server, client):
    url = server.serve("/feed.xml", RSS, headers={"ETag": '"rev-7"'})
    source = rss_source(client, url)

    first = await source.fetch({})
    second = await source.fetch(first.state)

    assert first.state["etag"] == '"rev-7"'
    assert server.requests[1].headers["if-none-match"] == '"rev-7"'
    assert second.not_modified is True
    assert second.posts == []
    assert second.state == first.state


async def test_last_modified_makes_the_next_fetch_conditional(server, client):
    stamp = "Fri, 12 Dec 2025 22:20:18 GMT"
    url = server.serve("/feed.xml", RSS, headers={"Last-Modified": stamp})
    source = rss_source(client, url)

    first = await source.fetch({"cursor": "kept"})
    second = await source.fetch(first.state)

    assert first.state == {"cursor": "kept", "last_modified": stamp}
    assert server.requests[1].headers["if-modified-since"] == stamp
    assert second.not_modified is True


async def test_changed_feed_replaces_the_stored_validators(server, client):
    url = server.serve("/feed.xml", RSS, headers={"ETag": '"rev-8"'})

    result = await rss_source(client, url).fetch({"etag": '"rev-7"', "last_modified": "old"})

    assert result.not_modified is False
    assert result.state == {"etag": '"rev-8"'}
    assert len(result.posts) == 3


async def test_malformed_feed_keeps_parsed_items_and_warns(server, client):
    broken = (
        b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>t</title>\n'
        b"<item><title>one</title><guid>1</guid></item>\n"
        b"<item><title>two & three</title><guid>2</guid></item>\n"
        b"</channel></rss>"
    )
    url = server.serve("/feed.xml", broken, headers={"Content-Type": "application/xml"})

    result = await rss_source(client, url).fetch({})

    assert [p.title for p in result.posts] == ["one", "two & three"]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("feed is not well-formed XML (line 4: ")
    assert result.warnings[0].endswith("; kept 2 items")


async def test_windows_1252_body_declared_as_utf8_is_decoded_and_flagged(server, client):
    text = (
        "It’s the “first” token launch of the year — the team said they’re “very excited” "
        "about the café opening and the airdrop that’s coming next week."
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>News</title>'
        f"<item><title>Token launch: it’s “live”</title><guid>1</guid>"
        f"<description>{text}</description></item></channel></rss>"
    ).encode("cp1252")
    url = server.serve(
        "/feed.xml", body, headers={"Content-Type": "application/xml; charset=utf-8"}
    )

    result = await rss_source(client, url).fetch({})

    assert result.posts[0].title == "Token launch: it’s “live”"
    assert result.posts[0].text == text
    assert "declared character encoding is wrong" in result.warnings[0]


async def test_charset_from_content_type_decodes_the_feed(server, client):
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Как пережить новогоднюю ночь</title><guid>1</guid></item>"
        "</channel></rss>"
    ).encode("koi8-r")
    url = server.serve("/feed.xml", body, headers={"Content-Type": "text/xml; charset=koi8-r"})

    result = await rss_source(client, url).fetch({})

    assert result.posts[0].title == "Как пережить новогоднюю ночь"
    assert result.warnings == []


async def test_text_xml_without_charset_is_not_flagged(server, client):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>café — ok</title><guid>1</guid></item></channel></rss>"
    ).encode()
    url = server.serve("/feed.xml", body, headers={"Content-Type": "text/xml"})

    result = await rss_source(client, url).fetch({})

    assert result.posts[0].title == "café — ok"
    assert result.warnings == []


async def test_html_page_raises_parse_error_suggesting_discovery(server, client):
    page = b"<!doctype html><html><head><title>Home</title></head><body><p>Hi</p></body></html>"
    url = server.serve("/", page, headers={"Content-Type": "text/html; charset=utf-8"})

    with pytest.raises(ParseError) as caught:
        await rss_source(client, url).fetch({})

    message = str(caught.value)
    assert message.startswith(f"{url} did not return an RSS or Atom feed (text/html")
    assert "sigwatch source add rss" in message


async def test_empty_but_valid_feed_gives_no_posts_and_no_error(server, client):
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>quiet</title></channel></rss>'
    url = server.serve("/feed.xml", body, headers={"Content-Type": "application/rss+xml"})

    result = await rss_source(client, url).fetch({})

    assert result.posts == [] and result.warnings == [] and result.not_modified is False


async def test_missing_feed_raises_fetch_error(server, client):
    with pytest.raises(FetchError, match="HTTP 404 Not Found"):
        await rss_source(client, server.url("/gone.xml")).fetch({})


async def test_feed_on_a_private_address_is_blocked_by_default(server, guarded_client):
    url = server.serve("/feed.xml", RSS)

    with pytest.raises(BlockedAddress):
        await rss_source(guarded_client, url).fetch({})

    assert server.connections == 0


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "example.com/feed", "file:///x.xml"])
def test_options_refuse_non_http_urls(url):
    with pytest.raises(ValidationError, match=r"must be an http:// or https:// URL"):
        RssSource.Options(url=url)


def test_options_refuse_unknown_keys():
    with pytest.raises(ValidationError):
        RssSource.Options.model_validate({"url": "https://example.com/feed", "uri": "x"})


async def test_registry_builds_the_rss_kind(server, client):
    url = server.serve("/feed.xml", RSS)

    config = validate_config("rss", {"url": f"  {url} "})
    source = build_source("rss", config, client)

    assert config == {"url": url, "authorization": None}
    assert len((await source.fetch({})).posts) == 3
