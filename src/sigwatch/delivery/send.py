"""Sending one message through one stored channel: open its sealed config, build, send."""

from __future__ import annotations

from sigwatch.db.models import Channel as ChannelRow
from sigwatch.delivery.channels.base import Channel, DeliveryReceipt
from sigwatch.delivery.channels.registry import build_channel, open_channel_config
from sigwatch.delivery.message import AlertMessage
from sigwatch.errors import InvalidOptions, PermanentDeliveryError
from sigwatch.net.client import OutboundClient


def open_channel(channel: ChannelRow, *, secret_key: str, client: OutboundClient) -> Channel:
    """The sender of a stored channel, its sealed secrets opened.

    ConfigError when the secrets cannot be opened (the operator changed the secret key);
    PermanentDeliveryError when the stored options no longer pass their kind's checks (a scheme
    refused since it was stored, say): only an edit of the channel can fix that.
    """
    config = open_channel_config(channel.kind, dict(channel.config), secret_key)
    try:
        return build_channel(channel.kind, config, client)
    except InvalidOptions as exc:
        # The options were stored, not just sent: the user's input error of the day they were
        # given is, at send time, a channel that cannot deliver until it is edited.
        raise PermanentDeliveryError(
            f"this channel's stored options are no longer accepted ({exc.message}); "
            "edit the channel to fix them"
        ) from None


async def send_to_channel(
    channel: ChannelRow, message: AlertMessage, *, secret_key: str, client: OutboundClient
) -> DeliveryReceipt:
    """Send ``message`` through ``channel``; raises Transient/PermanentDeliveryError on failure."""
    return await open_channel(channel, secret_key=secret_key, client=client).send(message)
