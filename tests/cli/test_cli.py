"""The sigwatch command line, driven as a user would, against real local feeds."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from feedbuilder import rss_feed
from sigwatch.auth import hash_api_key
from sigwatch.cli import app
from sigwatch.config import ensure_secret_key, load_settings
from sigwatch.db.api_keys import find_api_key
from sigwatch.db.audit import list_audit
from sigwatch.db.engine import create_engine, session_factory


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def sigwatch(data_dir: Path):
    """Run ``sigwatch ARGS`` in process with its own data directory; returns the result."""
    runner = CliRunner()
    env = {
        "SIGWATCH_DATA_DIR": str(data_dir),
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LOG_LEVEL": "warning",
    }

    def run(*args: str, input: str | None = None, extra_env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), input=input, env={**env, **(extra_env or {})})

    return run


def test_db_upgrade_creates_the_database(sigwatch, data_dir):
    result = sigwatch("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (data_dir / "sigwatch.db").exists()


def test_secret_key_is_generated_once_and_private(data_dir):
    settings = load_settings(data_dir=data_dir)
    first = ensure_secret_key(settings)
    key_file = data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ensure_secret_key(settings) == first and len(first) >= 32


def test_config_show_masks_secrets(sigwatch):
    result = sigwatch(
        "config",
        "show",
        extra_env={
            "SIGWATCH_SECRET_KEY": "super-secret-value-that-is-long-enough-123",
            "SIGWATCH_DATABASE_URL": "postgresql://bob:hunter2@db.example:5432/sigwatch",
        },
    )
    assert result.exit_code == 0, result.output
    assert "super-secret" not in result.output and "hunter2" not in result.output
    assert "********" in result.output
    assert "SIGWATCH_DATA_DIR" in result.output


def test_invalid_setting_says_which_variable(sigwatch):
    result = sigwatch("config", "show", extra_env={"SIGWATCH_DATABASE_URL": "mysql://x"})
    assert result.exit_code == 1
    assert "database_url" in result.output.lower()


def test_user_and_api_key_creation_prints_the_key_last(sigwatch, data_dir):
    created = sigwatch("user", "create", "alice", "--password-stdin", input="correct horse\n")
    assert created.exit_code == 0, created.output
    result = sigwatch("apikey", "create", "--user", "alice", "--name", "laptop")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sw_")

    async def lookup() -> str | None:
        engine = create_engine(load_settings(data_dir=data_dir))
        try:
            async with session_factory(engine)() as session:
                found = await find_api_key(session, hash_api_key(key))
                return found[1].username if found else None
        finally:
            await engine.dispose()

    assert asyncio.run(lookup()) == "alice"


def test_short_password_and_duplicate_user_are_refused(sigwatch):
    short = sigwatch("user", "create", "bob", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "8 characters" in short.output
    assert (
        sigwatch("user", "create", "bob", "--password-stdin", input="long enough\n").exit_code == 0
    )
    again = sigwatch("user", "create", "bob", "--password-stdin", input="long enough\n")
    assert again.exit_code == 1 and "bob" in again.output


def test_api_key_for_unknown_user_says_how_to_create_one(sigwatch):
    result = sigwatch("apikey", "create", "--user", "nobody")
    assert result.exit_code == 1
    assert "sigwatch user create" in result.output


def test_source_add_finds_the_feed_on_a_home_page(sigwatch, server, data_dir):
    feed_url = server.serve("/blog/feed.xml", rss_feed(["hello"]))
    server.serve(
        "/",
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/blog/feed.xml">'
        b"</head><body>home</body></html>",
        headers={"Content-Type": "text/html"},
    )
    result = sigwatch("source", "add", "rss", server.url("/"), "--interval", "60", "--name", "Blog")
    assert result.exit_code == 0, result.output
    assert feed_url in result.output
    listing = sigwatch("source", "list")
    assert "Blog" in listing.output and "60s" in listing.output

    async def audited() -> list[tuple[str, str, str]]:
        engine = create_engine(load_settings(data_dir=data_dir))
        try:
            async with session_factory(engine)() as session:
                page = await list_audit(session, object_type="source")
                return [(row.actor, row.action, row.after["name"]) for row in page.items]
        finally:
            await engine.dispose()

    assert asyncio.run(audited()) == [("cli", "create", "Blog")]


def test_source_add_to_a_private_address_says_how_to_allow_it(sigwatch, server):
    url = server.serve("/feed.xml", rss_feed(["x"]))
    result = sigwatch(
        "source", "add", "rss", url, extra_env={"SIGWATCH_ALLOWED_PRIVATE_NETWORKS": "[]"}
    )
    assert result.exit_code == 1
    assert "SIGWATCH_ALLOW_PRIVATE_URLS" in result.output


def test_opml_import_skips_present_feeds_and_export_round_trips(sigwatch, server, tmp_path):
    urls = [server.serve(f"/f{n}.xml", rss_feed([f"item {n}"])) for n in range(3)]
    outlines = "".join(
        f'<outline type="rss" text="Feed {n}" xmlUrl="{u}"/>' for n, u in enumerate(urls)
    )
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        f'<?xml version="1.0"?><opml version="2.0"><head/><body>{outlines}</body></opml>'
    )

    first = sigwatch("source", "import", str(opml))
    assert first.exit_code == 0, first.output
    assert "imported 3 feeds, skipped 0" in first.output
    second = sigwatch("source", "import", str(opml))
    assert "imported 0 feeds, skipped 3" in second.output

    out = tmp_path / "out.opml"
    exported = sigwatch("source", "export", "--output", str(out))
    assert exported.exit_code == 0, exported.output
    for url in urls:
        assert url in out.read_text()


def test_collect_search_and_export_posts(sigwatch, server, tmp_path):
    server.serve("/a.xml", rss_feed(["Arbitrum mainnet launch date", "Weekly digest"]))
    server.serve("/b.xml", rss_feed(["Binance will list ARB"]))
    for path in ("/a.xml", "/b.xml"):
        assert sigwatch("source", "add", "rss", server.url(path)).exit_code == 0

    collected = sigwatch("collect", "--all")
    assert collected.exit_code == 0, collected.output
    assert "polled 2 sources: 3 new posts" in collected.output

    found = sigwatch("search", "mainnet launch")
    assert "Arbitrum mainnet launch date" in found.output and "1 posts" in found.output

    jsonl = tmp_path / "posts.jsonl"
    assert sigwatch("export", "posts", "--format", "jsonl", "--output", str(jsonl)).exit_code == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {r["title"] for r in records} == {
        "Arbitrum mainnet launch date",
        "Weekly digest",
        "Binance will list ARB",
    }

    as_csv = sigwatch("export", "posts", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 3 and rows[0]["url"].startswith("https://news.example/")


def test_collect_reports_failures_with_exit_status_1(sigwatch, server):
    url = server.serve(
        "/broken.xml", b"<html>not a feed</html>", headers={"Content-Type": "text/html"}
    )
    # Add it with discovery off the table: serve a feed first, then break it.
    server.serve("/broken.xml", rss_feed(["ok"]))
    assert sigwatch("source", "add", "rss", url).exit_code == 0
    server.serve("/broken.xml", b"<html>not a feed</html>", headers={"Content-Type": "text/html"})
    result = sigwatch("collect", "--all")
    assert result.exit_code == 1
    assert "1 failed" in result.output and "source 1:" in result.output


def test_collect_needs_a_selection(sigwatch):
    result = sigwatch("collect")
    assert result.exit_code == 2 and "--source ID" in result.output


def test_export_rejects_an_unknown_format(sigwatch):
    result = sigwatch("export", "posts", "--format", "xml")
    assert result.exit_code == 2 and "csv" in result.output


def test_database_at_unknown_revision_stops_with_what_to_do(sigwatch, data_dir):
    assert sigwatch("db", "upgrade").exit_code == 0

    async def tamper() -> None:
        engine = create_engine(load_settings(data_dir=data_dir))
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
        await engine.dispose()

    asyncio.run(tamper())
    result = sigwatch("source", "list")
    assert result.exit_code == 1
    assert "ffff9999" in result.output and "newer sigwatch" in result.output


def test_module_entry_point_prints_help():
    result = subprocess.run(
        [sys.executable, "-m", "sigwatch", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("up", "worker", "collect", "search", "export"):
        assert command in result.stdout


def test_dead_letters_are_listed_and_requeued(sigwatch, data_dir):
    assert sigwatch("db", "upgrade").exit_code == 0

    async def seed() -> None:
        from sigwatch.db.models import Channel, Delivery, User

        engine = create_engine(load_settings(data_dir=data_dir))
        async with session_factory(engine).begin() as session:
            user = User(username="ops", password_hash="x", role="admin")
            session.add(user)
            await session.flush()
            channel = Channel(owner_id=user.id, kind="webhook", name="hook", config={})
            session.add(channel)
            await session.flush()
            session.add(
                Delivery(
                    channel_id=channel.id,
                    idempotency_key="k1",
                    status="dead",
                    attempts=8,
                    last_error="HTTP 410 Gone from https://hooks.example",
                )
            )
        await engine.dispose()

    asyncio.run(seed())
    listed = sigwatch("deliveries", "list")
    assert listed.exit_code == 0 and "410 Gone" in listed.output and "1 deliveries" in listed.output
    requeued = sigwatch("deliveries", "requeue", "--all-dead")
    assert requeued.exit_code == 0 and "requeued 1" in requeued.output
    assert "0 deliveries" in sigwatch("deliveries", "list").output
    assert sigwatch("deliveries", "requeue").exit_code == 2
