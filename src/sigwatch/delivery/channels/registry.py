"""Every channel kind, by name: adding a kind is one module and one line here.

Besides building channels, the registry knows which config fields of each kind are secrets, so
the rest of sigwatch can encrypt them at rest and mask them when shown without knowing the kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from sigwatch.delivery.channels.apprise import AppriseChannel
from sigwatch.delivery.channels.base import Channel, secret_fields
from sigwatch.delivery.channels.webhook import WebhookChannel
from sigwatch.errors import ConfigError
from sigwatch.net.client import OutboundClient
from sigwatch.secrets import decrypt_secret, encrypt_secret, mask_secret

CHANNEL_KINDS: dict[str, type[Channel]] = {
    WebhookChannel.kind: WebhookChannel,
    AppriseChannel.kind: AppriseChannel,
}


def validate_channel_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The channel's config normalised by its kind's options, secrets in clear; or ConfigError.

    The error names each bad field but never echoes a value, since values may be secrets.
    """
    options = _options(kind, config)
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in options.model_dump().items()
    }


def build_channel(kind: str, config: dict[str, Any], client: OutboundClient) -> Channel:
    """Instantiate the channel kind ``kind`` from its config (secrets already decrypted)."""
    return _factory(kind)(_options(kind, config), client)


def channel_secret_fields(kind: str) -> tuple[str, ...]:
    """The config fields of ``kind`` that hold secrets."""
    return secret_fields(_factory(kind).Options)


def seal_channel_config(kind: str, config: dict[str, Any], secret_key: str) -> dict[str, Any]:
    """``config`` with each secret field encrypted under ``secret_key``, ready to store."""
    return _map_secrets(kind, config, lambda value: encrypt_secret(secret_key, value))


def open_channel_config(kind: str, config: dict[str, Any], secret_key: str) -> dict[str, Any]:
    """A stored ``config`` with its secret fields decrypted; ConfigError on a changed key."""
    return _map_secrets(kind, config, lambda value: decrypt_secret(secret_key, value))


def mask_channel_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A clear ``config`` with its secret fields masked, for showing to users."""
    return _map_secrets(kind, config, mask_secret)


def _map_secrets(kind: str, config: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    secret = set(channel_secret_fields(kind))
    return {
        name: change(value) if name in secret and isinstance(value, str) else value
        for name, value in config.items()
    }


def _options(kind: str, config: dict[str, Any]) -> BaseModel:
    factory = _factory(kind)
    try:
        return factory.Options.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'config'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"invalid {kind} channel config: {problems}") from None


def _factory(kind: str) -> type[Channel]:
    try:
        return CHANNEL_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(CHANNEL_KINDS))
        raise ConfigError(f"unknown channel kind {kind!r}; known kinds: {known}") from None
