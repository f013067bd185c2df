"""Fixtures for the channel tests: local receivers, a real SMTP server, messages and a client.

Pointing Apprise at the local fakes: Apprise plugins build their request URLs from a class
attribute holding the service's API base (``NotifyTelegram.notify_url``,
``NotifyDiscord.notify_url``, ``NotifySlack.webhook_url``). The fixtures below replace that one
attribute with the fake's URL through ``monkeypatch``, for the test only; everything else
(URL parsing, payload building, the HTTP call, error handling) is Apprise's own code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram
from chatfakes import FakeDiscord, FakeSlack, FakeTelegram, Receiver, free_port

from sigwatch.delivery.message import AlertMessage, EvidenceItem
from sigwatch.net.client import OutboundClient


@pytest.fixture
def make_message() -> Callable[..., AlertMessage]:
    """Build an AlertMessage with plausible defaults; keywords override fields."""

    def make(**overrides: Any) -> AlertMessage:
        fields: dict[str, Any] = {
            "alert_id": 42,
            "idempotency_key": "alert-42-channel-7",
            "event": "tge",
            "entity": "Example Protocol",
            "title": "Example Protocol announces its token generation event",
            "summary": "The team confirmed the TGE date on its blog and on X.",
            "confidence": 0.87,
            "urgency": "high",
            "url": "https://example.com/alerts/42",
            "evidence": [
                EvidenceItem(
                    source="X",
                    url="https://x.com/example/status/1",
                    author="@example",
                    published_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                    excerpt="TGE on March 3rd.",
                )
            ],
            "created_at": datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC),
            "kind": "new",
        }
        fields.update(overrides)
        return AlertMessage(**fields)

    return make


@pytest.fixture
def start_receiver() -> Iterator[Callable[[Receiver], Receiver]]:
    """Start receivers on 127.0.0.1; all stop after the test."""
    started: list[Receiver] = []

    def start(receiver: Receiver) -> Receiver:
        started.append(receiver.start())
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def telegram(start_receiver, monkeypatch: pytest.MonkeyPatch) -> FakeTelegram:
    """A fake Bot API, with Apprise's Telegram plugin pointed at it."""
    fake = start_receiver(FakeTelegram())
    monkeypatch.setattr(NotifyTelegram, "notify_url", fake.base)
    return fake


@pytest.fixture
def discord(start_receiver, monkeypatch: pytest.MonkeyPatch) -> FakeDiscord:
    """A fake Discord webhook endpoint, with Apprise's Discord plugin pointed at it."""
    fake = start_receiver(FakeDiscord())
    monkeypatch.setattr(NotifyDiscord, "notify_url", fake.base)
    return fake


@pytest.fixture
def slack(start_receiver, monkeypatch: pytest.MonkeyPatch) -> FakeSlack:
    """A fake Slack incoming-webhook endpoint, with Apprise's Slack plugin pointed at it."""
    fake = start_receiver(FakeSlack())
    monkeypatch.setattr(NotifySlack, "webhook_url", fake.base)
    return fake


class SmtpSink:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; yields its sink and port."""
    sink = SmtpSink()
    # aiosmtpd checks it is up by connecting to its port, so port 0 cannot be used directly.
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


@pytest.fixture
async def outbound() -> AsyncIterator[OutboundClient]:
    """An outbound client that may reach 127.0.0.1 (the SSRF guard stays on for all else)."""
    client = OutboundClient(
        timeout_s=2.0,
        max_response_bytes=100_000,
        max_redirects=0,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    )
    yield client
    await client.aclose()
