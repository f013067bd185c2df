"""Opening a stored source: its options are opened and validated once per distinct config."""

from __future__ import annotations

import pytest

from sigwatch.config import load_settings
from sigwatch.errors import ConfigError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.registry import SOURCE_REGISTRY, open_source

KEY = "registry-test-key-that-is-long-enough-0123456789"
OTHER_KEY = "another-registry-test-key-long-enough-9876543210"


async def test_opening_a_stored_source_again_reuses_its_options_until_its_config_changes():
    sealed = SOURCE_REGISTRY.seal(
        "rss", {"url": "https://news.example/feed.xml", "authorization": "Bearer t0k3n"}, KEY
    )
    async with OutboundClient.from_settings(load_settings()) as client:
        first = open_source("rss", sealed, secret_key=KEY, client=client)
        again = open_source("rss", dict(sealed), secret_key=KEY, client=client)
        edited = open_source(
            "rss",
            {**sealed, "url": "https://news.example/other.xml"},
            secret_key=KEY,
            client=client,
        )
    assert again is not first and again.options is first.options  # type: ignore[attr-defined]
    assert first.options.authorization.get_secret_value() == "Bearer t0k3n"  # type: ignore[attr-defined]
    assert edited.options.url == "https://news.example/other.xml"  # type: ignore[attr-defined]


async def test_options_opened_once_are_not_given_to_a_worker_with_another_secret_key():
    sealed = SOURCE_REGISTRY.seal(
        "rss", {"url": "https://news.example/feed.xml", "authorization": "Bearer t0k3n"}, KEY
    )
    async with OutboundClient.from_settings(load_settings()) as client:
        open_source("rss", sealed, secret_key=KEY, client=client)
        with pytest.raises(ConfigError):
            open_source("rss", sealed, secret_key=OTHER_KEY, client=client)
