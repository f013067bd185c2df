"""``GET /api/v1/posts/export?format=parquet``: each user exports only their sources' posts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from sigwatch.db.posts import NewPost, store_posts
from sigwatch.db.sources import create_source
from sigwatch.export import POST_FIELDS

START = datetime(2025, 3, 1, tzinfo=UTC)


async def add_source_with_posts(sessions, owner_id: int | None, name: str, count: int) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session, owner_id=owner_id, kind="rss", name=name, config={}, origin=name
        )
        await store_posts(
            session,
            source.id,
            [
                NewPost(
                    external_id=f"{name}-{n}",
                    text=f"{name} says {n}",
                    published_at=START + timedelta(hours=n),
                    metrics={"likes": n, "media_urls": [f"https://cdn.example/{name}/{n}.jpg"]},
                )
                for n in range(count)
            ],
        )
        return source.id


@pytest.fixture
async def two_archives(sessions, accounts) -> tuple[int, int]:
    """Alice's source with 3 posts and Bob's with 2."""
    alice = await add_source_with_posts(sessions, accounts.alice.id, "alice", 3)
    bob = await add_source_with_posts(sessions, accounts.bob.id, "bob", 2)
    return alice, bob


async def export(client, account, **params) -> list[dict]:
    answer = await client.get(
        "/api/v1/posts/export", params={"format": "parquet", **params}, headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.apache.parquet"
    assert 'filename="posts.parquet"' in answer.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(answer.content))
    assert table.column_names == list(POST_FIELDS)
    return table.to_pylist()


async def test_each_user_exports_only_their_own_sources_posts(client, accounts, two_archives):
    alice_rows = await export(client, accounts.alice)
    bob_rows = await export(client, accounts.bob)
    admin_rows = await export(client, accounts.admin)

    assert [row["external_id"] for row in alice_rows] == ["alice-2", "alice-1", "alice-0"]
    assert [row["external_id"] for row in bob_rows] == ["bob-1", "bob-0"]
    assert len(admin_rows) == 5
    assert alice_rows[0]["media_urls"] == ["https://cdn.example/alice/2.jpg"]
    assert json.loads(alice_rows[0]["metrics"])["likes"] == 2
    assert alice_rows[0]["published_at"] == START + timedelta(hours=2)


async def test_another_users_source_is_404_not_an_empty_export(client, accounts, two_archives):
    alice_source, _ = two_archives
    answer = await client.get(
        "/api/v1/posts/export",
        params={"format": "parquet", "source_id": alice_source},
        headers=accounts.bob.headers,
    )
    assert answer.status_code == 404


async def test_the_export_filters_by_source_and_time(client, accounts, sessions, two_archives):
    alice_source, _ = two_archives
    rows = await export(
        client,
        accounts.admin,
        source_id=alice_source,
        since="2025-03-01T01:00:00Z",
        until="2025-03-01T02:00:00Z",
    )
    assert [row["external_id"] for row in rows] == ["alice-1"]


async def test_a_large_export_streams_a_row_group_per_thousand_posts(client, accounts, sessions):
    await add_source_with_posts(sessions, accounts.alice.id, "many", 2100)

    answer = await client.get(
        "/api/v1/posts/export", params={"format": "parquet"}, headers=accounts.alice.headers
    )

    parquet = pq.ParquetFile(io.BytesIO(answer.content))
    assert parquet.metadata.num_rows == 2100 and parquet.metadata.num_row_groups == 3


@pytest.mark.parametrize(("fmt", "media"), [("csv", "text/csv"), ("jsonl", "application/x-ndjson")])
async def test_text_formats_are_exported_with_the_same_visibility(
    client, accounts, two_archives, fmt, media
):
    answer = await client.get(
        "/api/v1/posts/export", params={"format": fmt}, headers=accounts.bob.headers
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
    assert "bob-1" in answer.text and "alice" not in answer.text


async def test_an_unknown_format_is_422_naming_it(client, accounts):
    answer = await client.get(
        "/api/v1/posts/export", params={"format": "xlsx"}, headers=accounts.alice.headers
    )
    assert answer.status_code == 422 and "format" in answer.text
