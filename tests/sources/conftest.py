"""Fixtures for source tests: a loopback HTTP server, a client allowed to reach it, the corpus.

The corpus of recorded third-party responses lives outside the repository, in ../shared/corpus;
tests that need it skip with a reason when it is absent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sigwatch.net.client import OutboundClient

CORPUS_DIR = (Path(__file__).parents[2] / "../shared/corpus").resolve()
FEED_KINDS = ("rss", "atom")


@pytest.fixture
async def client() -> AsyncIterator[OutboundClient]:
    """A client with the real guard that may reach 127.0.0.1/32 and nothing else private."""
    async with OutboundClient(
        timeout_s=5.0,
        max_response_bytes=2_000_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as opened:
        yield opened


@pytest.fixture
async def guarded_client() -> AsyncIterator[OutboundClient]:
    """A client with the default guard: no private address, loopback included."""
    async with OutboundClient(
        timeout_s=5.0, max_response_bytes=2_000_000, max_redirects=3, user_agent="sigwatch-test/1"
    ) as opened:
        yield opened


@pytest.fixture
def corpus_dir() -> Path:
    """The shared corpus directory; skips the test when it is not checked out beside the repo."""
    if not (CORPUS_DIR / "manifest.json").is_file():
        pytest.skip(f"corpus not found at {CORPUS_DIR} (expected ../shared/corpus/manifest.json)")
    return CORPUS_DIR


def _feed_entries() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "manifest.json"
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text(encoding="utf-8"))
    return [entry for entry in entries if entry.get("kind") in FEED_KINDS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give each RSS/Atom file of the corpus manifest its own test id (``corpus_feed``)."""
    if "corpus_feed" not in metafunc.fixturenames:
        return
    entries = _feed_entries()
    if entries:
        metafunc.parametrize("corpus_feed", entries, ids=[entry["path"] for entry in entries])
    else:
        # One placeholder, so the corpus_dir fixture reports why nothing ran.
        metafunc.parametrize("corpus_feed", [None], ids=["corpus-missing"])
