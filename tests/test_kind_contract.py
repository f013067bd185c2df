"""The contract every registered kind keeps, source kinds and channel kinds alike.

Each kind has an example config here, a source kind a whole :class:`SourceCase` (a new kind
without one fails the first test): it
validates, its secrets are sealed at rest and open back, it is masked when shown, its schema
marks the secrets, and a bad option is named without its value. Sources also round-trip their
fetch state and turn failures into SourceError; channels turn failures into DeliveryError.
Fetches and sends go to a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from feedbuilder import rss_feed
from localserver import LocalServer
from sigwatch.delivery.channels.registry import CHANNEL_REGISTRY, build_channel
from sigwatch.delivery.channels.webhook import generate_webhook_secret
from sigwatch.delivery.message import AlertMessage
from sigwatch.errors import DeliveryError, InvalidOptions, SourceError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import Platforms
from sigwatch.sources.registry import SOURCE_REGISTRY, build_source

KEY = "contract-secret-key-that-is-long-enough-0123456789"
TOKEN = "Bearer s3cr3t-t0ken-for-the-contract"


@dataclass(frozen=True)
class SourceCase:
    """How the contract exercises one source kind against the local server.

    ``config`` is an example config (every option that can be set, secrets too); ``serve``
    registers the answers of a working fetch and returns the paths a fetch requests, whose
    answers the failure tests replace; ``credential`` is a header and the value each request
    must carry when the example sets a credential.
    """

    config: Callable[[LocalServer], dict[str, Any]]
    serve: Callable[[LocalServer], list[str]]
    credential: tuple[str, str] | None = None


def _serve_rss(server: LocalServer) -> list[str]:
    server.serve(
        "/feed.xml",
        rss_feed(["Example Protocol announces its TGE"]),
        headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'},
    )
    return ["/feed.xml"]


DISCORD_CHANNEL = "1151985543220084756"
DISCORD_TOKEN = "MTE2MTMzOTEyMjQwNTA5MzQyNg.GxYz12.contract-b0t-t0ken"


def _serve_discord(server: LocalServer) -> list[str]:
    channel = f"/channels/{DISCORD_CHANNEL}"
    message = {
        "id": "1445718020050780165",
        "channel_id": DISCORD_CHANNEL,
        "type": 0,
        "content": "Example Protocol announces its TGE",
        "author": {"id": "402930218383409152", "username": "alice.eth", "global_name": "Alice"},
        "timestamp": "2025-12-03T10:07:16.122000+00:00",
        "edited_timestamp": None,
    }
    headers = {"Content-Type": "application/json"}
    server.serve(
        channel, json.dumps({"id": DISCORD_CHANNEL, "guild_id": "1"}).encode(), headers=headers
    )
    server.serve(f"{channel}/messages", json.dumps([message]).encode(), headers=headers)
    return [channel, f"{channel}/messages"]


TELEGRAM_PREVIEW = b"""<!DOCTYPE html><html><head><title>Example - Telegram</title></head><body>
<main class="tgme_main"><section class="tgme_channel_history js-message_history">
<div class="tgme_widget_message_wrap"><div class="tgme_widget_message" data-post="example_news/41">
<div class="tgme_widget_message_bubble">
<div class="tgme_widget_message_text js-message_text">Example Protocol announces its TGE</div>
<div class="tgme_widget_message_footer"><span class="tgme_widget_message_views">1.2K</span>
<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date"
href="https://t.me/example_news/41"><time datetime="2025-12-03T10:07:16+00:00"></time></a></span>
</div></div></div></div></section></main></body></html>"""
REDDIT_CLIENT_ID = "contract-client-id"
REDDIT_SECRET = "s3cr3t-reddit-app-secret"


def _serve_telegram(server: LocalServer) -> list[str]:
    server.serve(
        "/s/example_news", TELEGRAM_PREVIEW, headers={"Content-Type": "text/html; charset=utf-8"}
    )
    return ["/s/example_news"]


def _serve_reddit(server: LocalServer) -> list[str]:
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    token = {"access_token": "contract-reddit-token", "token_type": "bearer", "expires_in": 86400}
    post = {
        "kind": "t3",
        "data": {
            "id": "1pcx0ab",
            "name": "t3_1pcx0ab",
            "title": "Example Protocol announces its TGE",
            "selftext": "Claim opens Friday.",
            "author": "alice",
            "permalink": "/r/example/comments/1pcx0ab/example_protocol_announces_its_tge/",
            "created_utc": 1764756436.0,
            "score": 12,
            "num_comments": 3,
            "upvote_ratio": 0.93,
            "is_self": True,
        },
    }
    listing = {"kind": "Listing", "data": {"after": None, "before": None, "children": [post]}}
    server.serve("/api/v1/access_token", json.dumps(token).encode(), headers=headers)
    server.serve("/r/example/new.json", json.dumps(listing).encode(), headers=headers)
    return ["/api/v1/access_token", "/r/example/new.json"]


def _serve_json(server: LocalServer) -> list[str]:
    article = {
        "id": 229923,
        "title": "Example Protocol announces its TGE",
        "body": "<p>Claim opens <b>Friday</b>.</p>",
        "url": "/news/229923",
        "published": 1742369411614,
    }
    server.serve(
        "/api/announcements",
        json.dumps({"data": {"articles": [article]}}).encode(),
        headers={"Content-Type": "application/json", "ETag": '"v1"'},
    )
    return ["/api/announcements"]


X_TOKEN = "AAAAAAAAAAAAAAAAAAAAAcontract-x-t0ken"
X_TWEET = {
    "id": "1890000000000000003",
    "text": "Example Protocol announces its TGE &amp; airdrop",
    "author_id": "2244994945",
    "created_at": "2025-12-03T10:07:16.000Z",
    "public_metrics": {"retweet_count": 1, "reply_count": 0, "like_count": 5, "quote_count": 0},
}
X_USERS = {"users": [{"id": "2244994945", "name": "Developers", "username": "XDevelopers"}]}


def _serve_x_user(server: LocalServer) -> list[str]:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    lookup = {"data": X_USERS["users"][0]}
    timeline = {"data": [X_TWEET], "includes": X_USERS, "meta": {"result_count": 1}}
    server.serve("/2/users/by/username/XDevelopers", json.dumps(lookup).encode(), headers=headers)
    server.serve("/2/users/2244994945/tweets", json.dumps(timeline).encode(), headers=headers)
    return ["/2/users/by/username/XDevelopers", "/2/users/2244994945/tweets"]


def _serve_x_search(server: LocalServer) -> list[str]:
    answer = {"data": [X_TWEET], "includes": X_USERS, "meta": {"result_count": 1}}
    server.serve(
        "/2/tweets/search/recent",
        json.dumps(answer).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    return ["/2/tweets/search/recent"]


WEB_PAGE = b"""<!DOCTYPE html><html><head><title>News</title></head><body><ul>
<li class="post"><a href="/news/tge">Example Protocol announces its TGE</a>
<time datetime="2025-12-03T10:07:16Z">Dec 3, 2025</time></li></ul></body></html>"""


def _serve_web(server: LocalServer) -> list[str]:
    server.serve(
        "/robots.txt", b"User-agent: *\nAllow: /\n", headers={"Content-Type": "text/plain"}
    )
    server.serve(
        "/news", WEB_PAGE, headers={"Content-Type": "text/html; charset=utf-8", "ETag": '"v1"'}
    )
    return ["/robots.txt", "/news"]


#: Every source kind's case; a new kind without one fails the first test.
SOURCE_CASES: dict[str, SourceCase] = {
    "rss": SourceCase(
        config=lambda server: {"url": server.url("/feed.xml"), "authorization": TOKEN},
        serve=_serve_rss,
        credential=("authorization", TOKEN),
    ),
    "telegram": SourceCase(
        config=lambda server: {"channel": "https://t.me/example_news"},
        serve=_serve_telegram,
    ),
    # The token request carries Basic credentials and the listing the bearer token, so no one
    # header is on every request; tests/sources/test_reddit_source.py checks each.
    "reddit": SourceCase(
        config=lambda server: {
            "subreddit": "r/example",
            "listing": "new",
            "client_id": REDDIT_CLIENT_ID,
            "client_secret": REDDIT_SECRET,
        },
        serve=_serve_reddit,
        credential=None,
    ),
    "discord": SourceCase(
        config=lambda server: {"channel_id": DISCORD_CHANNEL, "bot_token": DISCORD_TOKEN},
        serve=_serve_discord,
        credential=("authorization", f"Bot {DISCORD_TOKEN}"),
    ),
    # A web page takes no credential; robots.txt is part of every fetch.
    "web": SourceCase(
        config=lambda server: {
            "url": server.url("/news"),
            "item": "li.post",
            "title": "a",
            "link": "a",
            "date": "time",
            "text": "a",
            "render": False,
        },
        serve=_serve_web,
        credential=None,
    ),
    "json": SourceCase(
        config=lambda server: {
            "url": server.url("/api/announcements"),
            "items": "data.articles",
            "id": "id",
            "title": "title",
            "text": "body",
            "link": "url",
            "date": "published",
            "headers": {"Authorization": TOKEN},
            "method": "GET",
        },
        serve=_serve_json,
        credential=("authorization", TOKEN),
    ),
    "x_user": SourceCase(
        config=lambda server: {
            "username": "@XDevelopers",
            "bearer_token": X_TOKEN,
            "include_replies": False,
            "include_retweets": True,
            "via": "api",
        },
        serve=_serve_x_user,
        credential=("authorization", f"Bearer {X_TOKEN}"),
    ),
    "x_search": SourceCase(
        config=lambda server: {"query": "TGE OR airdrop", "bearer_token": X_TOKEN},
        serve=_serve_x_search,
        credential=("authorization", f"Bearer {X_TOKEN}"),
    ),
}
SOURCE_EXAMPLES = {kind: case.config for kind, case in SOURCE_CASES.items()}
CHANNEL_EXAMPLES: dict[str, Callable[[LocalServer], dict[str, Any]]] = {
    "webhook": lambda server: {
        "url": server.url("/hook/t0ken-in-path"),
        "secret": generate_webhook_secret(),
    },
    "apprise": lambda server: {"url": f"json://127.0.0.1:{server.port}/notify/t0ken-in-path"},
}
#: A config each kind refuses, with the option named and a secret value that must not show.
SOURCE_BAD: dict[str, dict[str, Any]] = {
    "rss": {"url": "ftp://news.example/feed", "authorization": "line\nbreak-s3cr3t"},
    "telegram": {"channel": "https://t.me/+invite-hunter2hunter2"},
    "reddit": {
        "subreddit": "no spaces allowed",
        "client_id": "contract-client-id",
        "client_secret": "line\nbreak-s3cr3t",
    },
    "discord": {"channel_id": "12345", "bot_token": "line\nbreak-s3cr3t"},
    "web": {"url": "ftp://news.example/announcements", "item": "li[", "text": "p.summary"},
    # Header values are secrets even when headers are sent in the wrong shape.
    "json": {
        "url": "ftp://api.example/announcements",
        "items": "data.articles",
        "headers": "Authorization: Bearer s3cr3t-header",
    },
    "x_user": {"username": "no spaces allowed", "bearer_token": "line\nbreak-s3cr3t"},
    "x_search": {"query": "x" * 513, "bearer_token": "two s3cr3t words"},
}
CHANNEL_BAD: dict[str, dict[str, Any]] = {
    "webhook": {"url": "ftp://user:hunter2hunter2@example.com/in", "secret": "whsec_c2hvcnQ="},
    "apprise": {"url": "nonsense://hunter2hunter2@what"},
}

SOURCE_KINDS = SOURCE_REGISTRY.names()
CHANNEL_KINDS = CHANNEL_REGISTRY.names()
ALL_KINDS = [(SOURCE_REGISTRY, kind, SOURCE_EXAMPLES) for kind in SOURCE_KINDS] + [
    (CHANNEL_REGISTRY, kind, CHANNEL_EXAMPLES) for kind in CHANNEL_KINDS
]
IDS = [f"{registry.noun}-{kind}" for registry, kind, _ in ALL_KINDS]


@pytest.fixture
async def client() -> AsyncIterator[OutboundClient]:
    """A client with the real guard that may reach 127.0.0.1 and nothing else private."""
    async with OutboundClient(
        timeout_s=2.0,
        max_response_bytes=1_000_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as opened:
        yield opened


def message() -> AlertMessage:
    return AlertMessage(
        alert_id=1,
        idempotency_key="alert-1-channel-1",
        event="tge",
        entity="Example Protocol",
        title="Example Protocol announces its TGE",
        summary="A contract test message.",
        confidence=0.9,
        urgency="high",
        url="https://example.com/alerts/1",
        evidence=[],
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        kind="new",
    )


def test_every_registered_kind_has_an_example_and_a_refused_config():
    assert sorted(SOURCE_EXAMPLES) == SOURCE_KINDS == sorted(SOURCE_BAD)
    assert sorted(CHANNEL_EXAMPLES) == CHANNEL_KINDS == sorted(CHANNEL_BAD)


@pytest.mark.parametrize(("registry", "kind", "examples"), ALL_KINDS, ids=IDS)
def test_the_example_validates_and_its_secrets_are_sealed_opened_and_masked(
    registry, kind, examples, server
):
    clear = registry.clear_config(kind, examples[kind](server))
    secrets = registry.secret_values(kind, clear)
    assert secrets or not registry.secret_fields(kind), (
        f"the {kind} example sets no secret option, so sealing goes untested"
    )

    sealed = registry.seal(kind, clear, KEY)
    stored = json.dumps(sealed)
    assert all(secret not in stored for secret in secrets)
    assert registry.open(kind, sealed, KEY) == clear

    shown = json.dumps(registry.shown(kind, sealed, KEY))
    assert all(secret not in shown for secret in secrets)
    assert json.dumps(registry.shown(kind, sealed, "another-key-0123456789abcdef0123456789"))


@pytest.mark.parametrize(("registry", "kind", "examples"), ALL_KINDS, ids=IDS)
def test_the_description_and_schema_mark_every_secret(registry, kind, examples):
    described = registry.describe(kind)
    assert described.name == kind and described.description
    properties = described.options_schema["properties"]
    for name in described.secret_fields:
        schema = json.dumps(properties[name])
        assert '"writeOnly": true' in schema and '"format": "password"' in schema, name


@pytest.mark.parametrize(
    ("registry", "kind", "bad"),
    [(SOURCE_REGISTRY, kind, SOURCE_BAD[kind]) for kind in SOURCE_KINDS]
    + [(CHANNEL_REGISTRY, kind, CHANNEL_BAD[kind]) for kind in CHANNEL_KINDS],
    ids=IDS,
)
def test_a_refused_config_names_the_option_and_never_its_secret(registry, kind, bad):
    with pytest.raises(InvalidOptions) as caught:
        registry.validate(kind, bad)

    assert caught.value.problems and all(problem.location for problem in caught.value.problems)
    said = str(caught.value) + json.dumps([problem.message for problem in caught.value.problems])
    for value in bad.values():
        assert value not in said
    assert "s3cr3t" not in said and "hunter2" not in said


def platforms(server: LocalServer) -> Platforms:
    """Every platform's API at the local server."""
    root = server.url("").rstrip("/")
    return Platforms(x_api_url=root, telegram_url=root, reddit_url=root, discord_api_url=root)


def example_source(kind: str, server: LocalServer, client: OutboundClient) -> Any:
    config = SOURCE_REGISTRY.clear_config(kind, SOURCE_CASES[kind].config(server))
    return build_source(kind, config, client, platforms(server))


@pytest.mark.parametrize("kind", SOURCE_KINDS)
async def test_a_source_round_trips_its_fetch_state(kind, server, client):
    SOURCE_CASES[kind].serve(server)
    source = example_source(kind, server, client)

    first = await source.fetch({})
    state = json.loads(json.dumps(first.state))
    again = await source.fetch(state)

    assert first.posts and state == first.state
    assert again.not_modified or {p.external_id for p in again.posts} <= {
        p.external_id for p in first.posts
    }
    credential = SOURCE_CASES[kind].credential
    if credential is not None:
        header, value = credential
        assert server.requests and all(
            value in request.headers.get(header, "") for request in server.requests
        )


@pytest.mark.parametrize("kind", SOURCE_KINDS)
@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "body": b"down"},
        {"status": 401, "body": b"who are you"},
        {"status": 200, "body": b"<html><body>not what was asked for</body></html>"},
    ],
    ids=["server-error", "refused-credentials", "not-its-format"],
)
async def test_a_source_failure_is_a_source_error(kind, answer, server, client):
    for path in SOURCE_CASES[kind].serve(server):
        server.serve(path, answer["body"], status=answer["status"])

    with pytest.raises(SourceError) as caught:
        await example_source(kind, server, client).fetch({})
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("kind", SOURCE_KINDS)
async def test_a_source_that_does_not_answer_in_time_is_a_source_error(kind, server, client):
    for path in SOURCE_CASES[kind].serve(server):
        server.sleep_then_serve(path, 4.0)

    with pytest.raises(SourceError):
        await example_source(kind, server, client).fetch({})


@pytest.mark.parametrize("kind", CHANNEL_KINDS)
@pytest.mark.parametrize("status", [500, 403])
async def test_a_channel_failure_is_a_delivery_error_without_its_secrets(
    kind, status, server, client
):
    clear = CHANNEL_REGISTRY.clear_config(kind, CHANNEL_EXAMPLES[kind](server))
    for path in ("/hook/t0ken-in-path", "/notify/t0ken-in-path"):
        server.serve(path, b'{"message": "no"}', status=status)

    with pytest.raises(DeliveryError) as caught:
        await build_channel(kind, clear, client).send(message())
    assert "t0ken" not in str(caught.value)
    for secret in CHANNEL_REGISTRY.secret_values(kind, clear):
        assert secret not in str(caught.value)
