"""The fast feed path gives feedparser's answer exactly, or declines and leaves the feed to it.

Differential: every RSS/Atom file of the shared corpus and every feed written for the tests is
read both ways; where the fast path accepts a feed, its posts and the feed's own links must equal
the feedparser path's. Then the shapes it must accept (the usual feeds) and those it must decline.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from feedparser.sanitizer import _HTMLSanitizer

from feedbuilder import rss_feed
from sigwatch.net.client import FetchedResponse
from sigwatch.sources import feed_html
from sigwatch.sources.feed_fast import Declined, FastFeed, read_feed
from sigwatch.sources.rss import entry_to_post, is_feed, parse_feed, parse_posts, with_websub_links

BASE_URL = "https://news.example/feed.xml"
TESTS_DIR = Path(__file__).parents[1]

TYPICAL_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"
  xmlns:media="http://search.yahoo.com/mrss/" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel>
  <title>Chain wire</title>
  <link>https://wire.example/</link>
  <atom:link href="https://wire.example/feed/" rel="self" type="application/rss+xml"/>
  <atom:link href="https://hub.example/" rel="hub"/>
  <description>News &amp; more</description>
  <language>en-US</language>
  <sy:updatePeriod>hourly</sy:updatePeriod>
  <image><url>https://wire.example/logo.png</url><title>Chain wire</title>
    <link>https://wire.example/</link></image>
  <item>
    <title>Acme opens its ACM airdrop &#8212; claims today</title>
    <link>/2026/acme-airdrop?utm_source=rss&amp;utm_medium=feed</link>
    <guid isPermaLink="false">wire-1001</guid>
    <dc:creator><![CDATA[Jane Doe]]></dc:creator>
    <pubDate>Fri, 12 Dec 2025 17:33:11 -0500</pubDate>
    <category><![CDATA[Airdrops]]></category>
    <category domain="https://wire.example/tags">Launches</category>
    <category>Airdrops</category>
    <description><![CDATA[<p>Acme said claims open <strong>today</strong>.</p>]]></description>
    <content:encoded><![CDATA[<p>Acme &amp; partners said claims open <a href="/claims">here</a>,
      with a <em>snapshot</em> taken on Monday.</p><p><img alt="chart" src="/img/chart.png"></p>
      <ul><li>One&nbsp;thing</li><li>Another &rsquo;thing&rsquo;</li></ul>]]></content:encoded>
    <enclosure url="https://cdn.example/a.mp3" length="123" type="Audio/MPEG"/>
    <media:content url="https://cdn.example/a.jpg" medium="image"/>
    <comments>https://wire.example/2026/acme-airdrop#comments</comments>
  </item>
  <item>
    <title>Second story, plain description</title>
    <link>https://wire.example/2026/second</link>
    <guid>https://wire.example/?p=2</guid>
    <author>desk@wire.example (News desk)</author>
    <pubDate>Fri, 12 Dec 2025 16:00:00 GMT</pubDate>
    <description>Just text: 5 &gt; 3, Tom &amp; Jerry.</description>
  </item>
  <item>
    <title>Third: permalink guid only</title>
    <guid>https://wire.example/2026/third</guid>
    <description>&lt;p&gt;Escaped HTML, no CDATA&lt;/p&gt;</description>
  </item>
</channel>
</rss>
"""

TYPICAL_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title>Atom wire</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2025-12-02T20:24:36Z</updated>
  <link rel="alternate" href="https://atom.example/"/>
  <link rel="self" href="https://atom.example/atom.xml"/>
  <link rel="hub" href="https://hub.example/"/>
  <author><name>Site</name></author>
  <entry>
    <title type="html">Mainnet &lt;em&gt;live&lt;/em&gt;</title>
    <id>urn:entry:1</id>
    <link rel="alternate" type="text/html" href="/posts/1"/>
    <link rel="enclosure" type="image/png" length="42" href="https://cdn.example/1.png"/>
    <updated>2025-12-02T20:24:36+02:00</updated>
    <published>2025-12-01T08:00:00Z</published>
    <author><name>Ann Writer</name><email>ann@atom.example</email></author>
    <category term="launch" scheme="https://atom.example/tags" label="Launch"/>
    <summary>short summary</summary>
    <content type="html">&lt;p&gt;The full &lt;i&gt;story&lt;/i&gt;, &lt;a href="https://x.example/"&gt;source&lt;/a&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Plain text title &amp; more</title>
    <id>https://atom.example/posts/2</id>
    <updated>2025-12-02T10:00:00Z</updated>
    <content>Plain text content
with a line break.</content>
  </entry>
</feed>
"""


def response(body: bytes, content_type: str | None = "application/xml") -> FetchedResponse:
    headers = httpx.Headers({"content-type": content_type} if content_type else {})
    return FetchedResponse(url=BASE_URL, status=200, headers=headers, body=body)


def feedparser_answer(fetched: FetchedResponse) -> tuple[list[Any], dict[str, Any]]:
    """Posts and WebSub state the way sigwatch read every feed before the fast path."""
    parsed = parse_feed(fetched)
    posts = [entry_to_post(entry, fetched.url) for entry in parsed.get("entries", [])]
    links = [
        (str(link.get("rel") or ""), str(link.get("href") or ""))
        for link in (parsed.get("feed") or {}).get("links") or []
    ]
    assert is_feed(parsed) or not posts
    return posts, with_websub_links({}, links, fetched)


def assert_same_as_feedparser(fetched: FetchedResponse) -> FastFeed | Declined:
    """Read ``fetched`` both ways; when the fast path accepts it, both answers must be equal."""
    fast = read_feed(fetched.body, fetched.headers.get("content-type"))
    if isinstance(fast, FastFeed):
        posts, websub = feedparser_answer(fetched)
        assert [entry_to_post(entry, fetched.url) for entry in fast.entries] == posts
        assert with_websub_links({}, fast.links, fetched) == websub
        parsed = parse_feed(fetched)
        assert fast.links == [
            (link["rel"], link["href"])
            for link in parsed["feed"].get("links", [])
            if link.get("rel") in ("hub", "self")
        ]
    return fast


def corpus_content_type(corpus_dir: Path, entry: dict[str, Any]) -> str:
    """The Content-Type the corpus file was recorded with, or application/xml."""
    if entry.get("headers_file"):
        recorded = json.loads((corpus_dir / entry["headers_file"]).read_text(encoding="utf-8"))
        headers = {k.lower(): v for k, v in (recorded.get("headers") or {}).items()}
        value = headers.get("content-type")
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return str(value)
    hint = entry["expect"].get("test_header_in_file")
    if hint and hint.lower().startswith("content-type:"):
        return str(hint.split(":", 1)[1].strip())
    return "application/xml"


# --- differential ------------------------------------------------------------------------------


def test_corpus_feed_read_fast_equals_feedparser(corpus_dir, corpus_feed):
    body = (corpus_dir / corpus_feed["path"]).read_bytes()
    content_type = corpus_content_type(corpus_dir, corpus_feed)

    fast = assert_same_as_feedparser(response(body, content_type))

    if corpus_feed.get("malformed"):
        assert isinstance(fast, Declined)


def test_the_corpus_crypto_news_feeds_take_the_fast_path(corpus_dir):
    accepted = {
        path.name: read_feed(path.read_bytes(), "application/rss+xml; charset=utf-8")
        for path in sorted((corpus_dir / "feeds" / "crypto_news").glob("*.xml"))
    }

    assert len(accepted) == 3
    assert all(isinstance(fast, FastFeed) for fast in accepted.values()), accepted


def _test_feed_files() -> list[Path]:
    return sorted(p for p in TESTS_DIR.rglob("*") if p.suffix in (".xml", ".rss", ".atom"))


@pytest.mark.parametrize("path", _test_feed_files(), ids=lambda p: str(p.relative_to(TESTS_DIR)))
def test_feed_file_of_the_tests_read_fast_equals_feedparser(path):
    assert_same_as_feedparser(response(path.read_bytes()))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (TYPICAL_RSS, "application/rss+xml; charset=utf-8"),
        (TYPICAL_RSS, "text/xml"),  # RFC 3023's us-ascii default, which feedparser overrides
        (TYPICAL_RSS, None),
        (TYPICAL_ATOM, "application/atom+xml"),
        (rss_feed(["One & two", "Three"]), "application/rss+xml"),
    ],
    ids=["rss", "rss-text-xml", "rss-no-content-type", "atom", "feedbuilder"],
)
def test_typical_feed_takes_the_fast_path_with_feedparsers_answer(body, content_type):
    fast = assert_same_as_feedparser(response(body, content_type))

    assert isinstance(fast, FastFeed), fast


def test_parse_posts_reads_a_typical_feed_fast_and_keeps_its_websub_links():
    parsed = parse_posts(response(TYPICAL_RSS))

    assert parsed.fast and parsed.is_feed and parsed.problem is None
    first = parsed.posts[0]
    assert first.external_id == "wire-1001"
    assert first.url == "https://news.example/2026/acme-airdrop?utm_source=rss&utm_medium=feed"
    assert first.author == "Jane Doe"
    assert first.title == "Acme opens its ACM airdrop \u2014 claims today"
    assert first.published_at == datetime(2025, 12, 12, 22, 33, 11, tzinfo=UTC)
    assert first.html is not None and 'href="https://news.example/claims"' in first.html
    assert first.raw["tags"] == ["Airdrops", "Launches"]
    assert first.raw["enclosures"] == [
        {"href": "https://cdn.example/a.mp3", "type": "audio/mpeg", "length": "123"}
    ]
    assert parsed.posts[2].url == "https://wire.example/2026/third"
    assert with_websub_links({}, parsed.links, response(TYPICAL_RSS)) == {
        "websub_hub": "https://hub.example/",
        "websub_topic": "https://wire.example/feed/",
    }


def bench_like_feed(items: int) -> bytes:
    """The shape of benchmarks/bench_poll.py's feeds: CDATA HTML, non-permalink guids, authors."""
    published = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Bench wire 3</title><link>https://wire3.example/</link>"
        "<description>Feed 3 of the polling benchmark</description>"
    ]
    for item in range(items):
        link = f"https://wire3.example/2026/story-{item}"
        title = f"Markets: chip makers report record orders (report {item})"
        body = f'<p>{title}. Analysts expect more. <a href="{link}">Read the full story</a>.</p>'
        parts.append(
            f"<item><title>{title}</title><link>{link}</link>"
            f'<guid isPermaLink="false">wire3-{item}</guid>'
            f"<pubDate>{format_datetime(published - timedelta(minutes=item))}</pubDate>"
            f"<author>desk{item % 17}@wire3.example</author>"
            f"<description><![CDATA[{body}]]></description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def test_the_benchmarks_feed_shape_takes_the_fast_path():
    fetched = response(bench_like_feed(50), "application/rss+xml; charset=utf-8")

    fast = assert_same_as_feedparser(fetched)

    assert isinstance(fast, FastFeed) and len(fast.entries) == 50


# Fragments mixing what the fast path passes through with what it must decline or respell.
_PIECES = [
    "plain words",
    " ",
    "\n",
    "caf\u00e9",
    "\u2019quoted\u2019",
    "&amp;",
    "&nbsp;",
    "&hellip;",
    "&#8217;",
    "&#39;",
    "&#150;",
    "&bogus;",
    "&",
    "<",
    ">",
    "<p>",
    "</p>",
    "<br>",
    "<br/>",
    "<br />",
    "</br>",
    "<b>",
    "</b>",
    "<em>",
    "</em>",
    "<div>",
    "</div>",
    "<span>",
    '<a href="https://x.example/a?b=1&amp;c=2">',
    '<a href="/relative">',
    '<a href="javascript:alert(1)">',
    '<a title="t" href="/x">',
    '<a href="/x" title="t">',
    "</a>",
    '<img src="/i.png" alt="i">',
    '<img alt="i" src="/i.png">',
    '<img alt="i" src="/i.png" />',
    '<p class="lead">',
    '<p style="color: red">',
    '<p class="a" id="b">',
    '<p id="b" class="a">',
    '<a href="/x" rel="NoFollow" target="_blank">',
    '<a href="mailto:desk@x.example">',
    '<a href="HTTP://X.example/">',
    '<img alt="" height="2" src="/a.png" style="border: 0" width="1">',
    '<img src="/a.png" style="background: url(x)" alt="a">',
    "<h2>",
    "</h2>",
    "<table><tr><td>",
    "</td></tr></table>",
    "<pre>  spaced  </pre>",
    "<blockquote>",
    "</blockquote>",
    "& ",
    "&amp;amp;",
    "&copy",
    "<!-- c -->",
    "<script>",
    "</script>",
    "<!-- note -->",
    "<P>",
    "<p/>",
]


def test_random_html_bodies_read_fast_equal_feedparser():
    rng = random.Random(20261204)
    items = []
    for n in range(300):
        fragment = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        guid = f"<guid>id-{n}</guid>" if n % 3 else ""
        items.append(
            f"<item><title>t{n}</title>{guid}<link>https://x.example/{n}</link>"
            f"<description>{escape(fragment)}</description></item>"
        )
    accepted = 0
    for item in items:
        body = f'<?xml version="1.0"?><rss version="2.0"><channel>{item}</channel></rss>'
        accepted += isinstance(assert_same_as_feedparser(response(body.encode())), FastFeed)

    assert accepted >= 30  # enough of the simple ones get through to mean something


_RSS_ELEMENTS = [
    "<title>Plain title {n}</title>",
    "<title>Title &amp; co</title>",
    "<title></title>",
    "<link>https://x.example/{n}</link>",
    "<link>/relative/{n}?a=1&amp;b=2</link>",
    "<link></link>",
    "<guid>https://x.example/g/{n}</guid>",
    '<guid isPermaLink="false">g-{n}</guid>',
    '<guid isPermaLink="true">/g/{n}</guid>',
    "<guid> </guid>",
    "<description>Plain {n}</description>",
    "<description><![CDATA[<p>Some <b>bold</b> {n}</p>]]></description>",
    "<description></description>",
    "<content:encoded><![CDATA[<p>Full <a href='/a'>text</a></p>]]></content:encoded>",
    '<content:encoded><![CDATA[<p><a title="t" href="/a">x</a><br></p>]]></content:encoded>',
    "<content:encoded></content:encoded>",
    "<dc:description>dc {n}</dc:description>",
    "<dc:creator>Ann</dc:creator>",
    "<dc:creator>Bob &lt;bob@x.example&gt;</dc:creator>",
    "<author>desk@x.example (Desk)</author>",
    "<category>news</category>",
    "<category>news</category>",
    '<category domain="d">news</category>',
    '<category domain="d"></category>',
    "<dc:subject>topic</dc:subject>",
    "<pubDate>Fri, 12 Dec 2025 17:33:11 -0500</pubDate>",
    "<pubDate>2025-12-12T17:33:11Z</pubDate>",
    "<pubDate>12 Dec 2025</pubDate>",
    "<pubDate>garbage</pubDate>",
    "<dc:date>2025-12-01T00:00:00+01:00</dc:date>",
    '<enclosure url="https://cdn.example/{n}.mp3" length="1" type="audio/mpeg"/>',
    '<enclosure url="" type="image/png"/>',
    "<comments>https://x.example/{n}#c</comments>",
    '<atom:link rel="alternate" href="https://x.example/alt/{n}"/>',
    '<atom:link rel="enclosure" type="image/png" href="/e/{n}.png"/>',
    '<atom:link href="https://x.example/plain/{n}"/>',
    '<media:thumbnail url="https://cdn.example/t.png"/>',
]
_RSS_NAMESPACES = (
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:media="http://search.yahoo.com/mrss/"'
)
_ATOM_ELEMENTS = [
    "<title>Plain &lt;b&gt; title</title>",
    '<title type="html">An &lt;em&gt;html&lt;/em&gt; title</title>',
    '<title type="text"></title>',
    "<id>urn:x:{n}</id>",
    "<id>https://x.example/id/{n}</id>",
    '<link href="/a/{n}"/>',
    '<link rel="alternate" type="text/html" href="https://x.example/{n}"/>',
    '<link rel="alternate" type="application/pdf" href="https://x.example/{n}.pdf"/>',
    '<link rel="related" href="https://x.example/r/{n}"/>',
    "<updated>2025-12-02T20:24:36+02:00</updated>",
    "<published>2025-12-01T08:00:00Z</published>",
    "<author><name>Ann</name><email>ann@x.example</email></author>",
    "<author><email>ann@x.example</email></author>",
    "<author><name>Ann</name><uri>https://x.example/ann</uri></author>",
    '<category term="a" label="A"/>',
    '<category term="a" label="A"/>',
    '<category scheme="s"/>',
    "<summary>Summary {n}</summary>",
    '<summary type="html">&lt;p&gt;Summary&lt;/p&gt;</summary>',
    "<content>Plain content {n}</content>",
    '<content type="html">&lt;p&gt;Content &amp;amp; more&lt;/p&gt;</content>',
    '<content type="html"></content>',
]


def test_random_entries_read_fast_equal_feedparser():
    rng = random.Random(4122026)
    accepted = 0
    for n in range(400):
        atom = n % 2 == 1
        pool = _ATOM_ELEMENTS if atom else _RSS_ELEMENTS
        inner = "".join(rng.choice(pool).format(n=n) for _ in range(rng.randint(0, 9)))
        if atom:
            body = (
                '<feed xmlns="http://www.w3.org/2005/Atom"><title>f</title>'
                f'<link rel="self" href="https://x.example/atom"/><entry>{inner}</entry></feed>'
            )
        else:
            body = (
                f'<rss version="2.0"{_RSS_NAMESPACES}><channel><title>f</title>'
                f'<atom:link rel="hub" href="https://hub.example/"/><item>{inner}</item>'
                "</channel></rss>"
            )
        accepted += isinstance(assert_same_as_feedparser(response(body.encode())), FastFeed)

    assert accepted >= 200


def test_the_html_passed_through_is_all_acceptable_to_feedparsers_sanitiser():
    assert feed_html.ELEMENTS <= _HTMLSanitizer.acceptable_elements
    assert not feed_html.ELEMENTS & _HTMLSanitizer.unacceptable_elements_with_end_tag
    assert feed_html.ATTRIBUTES <= _HTMLSanitizer.acceptable_attributes


# --- declined ----------------------------------------------------------------------------------


def rss_item(inner: str, namespaces: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"{namespaces}><channel>'
        f"<title>t</title><item>{inner}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(rss_item("<title>one</title>")[:-10], id="truncated"),
        pytest.param(rss_item("<title>two & three</title>"), id="bare-ampersand"),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<rss version="2.0"><channel><item><title>&b;</title></item></channel></rss>',
            id="doctype-entities",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC'
            b' "-//Netscape Communications//DTD RSS 0.91//EN"'
            b' "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91">'
            b"<channel><item><title>x</title></item></channel></rss>",
            id="doctype-external",
        ),
        pytest.param(b"<html><body><p>hi</p></body></html>", id="html-page"),
        pytest.param(
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            b' xmlns="http://purl.org/rss/1.0/"><item><title>x</title></item></rdf:RDF>',
            id="rss-1.0",
        ),
        pytest.param(
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id>'
            b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'
            b"</content></entry></feed>",
            id="atom-xhtml-content",
        ),
        pytest.param(
            b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example/">'
            b'<entry><id>1</id><link href="x"/></entry></feed>',
            id="xml-base",
        ),
        pytest.param(
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id>'
            b'<content type="text/markdown">*x*</content></entry></feed>',
            id="atom-other-content-type",
        ),
        pytest.param(
            rss_item("<title>AT&amp;amp;T &amp;#8217;s</title>"), id="rss-title-looks-html"
        ),
        pytest.param(
            rss_item("<description><![CDATA[<p>x<script>steal()</script></p>]]></description>"),
            id="html-script",
        ),
        pytest.param(
            rss_item("<description><![CDATA[<p>a<iframe src='/x'></iframe></p>]]></description>"),
            id="html-iframe",
        ),
        pytest.param(
            rss_item('<description><![CDATA[<p STYLE="color:red">x</p>]]></description>'),
            id="html-uppercase-attribute",
        ),
        pytest.param(
            rss_item('<description><![CDATA[<a href="/a" href="/b">x</a>]]></description>'),
            id="html-repeated-attribute",
        ),
        pytest.param(
            rss_item("<description><![CDATA[<p>S&P &copy 2026</p>]]></description>"),
            id="html-entity-without-semicolon",
        ),
        pytest.param(
            rss_item("<description><![CDATA[<p>a</p><!-- c -- d -->]]></description>"),
            id="html-odd-comment",
        ),
        pytest.param(
            rss_item(
                "<media:title>x</media:title>", ' xmlns:media="http://search.yahoo.com/mrss/"'
            ),
            id="unknown-item-element",
        ),
        pytest.param(rss_item("<title>a</title><title>b</title>"), id="two-titles"),
        pytest.param(
            rss_item("<description>a</description><description>b</description>"), id="two-summaries"
        ),
        pytest.param(rss_item("<title>Caf\u00c3\u00a9</title>"), id="utf8-read-as-latin1"),
        pytest.param(
            rss_item("<title>x</title>", ' xmlns="urn:other"'), id="unknown-default-namespace"
        ),
    ],
)
def test_fast_path_declines_what_it_cannot_be_sure_of(body):
    fetched = response(body, "application/xml; charset=utf-8")

    assert isinstance(read_feed(fetched.body, "application/xml; charset=utf-8"), Declined)
    assert parse_posts(fetched).fast is False


def test_windows_1252_declared_as_utf8_is_left_to_feedparser_and_warned_about():
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>it\u2019s \u201clive\u201d</title><guid>1</guid></item></channel></rss>"
    ).encode("cp1252")

    parsed = parse_posts(response(body, "application/xml; charset=utf-8"))

    assert parsed.fast is False
    assert parsed.problem is not None
    assert parsed.posts[0].title == "it\u2019s \u201clive\u201d"
