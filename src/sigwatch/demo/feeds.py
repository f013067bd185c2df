"""Demo feeds: deterministic RSS documents that gain an item every few seconds.

Item ``n`` of a feed is published at ``epoch + n * every_s``; a request sees the newest
``WINDOW`` items published so far. Each feed mixes ordinary news with announcements about the demo
watchlist's projects, so a newcomer sees posts (and later, alerts) arrive within seconds, offline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

WINDOW = 20

DEMO_ENTITIES: list[dict[str, object]] = [
    {
        "name": "Nebula Protocol",
        "aliases": ["Nebula"],
        "symbols": ["NEB"],
        "handles": ["nebulaprotocol"],
        "domains": ["nebula.example"],
        "tags": ["l1", "demo"],
    },
    {
        "name": "Quartz Finance",
        "aliases": ["Quartz"],
        "symbols": ["QTZ"],
        "handles": ["quartzfi"],
        "domains": ["quartz.example"],
        "tags": ["defi", "demo"],
    },
    {
        "name": "Helix Network",
        "aliases": ["Helix"],
        "symbols": ["HLX"],
        "handles": ["helixnet"],
        "domains": ["helix.example"],
        "tags": ["l2", "demo"],
    },
]

_PROJECTS = [("Nebula Protocol", "NEB"), ("Quartz Finance", "QTZ"), ("Helix Network", "HLX")]

_ANNOUNCEMENTS = [
    "{name} announces its token generation event: ${symbol} TGE goes live tomorrow at 14:00 UTC",
    "Binance will list {name} (${symbol}): spot trading opens at 10:00 UTC tomorrow",
    "{name} airdrop claim is now open: check eligibility for the ${symbol} airdrop",
    "{name} mainnet launch is live: the {name} mainnet is now open to everyone",
    "{name} token unlock: 12% of ${symbol} supply unlocks on the 1st of next month",
]

_ORDINARY = [
    "Market wrap: bitcoin holds steady as traders await the rate decision",
    "Opinion: what the next cycle could look like for decentralised exchanges",
    "Developers gather for the annual protocol research summit",
    "Stablecoin supply reaches a new high, data shows",
    "How on-chain analytics firms track wallet activity",
    "Regulators publish a consultation on digital asset custody",
    "Ethereum gas fees fall to a multi-month low",
    "A beginner's guide to self-custody wallets",
]


@dataclass(frozen=True, slots=True)
class DemoFeed:
    """One demo feed: its slug, title, how often it gains an item, and its mix of items."""

    slug: str
    title: str
    every_s: int
    announcement_every: int  # one item in this many is an announcement about a demo project


DEMO_FEEDS = [
    DemoFeed("chain-news", "Demo Chain News", every_s=5, announcement_every=3),
    DemoFeed(
        "exchange-announcements", "Demo Exchange Announcements", every_s=7, announcement_every=2
    ),
    DemoFeed("project-blog", "Demo Project Blog", every_s=11, announcement_every=2),
]

#: The demo's items count from this moment, so the feeds always have a recent history.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _item(feed: DemoFeed, n: int) -> tuple[str, str, datetime]:
    published = EPOCH + timedelta(seconds=n * feed.every_s)
    # A stable pseudo-random pick per (feed, n), so every request shows the same item n.
    pick = int(hashlib.sha256(f"{feed.slug}:{n}".encode()).hexdigest()[:8], 16)
    if n % feed.announcement_every == 0:
        name, symbol = _PROJECTS[pick % len(_PROJECTS)]
        title = _ANNOUNCEMENTS[(pick // 7) % len(_ANNOUNCEMENTS)].format(name=name, symbol=symbol)
    else:
        title = _ORDINARY[pick % len(_ORDINARY)]
    body = f"{title}. This is demo item {n} of {feed.title}, generated offline by sigwatch."
    return title, body, published


def latest_item_number(feed: DemoFeed, now: datetime) -> int:
    """The number of the newest item published at ``now``."""
    return int((now - EPOCH).total_seconds() // feed.every_s)


def render_feed(feed: DemoFeed, base_url: str, now: datetime) -> tuple[bytes, str]:
    """The feed's RSS 2.0 document as of ``now`` and its ETag."""
    newest = latest_item_number(feed, now)
    items = []
    for n in range(newest, max(-1, newest - WINDOW), -1):
        title, body, published = _item(feed, n)
        link = f"{base_url}/demo/{feed.slug}/{n}"
        items.append(
            "<item>"
            f"<title>{escape(title)}</title>"
            f"<link>{escape(link)}</link>"
            f'<guid isPermaLink="false">{feed.slug}-{n}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape('<p>' + escape(body) + '</p>')}</description>"
            "</item>"
        )
    document = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0"><channel>'
        f"<title>{escape(feed.title)}</title>"
        f"<link>{escape(base_url)}/demo/{feed.slug}</link>"
        "<description>Offline demo feed of sigwatch</description>"
        f"{''.join(items)}"
        "</channel></rss>"
    )
    return document.encode("utf-8"), f'"{feed.slug}-{newest}"'
