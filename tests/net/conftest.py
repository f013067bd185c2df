"""Fixtures for the outbound client tests: real loopback HTTP servers and clients around them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sigwatch.net.client import OutboundClient


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., OutboundClient]]:
    """Build clients with small test limits (keywords override them); all close after the test."""
    made: list[OutboundClient] = []

    def make(**overrides: Any) -> OutboundClient:
        options: dict[str, Any] = {
            "timeout_s": 5.0,
            "max_response_bytes": 1_000_000,
            "max_redirects": 3,
            "user_agent": "sigwatch-test/1",
        }
        options.update(overrides)
        made.append(OutboundClient(**options))
        return made[-1]

    yield make
    for opened in made:
        await opened.aclose()


@pytest.fixture
def client(make_client: Callable[..., OutboundClient]) -> OutboundClient:
    """A client that may reach 127.0.0.1 (and no other private address)."""
    return make_client(allowed_networks=["127.0.0.1/32"])
