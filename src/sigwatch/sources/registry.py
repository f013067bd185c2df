"""Every source kind, by name: adding a kind is one module and one line here."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sigwatch.errors import ConfigError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import Source
from sigwatch.sources.rss import RssSource

SOURCE_KINDS: dict[str, type[Source]] = {
    RssSource.kind: RssSource,
}


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Return the source's config normalised by its kind's options model, or raise ConfigError."""
    factory = _factory(kind)
    try:
        return factory.Options.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        raise ConfigError(f"invalid {kind} source config: {exc}") from exc


def build_source(kind: str, config: dict[str, Any], client: OutboundClient) -> Source:
    """Instantiate the source kind ``kind`` from its stored config."""
    factory = _factory(kind)
    return factory(factory.Options.model_validate(config), client)


def _factory(kind: str) -> type[Source]:
    try:
        return SOURCE_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(SOURCE_KINDS))
        raise ConfigError(f"unknown source kind {kind!r}; known kinds: {known}") from None
