"""Small RSS documents written for the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def rss_feed(titles: list[str], *, link: str = "https://news.example") -> bytes:
    """An RSS 2.0 feed with one item per title, newest first, each with a guid and a date."""
    items = "".join(
        "<item>"
        f"<title>{escape(title)}</title>"
        f"<link>{link}/{n}</link>"
        f"<guid>{link}/{n}</guid>"
        f"<pubDate>{format_datetime(T0 + timedelta(minutes=n))}</pubDate>"
        f"<description>{escape(title)} in full.</description>"
        "</item>"
        for n, title in reversed(list(enumerate(titles)))
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Test feed</title><link>{link}</link><description>tests</description>"
        f"{items}</channel></rss>"
    ).encode()
