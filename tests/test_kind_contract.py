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


#: Every source kind's case; a new kind without one fails the first test.
SOURCE_CASES: dict[str, SourceCase] = {
    "rss": SourceCase(
        config=lambda server: {"url": server.url("/feed.xml"), "authorization": TOKEN},
        serve=_serve_rss,
        credential=("authorization", TOKEN),
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
