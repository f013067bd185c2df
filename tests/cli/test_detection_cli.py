"""Detection from the command line: watchlist import/export, analyze offline, backtest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedbuilder import rss_feed
from sigwatch.cli import app

WATCHLIST = """\
entities:
  - name: Helix Network
    aliases: [Helix]
    symbols: [HLX]
    tags: [l2]
  - name: Nebula Protocol
    symbols: [NEB]
rules: {}
"""
AIRDROP = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"
MAINNET = "Nebula Protocol mainnet launch is live: the Nebula Protocol mainnet is now open"


@pytest.fixture
def sigwatch(tmp_path: Path):
    runner = CliRunner()
    env = {
        "SIGWATCH_DATA_DIR": str(tmp_path / "data"),
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LOG_LEVEL": "warning",
    }

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env=env)

    return run


@pytest.fixture
def watchlist_file(tmp_path: Path) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text(WATCHLIST)
    return path


def test_watchlist_import_is_idempotent_and_exports_back(sigwatch, watchlist_file, tmp_path):
    first = sigwatch("watchlist", "import", str(watchlist_file))
    assert first.exit_code == 0, first.output
    assert "2 entities added, 0 updated" in first.output
    again = sigwatch("watchlist", "import", str(watchlist_file))
    assert "0 entities added, 0 updated" in again.output
    out = tmp_path / "out.yaml"
    assert sigwatch("watchlist", "export", "-o", str(out)).exit_code == 0
    assert "Helix Network" in out.read_text() and "HLX" in out.read_text()


def test_invalid_watchlist_names_the_line_and_imports_nothing(sigwatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities:\n  - name: Fine\n  - name: Broken\n    colour: red\n")
    result = sigwatch("watchlist", "import", str(bad))
    assert result.exit_code == 1
    assert "line 4" in result.output and "colour" in result.output
    exported = sigwatch("watchlist", "export")
    assert "Fine" not in exported.stdout


def test_analyze_reads_jsonl_and_writes_detections(sigwatch, watchlist_file):
    lines = "\n".join(
        json.dumps(post)
        for post in (
            {"id": "a", "text": AIRDROP, "published": "2026-03-01T10:00:00Z"},
            {"id": "b", "text": "nothing to see here"},
        )
    )
    result = sigwatch("analyze", "--watchlist", str(watchlist_file), input=lines + "\nnot json\n")
    assert result.exit_code == 0, result.output
    detections = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(d["id"], d["entity"], d["event"]) for d in detections] == [
        ("a", "Helix Network", "airdrop")
    ]
    assert set(detections[0]) >= {"confidence", "urgency", "event_time", "spans", "features"}


def test_analyze_with_a_missing_watchlist_says_so(sigwatch, tmp_path):
    result = sigwatch("analyze", "--watchlist", str(tmp_path / "none.yaml"))
    assert result.exit_code == 1 and "--watchlist" in result.output


def test_backtest_reports_what_would_have_alerted(sigwatch, watchlist_file, server):
    assert sigwatch("watchlist", "import", str(watchlist_file)).exit_code == 0
    server.serve("/a.xml", rss_feed([AIRDROP, "Weekly market digest", MAINNET]))
    server.serve("/b.xml", rss_feed([AIRDROP + " today"]))
    for path in ("/a.xml", "/b.xml"):
        assert sigwatch("source", "add", "rss", server.url(path)).exit_code == 0
    assert sigwatch("collect", "--all").exit_code == 0

    result = sigwatch("backtest")
    assert result.exit_code == 0, result.output
    assert "4 posts replayed, 2 alerts would have fired" in result.output
    assert "airdrop 1" in result.output and "mainnet 1" in result.output

    narrowed = sigwatch("backtest", "--since", "2030-01-01")
    assert "0 posts replayed, 0 alerts" in narrowed.output
