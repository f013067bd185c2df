"""Every source kind, by name: adding a kind is one module and one line here.

The source kinds share :class:`sigwatch.kinds.KindRegistry` with the channels: it validates a
source's config, seals its secret options (credentials, header values) at rest, opens them for
the worker that builds the source and masks them for display. A kind's options may define
``origin()``, the source's address normalised, so that one owner cannot add the same feed
twice; a kind without it is one origin per distinct set of non-secret options.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel

from sigwatch.errors import Conflict
from sigwatch.kinds import KindRegistry, dump_clear, secret_fields
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import Platforms, Source
from sigwatch.sources.discord import DiscordSource
from sigwatch.sources.json_api import JsonApiSource
from sigwatch.sources.reddit import RedditSource
from sigwatch.sources.rss import RssSource
from sigwatch.sources.telegram import TelegramSource
from sigwatch.sources.web import WebSource
from sigwatch.sources.x import XSearchSource, XUserSource

SOURCE_KINDS: dict[str, type[Source]] = {
    RssSource.kind: RssSource,
    TelegramSource.kind: TelegramSource,
    RedditSource.kind: RedditSource,
    DiscordSource.kind: DiscordSource,
    WebSource.kind: WebSource,
    XUserSource.kind: XUserSource,
    XSearchSource.kind: XSearchSource,
    JsonApiSource.kind: JsonApiSource,
}
SOURCE_REGISTRY: KindRegistry[Source] = KindRegistry("source", SOURCE_KINDS)


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The source's config normalised by its kind's options (secrets clear), or InvalidOptions.

    The error names each bad field but never echoes a value, since values may be secrets.
    """
    return SOURCE_REGISTRY.clear_config(kind, config)


def build_source(
    kind: str,
    config: dict[str, Any],
    client: OutboundClient,
    platforms: Platforms | None = None,
) -> Source:
    """Instantiate the source kind ``kind`` from its clear config (secrets already opened)."""
    options = SOURCE_REGISTRY.validate(kind, config)
    return SOURCE_REGISTRY.plugin(kind)(options, client, platforms or Platforms())


def open_source(
    kind: str,
    config: dict[str, Any],
    *,
    secret_key: str,
    client: OutboundClient,
    platforms: Platforms | None = None,
) -> Source:
    """The fetcher of a stored source, its sealed secrets opened; ConfigError saying what to do
    when they cannot be (the secret key changed, or was not given)."""
    plugin = SOURCE_REGISTRY.plugin(kind)
    options = _opened_options(plugin, kind, secret_key, json.dumps(config, sort_keys=True))
    return plugin(options, client, platforms or Platforms())


@functools.lru_cache(maxsize=4096)
def _opened_options(
    plugin: type[Source], kind: str, secret_key: str, config_json: str
) -> BaseModel:
    """A stored config's options, opened and validated once per distinct config: a worker
    polls the same sources again and again, and validating them cost ~5% of a 304's CPU.

    Keyed by the kind's class too, so a kind registered anew is never given another's options.
    The options are shared by every poll of that config; source kinds only read them.
    """
    clear = SOURCE_REGISTRY.open(kind, json.loads(config_json), secret_key)
    return SOURCE_REGISTRY.validate(kind, clear)


def source_origin(kind: str, config: dict[str, Any]) -> str:
    """The normalised address of a source of ``kind`` with this clear config."""
    options = SOURCE_REGISTRY.validate(kind, config)
    return options_origin(options)


def options_origin(options: BaseModel) -> str:
    """What ``options`` say ``origin()`` is, or their non-secret values as canonical JSON."""
    origin = getattr(options, "origin", None)
    if callable(origin):
        return str(origin())
    hidden = set(secret_fields(type(options)))
    public = {name: value for name, value in dump_clear(options).items() if name not in hidden}
    return json.dumps(public, sort_keys=True, separators=(",", ":"))


def backfill_kinds() -> list[str]:
    """The source kinds of this installation that page back through older posts."""
    return sorted(
        kind for kind, plugin in SOURCE_KINDS.items() if callable(getattr(plugin, "backfill", None))
    )


def ensure_backfillable(source_id: int, kind: str, *, enabled: bool) -> None:
    """Conflict saying why, unless a backfill of this source can start now."""
    able = backfill_kinds()
    if kind not in able:
        which = f"kinds that can: {', '.join(able)}" if able else "no installed kind can yet"
        raise Conflict(
            f"source {source_id} cannot be backfilled: {kind} sources reach only their latest "
            f"posts (what their feed or page shows), not past them; {which}"
        )
    if not enabled:
        raise Conflict(
            f"source {source_id} is paused: resume it (`sigwatch source resume {source_id}`, "
            "or PATCH it with enabled true), then backfill it"
        )
