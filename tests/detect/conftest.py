"""Fixtures for detection tests: a small watchlist written here, and the shared labelled corpus.

The labelled corpus lives outside the repository in ../shared/corpus/labeled; tests that need it
skip with a reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detect.samples import LABELLED_DIR, WATCHLIST_YAML
from sigwatch.detect import DetectionIndex, build_index, load_watchlist_yaml


@pytest.fixture(scope="session")
def index() -> DetectionIndex:
    """The test watchlist compiled once for all detection tests."""
    return build_index(load_watchlist_yaml(WATCHLIST_YAML))


@pytest.fixture
def labelled_dir() -> Path:
    """The shared labelled corpus; skips the test when it is not checked out beside the repo."""
    if not (LABELLED_DIR / "dev.jsonl").is_file():
        pytest.skip(f"labelled corpus not found at {LABELLED_DIR}")
    return LABELLED_DIR
