"""OPML import and export: parse_opml and write_opml."""

from __future__ import annotations

import pytest

from sigwatch.errors import ParseError
from sigwatch.sources.opml import OpmlFeed, parse_opml, write_opml

READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="Top level" type="rss" xmlUrl="https://top.example/feed"/>
    <outline text="Crypto" title="Crypto">
      <outline text="CoinDesk" type="rss" xmlUrl="https://www.coindesk.com/arc/outboundfeeds/rss/"
               htmlUrl="https://www.coindesk.com/"/>
      <outline title="Only a title" type="rss" xmlurl="https://lower.example/rss"/>
      <outline text="A bookmark, not a feed" type="link" url="https://example.com/"/>
      <outline text="Exchanges">
        <outline text="Binance blog" type="rss" xmlUrl="https://binance.example/feed"/>
      </outline>
    </outline>
    <outline text="No title" type="rss" xmlUrl=" https://untitled.example/atom "/>
  </body>
</opml>
"""


def test_feeds_are_read_in_order_with_their_folder():
    assert parse_opml(READER_EXPORT) == [
        OpmlFeed("Top level", "https://top.example/feed", None),
        OpmlFeed("CoinDesk", "https://www.coindesk.com/arc/outboundfeeds/rss/", "Crypto"),
        OpmlFeed("Only a title", "https://lower.example/rss", "Crypto"),
        OpmlFeed("Binance blog", "https://binance.example/feed", "Exchanges"),
        OpmlFeed("No title", "https://untitled.example/atom", None),
    ]


def test_write_then_parse_round_trips():
    feeds = [
        OpmlFeed("Plain", "https://a.example/feed", None),
        OpmlFeed('Q&A <"quoted">', "https://b.example/rss?x=1&y=2", "News & views"),
        OpmlFeed("Ünïcode – 新闻", "https://c.example/atom.xml", "News & views"),
        OpmlFeed("Other", "https://d.example/feed", "Crypto"),
    ]

    document = write_opml(feeds, title="sigwatch sources")

    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b"<title>sigwatch sources</title>" in document
    assert parse_opml(document) == feeds


def test_writer_groups_feeds_by_category_in_first_seen_order():
    feeds = [
        OpmlFeed("a", "https://a.example/", "X"),
        OpmlFeed("b", "https://b.example/", "Y"),
        OpmlFeed("c", "https://c.example/", "X"),
    ]

    assert [f.title for f in parse_opml(write_opml(feeds, title="t"))] == ["a", "c", "b"]


def test_utf16_document_is_read():
    assert (
        len(parse_opml(READER_EXPORT.replace(b"UTF-8", b"UTF-16").decode().encode("utf-16"))) == 5
    )


def test_malformed_opml_raises_parse_error_with_the_line():
    broken = (
        b'<?xml version="1.0"?>\n<opml version="2.0">\n<body>\n<outline text="x">\n</body></opml>'
    )

    with pytest.raises(
        ParseError, match=r"not well-formed XML \(line 5, column 3: mismatched tag\)"
    ):
        parse_opml(broken)


def test_empty_file_raises_parse_error():
    with pytest.raises(ParseError, match="not well-formed XML"):
        parse_opml(b"")


def test_other_xml_is_not_taken_for_opml():
    with pytest.raises(ParseError, match=r"root element is <rss>, not <opml>"):
        parse_opml(b'<rss version="2.0"><channel/></rss>')


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<opml version="2.0"><body><outline text="&lol3;" xmlUrl="https://x.example/"/></body></opml>
"""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16", "utf-32"])
def test_entity_declarations_are_refused_in_any_encoding(encoding):
    data = BILLION_LAUGHS.decode().encode(encoding)

    with pytest.raises(ParseError, match="DOCTYPE or ENTITY declaration"):
        parse_opml(data)


def test_external_entity_is_refused():
    data = (
        b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "file:///etc/passwd">'
        b'<opml version="2.0"><body/></opml>'
    )

    with pytest.raises(ParseError, match="DOCTYPE"):
        parse_opml(data)


def test_folders_nested_far_deeper_than_the_stack_are_read():
    depth = 50_000
    document = (
        b"<opml><body>"
        + b'<outline text="folder">' * depth
        + b'<outline text="Deep" xmlUrl="https://deep.example/feed"/>'
        + b"</outline>" * depth
        + b"</body></opml>"
    )
    assert parse_opml(document) == [OpmlFeed("Deep", "https://deep.example/feed", "folder")]
