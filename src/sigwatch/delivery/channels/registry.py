"""Every channel kind, by name: adding a kind is one module and one line here.

The channels share :class:`sigwatch.kinds.KindRegistry` with the source kinds: it validates a
channel's config, seals its secret options at rest, opens them for the sender and masks them
for display. The functions below are that registry's operations named for channels.
"""

from __future__ import annotations

from typing import Any

from sigwatch.delivery.channels.apprise import AppriseChannel
from sigwatch.delivery.channels.base import Channel
from sigwatch.delivery.channels.webhook import WebhookChannel
from sigwatch.kinds import KindRegistry
from sigwatch.net.client import OutboundClient

CHANNEL_KINDS: dict[str, type[Channel]] = {
    WebhookChannel.kind: WebhookChannel,
    AppriseChannel.kind: AppriseChannel,
}
CHANNEL_REGISTRY: KindRegistry[Channel] = KindRegistry("channel", CHANNEL_KINDS)


def validate_channel_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The channel's config normalised by its kind's options, secrets in clear; or InvalidOptions.

    The error names each bad field but never echoes a value, since values may be secrets.
    """
    return CHANNEL_REGISTRY.clear_config(kind, config)


def build_channel(kind: str, config: dict[str, Any], client: OutboundClient) -> Channel:
    """Instantiate the channel kind ``kind`` from its config (secrets already opened)."""
    return CHANNEL_REGISTRY.plugin(kind)(CHANNEL_REGISTRY.validate(kind, config), client)


def channel_secret_fields(kind: str) -> tuple[str, ...]:
    """The config fields of ``kind`` that hold secrets."""
    return CHANNEL_REGISTRY.secret_fields(kind)


def seal_channel_config(kind: str, config: dict[str, Any], secret_key: str) -> dict[str, Any]:
    """``config`` with each secret field encrypted under ``secret_key``, ready to store."""
    return CHANNEL_REGISTRY.seal(kind, config, secret_key)


def open_channel_config(kind: str, config: dict[str, Any], secret_key: str) -> dict[str, Any]:
    """A stored ``config`` with its secret fields decrypted; ConfigError on a changed key."""
    return CHANNEL_REGISTRY.open(kind, config, secret_key)


def mask_channel_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A clear ``config`` with its secret fields masked, for showing to users."""
    return CHANNEL_REGISTRY.mask(kind, config)
