"""Sending one message through one stored channel: open its sealed config, build, send."""

from __future__ import annotations

from sigwatch.db.models import Channel as ChannelRow
from sigwatch.delivery.channels.base import Channel, DeliveryReceipt
from sigwatch.delivery.channels.registry import build_channel, open_channel_config
from sigwatch.delivery.message import AlertMessage
from sigwatch.net.client import OutboundClient


def open_channel(channel: ChannelRow, *, secret_key: str, client: OutboundClient) -> Channel:
    """The sender of a stored channel, its sealed secrets opened (ConfigError on a changed key)."""
    config = open_channel_config(channel.kind, dict(channel.config), secret_key)
    return build_channel(channel.kind, config, client)


async def send_to_channel(
    channel: ChannelRow, message: AlertMessage, *, secret_key: str, client: OutboundClient
) -> DeliveryReceipt:
    """Send ``message`` through ``channel``; raises Transient/PermanentDeliveryError on failure."""
    return await open_channel(channel, secret_key=secret_key, client=client).send(message)
