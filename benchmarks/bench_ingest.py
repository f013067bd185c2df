"""Ingest throughput: the real store path against a bare executemany, on SQLite and PostgreSQL.

Stores N posts through ``sigwatch.db.posts.store_posts`` (dedup, change detection and id reporting
included) in poll-sized batches, and in the same run inserts the same rows with the driver's bare
``executemany`` into the same table under a second source. Chunks alternate between the two paths
so both see the same table size. PostgreSQL runs when SIGWATCH_TEST_DATABASE_URL (or
SIGWATCH_BENCH_DATABASE_URL) is set.

As in a worker, a :class:`~sigwatch.worker.search_index.SearchIndexMerger` merges PostgreSQL's
pending full-text entries beside the inserts (told after every committed chunk of either path,
since both write the same index). The store's time includes a last merge after its final chunk,
so its figure is of posts stored and indexed.

    .venv/bin/python benchmarks/bench_ingest.py [--posts 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from sigwatch.config import load_settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Source
from sigwatch.db.posts import NewPost, _row, search_terms, store_posts
from sigwatch.worker.search_index import SearchIndexMerger

COLUMNS = (
    "source_id",
    "external_id",
    "url",
    "author",
    "title",
    "text",
    "html",
    "published_at",
    "collected_at",
    "content_hash",
    "metrics",
    "raw",
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_posts(n: int) -> list[NewPost]:
    """Posts shaped like news items: a title, a paragraph, a link, an author."""
    return [
        NewPost(
            external_id=f"https://news.example/article/{i}",
            title=f"Project {i % 977} announces mainnet date and token details, part {i}",
            text=(
                f"Item {i}: the team behind project {i % 977} said on Tuesday that its mainnet "
                "launch is scheduled for next month, with an airdrop for early users and a "
                "listing on major exchanges expected shortly after the token generation event."
            ),
            html=f"<p>Item {i}: the team behind project {i % 977} said on Tuesday …</p>",
            url=f"https://news.example/article/{i}",
            author=f"reporter{i % 50}",
            published_at=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]


async def bare_insert_sqlite(connection: Any, rows: list[tuple[Any, ...]]) -> None:
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO posts ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    await connection.executemany(sql, rows)
    await connection.commit()


async def bare_insert_postgres(connection: Any, rows: list[tuple[Any, ...]]) -> None:
    # The same full-text column the store writes, from the same words.
    placeholders = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
    terms = f"${len(COLUMNS) + 1}"
    sql = (
        f"INSERT INTO posts ({', '.join(COLUMNS)}, search_vector) "
        f"VALUES ({placeholders}, array_to_tsvector({terms}::text[]))"
    )
    await connection.executemany(sql, rows)


def bare_rows(dialect: str, source_id: int, posts: list[NewPost]) -> list[tuple[Any, ...]]:
    """The same values the store writes, in the driver's own parameter types."""
    collected = datetime.now(UTC)
    out = []
    for post in posts:
        row = _row(source_id, post, collected, None)  # the store side scores no sentiment either
        values = []
        for name in COLUMNS:
            value = row[name]
            if name in ("metrics", "raw"):
                value = json.dumps(value)
            elif isinstance(value, datetime) and dialect == "sqlite":
                value = value.replace(tzinfo=None).isoformat(sep=" ")
            values.append(value)
        if dialect == "postgresql":
            values.append(search_terms(f"{post.title or ''} {post.text}"))
        out.append(tuple(values))
    return out


async def run(database_url: str | None, n: int, batch: int, data_dir: Path) -> dict[str, float]:
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    dialect = engine.dialect.name
    async with sessions.begin() as session:
        store_source, bare_source = (
            Source(kind="rss", name="store"),
            Source(kind="rss", name="bare"),
        )
        session.add_all([store_source, bare_source])
        await session.flush()
        store_id, bare_id = store_source.id, bare_source.id

    posts = make_posts(n)
    if dialect == "sqlite":
        import aiosqlite

        raw = await aiosqlite.connect(str(data_dir / "sigwatch.db"))
        await raw.execute("PRAGMA journal_mode=WAL")
        await raw.execute("PRAGMA synchronous=NORMAL")
        bare_insert = bare_insert_sqlite
    else:
        raw = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))  # type: ignore[union-attr]
        bare_insert = bare_insert_postgres

    merger = SearchIndexMerger(sessions)
    stop_merging = asyncio.Event()
    merging = asyncio.create_task(merger.run(stop_merging))
    store_s = bare_s = 0.0
    new_total = 0
    for start in range(0, n, batch):
        chunk = posts[start : start + batch]
        began = time.perf_counter()
        async with sessions.begin() as session:
            result = await store_posts(session, store_id, chunk)
        merger.posts_stored()
        store_s += time.perf_counter() - began
        new_total += len(result.new_ids)

        began = time.perf_counter()
        rows = bare_rows(dialect, bare_id, chunk)
        await bare_insert(raw, rows)
        merger.posts_stored()
        bare_s += time.perf_counter() - began
    stop_merging.set()
    await merging
    began = time.perf_counter()
    await merger.merge()  # what is left pending of the last chunks: indexed, and timed
    store_s += time.perf_counter() - began
    assert new_total == n, f"store reported {new_total} new posts, expected {n}"

    began = time.perf_counter()
    unchanged = 0
    for start in range(0, n, batch):
        async with sessions.begin() as session:
            result = await store_posts(session, store_id, posts[start : start + batch])
        unchanged += result.unchanged
    repoll_s = time.perf_counter() - began
    assert unchanged == n

    await raw.close()
    await engine.dispose()
    return {
        "posts_per_s": n / store_s,
        "bare_posts_per_s": n / bare_s,
        "ratio": bare_s / store_s,
        "repoll_posts_per_s": n / repoll_s,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    figures: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        result = await run(None, args.posts, args.batch, Path(tmp))
    print(
        f"sqlite:   store {result['posts_per_s']:>9,.0f} posts/s   bare executemany "
        f"{result['bare_posts_per_s']:>9,.0f} posts/s   ratio {result['ratio']:.2f}   "
        f"re-poll (all duplicates) {result['repoll_posts_per_s']:>9,.0f} posts/s"
    )
    figures["sqlite_posts_per_s"] = round(result["posts_per_s"])
    figures["sqlite_ratio"] = round(result["ratio"], 3)

    base = os.environ.get("SIGWATCH_BENCH_DATABASE_URL") or os.environ.get(
        "SIGWATCH_TEST_DATABASE_URL"
    )
    figures["postgres_posts_per_s"] = None
    figures["postgres_ratio"] = None
    if base:
        base = "postgresql+asyncpg://" + base.split("://", 1)[1]
        name = f"sigwatch_bench_{uuid.uuid4().hex[:8]}"
        admin_dsn = base.replace("postgresql+asyncpg", "postgresql")
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"{base.rpartition('/')[0]}/{name}"
                result = await run(url, args.posts, args.batch, Path(tmp))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        print(
            f"postgres: store {result['posts_per_s']:>9,.0f} posts/s   bare executemany "
            f"{result['bare_posts_per_s']:>9,.0f} posts/s   ratio {result['ratio']:.2f}   "
            f"re-poll (all duplicates) {result['repoll_posts_per_s']:>9,.0f} posts/s"
        )
        figures["postgres_posts_per_s"] = round(result["posts_per_s"])
        figures["postgres_ratio"] = round(result["ratio"], 3)
    else:
        print("postgres: skipped (set SIGWATCH_TEST_DATABASE_URL to measure it)")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
