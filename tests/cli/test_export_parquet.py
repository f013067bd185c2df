"""``sigwatch export posts --format parquet``: read back with pyarrow, filtered, in row groups."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sigwatch.config import load_settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.posts import NewPost, store_posts
from sigwatch.db.sources import create_source
from sigwatch.export import POST_FIELDS

START = datetime(2025, 3, 1, tzinfo=UTC)


def archive(data_dir: Path, counts: dict[str, int]) -> None:
    """Sources named as ``counts`` says, with that many posts each, an hour apart from START."""

    async def fill() -> None:
        engine = create_engine(load_settings(data_dir=data_dir))
        try:
            async with session_factory(engine).begin() as session:
                for name, count in counts.items():
                    source = await create_source(
                        session, owner_id=None, kind="rss", name=name, config={}, origin=name
                    )
                    posts = [
                        NewPost(
                            external_id=f"{name}-{n}",
                            text=f"{name} post {n}",
                            url=f"https://{name}.example/{n}",
                            author="@someone",
                            published_at=START + timedelta(hours=n),
                            metrics={"likes": n, "media_urls": [f"https://cdn.example/{n}.jpg"]},
                        )
                        for n in range(count)
                    ]
                    await store_posts(session, source.id, posts)
        finally:
            await engine.dispose()

    asyncio.run(fill())


@pytest.fixture
def data_dir(cli, tmp_path: Path) -> Path:
    assert cli("db", "upgrade").exit_code == 0
    return tmp_path / "data"


def test_parquet_export_reads_back_with_every_column(cli, data_dir, tmp_path):
    archive(data_dir, {"alpha": 3, "beta": 2})
    out = tmp_path / "posts.parquet"

    result = cli("export", "posts", "--format", "parquet", "--output", str(out))

    assert result.exit_code == 0, result.output
    assert f"exported 5 posts to {out}" in result.stderr
    table = pq.read_table(out)
    assert table.column_names == list(POST_FIELDS)
    assert str(table.schema.field("published_at").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("media_urls").type) == "list<element: string>"
    rows = table.to_pylist()
    # Newest first; posts published at the same time, the last stored first.
    assert [row["external_id"] for row in rows] == [
        "alpha-2",
        "beta-1",
        "alpha-1",
        "beta-0",
        "alpha-0",
    ]
    first = rows[0]
    assert first["published_at"] == START + timedelta(hours=2)
    assert first["media_urls"] == ["https://cdn.example/2.jpg"]
    assert json.loads(first["metrics"]) == {"likes": 2, "media_urls": ["https://cdn.example/2.jpg"]}
    assert first["url"] == "https://alpha.example/2" and first["text"] == "alpha post 2"


def test_parquet_is_written_a_row_group_per_thousand_posts(cli, data_dir, tmp_path):
    archive(data_dir, {"alpha": 2500})
    out = tmp_path / "posts.parquet"

    assert cli("export", "posts", "--format", "parquet", "-o", str(out)).exit_code == 0

    parquet = pq.ParquetFile(out)
    assert parquet.metadata.num_rows == 2500
    assert [parquet.metadata.row_group(i).num_rows for i in range(3)] == [1000, 1000, 500]


def test_export_filters_by_source_and_publication_time(cli, data_dir, tmp_path):
    archive(data_dir, {"alpha": 10, "beta": 10})
    out = tmp_path / "posts.parquet"

    result = cli(
        "export",
        "posts",
        "--format",
        "parquet",
        "--output",
        str(out),
        "--source",
        "2",
        "--since",
        "2025-03-01T03:00:00",
        "--until",
        "2025-03-01T06:00:00+00:00",
    )

    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert [row["external_id"] for row in rows] == ["beta-5", "beta-4", "beta-3"]
    assert {row["source_id"] for row in rows} == {2}


def test_text_exports_carry_metrics_and_media_urls_too(cli, data_dir):
    archive(data_dir, {"alpha": 1})

    result = cli("export", "posts", "--format", "jsonl")

    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["media_urls"] == ["https://cdn.example/0.jpg"]
    assert record["metrics"]["likes"] == 0


def test_export_of_an_unknown_source_exits_1_and_says_how_to_list_them(cli, data_dir):
    result = cli("export", "posts", "--format", "parquet", "-o", "x.parquet", "--source", "9")
    assert result.exit_code == 1
    assert "no source with id 9" in result.stderr and "sigwatch source list" in result.stderr
