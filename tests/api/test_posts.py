"""The post archive over HTTP: filters, newest-first cursor pages, and owner scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sigwatch.db.pagination import encode_cursor
from sigwatch.db.posts import NewPost, store_posts

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def make_source(client, headers, name="feed"):
    response = await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": name, "config": {"url": "https://news.example/feed"}},
        headers=headers,
    )
    assert response.status_code == 201
    return response.json()["id"]


async def store(sessions, source_id, count, *, author="reporter", offset=0):
    posts = [
        NewPost(
            external_id=f"{source_id}-{n}",
            title=f"headline {n}",
            text=f"token launch number {n}" if n % 2 else f"quiet day {n}",
            author=author,
            url=f"https://news.example/{n}",
            published_at=T0 + timedelta(hours=offset + n),
        )
        for n in range(count)
    ]
    async with sessions.begin() as session:
        await store_posts(session, source_id, posts)


@pytest.fixture
async def alice_posts(client, accounts, sessions):
    """Alice's source with 5 posts an hour apart, and Bob's source with 2."""
    alices = await make_source(client, accounts.alice.headers)
    bobs = await make_source(client, accounts.bob.headers)
    await store(sessions, alices, 5)
    await store(sessions, bobs, 2, author="someone else", offset=100)
    return alices, bobs


async def test_posts_are_listed_newest_first_in_cursor_pages(client, accounts, alice_posts):
    headers = accounts.alice.headers
    seen = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/posts", params=params, headers=headers)).json()
        seen += [post["title"] for post in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"headline {n}" for n in (4, 3, 2, 1, 0)]


async def test_posts_filter_by_source_author_time_and_words(client, accounts, alice_posts):
    alices, _ = alice_posts
    admin = accounts.admin.headers

    async def titles(**params):
        response = await client.get("/api/v1/posts", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [post["title"] for post in response.json()["items"]]

    assert len(await titles()) == 7
    assert len(await titles(source_id=alices)) == 5
    assert len(await titles(author="someone else")) == 2
    since = (T0 + timedelta(hours=3)).isoformat()
    until = (T0 + timedelta(hours=4)).isoformat()
    assert await titles(source_id=alices, since=since) == ["headline 4", "headline 3"]
    assert await titles(source_id=alices, since=since, until=until) == ["headline 3"]
    # A time without a zone is UTC.
    assert await titles(source_id=alices, since="2026-03-01T16:00:00") == ["headline 4"]
    assert await titles(source_id=alices, q="launch") == ["headline 3", "headline 1"]


async def test_users_see_only_posts_of_their_own_sources(client, accounts, alice_posts, sessions):
    alices, bobs = alice_posts
    headers = accounts.alice.headers
    mine = (await client.get("/api/v1/posts", headers=headers)).json()["items"]
    assert {post["source_id"] for post in mine} == {alices}

    others = await client.get("/api/v1/posts", params={"source_id": bobs}, headers=headers)
    assert others.status_code == 404

    bobs_post = (await client.get("/api/v1/posts", headers=accounts.bob.headers)).json()["items"][0]
    assert (
        await client.get(f"/api/v1/posts/{bobs_post['id']}", headers=headers)
    ).status_code == 404
    own = await client.get(f"/api/v1/posts/{mine[0]['id']}", headers=headers)
    assert own.status_code == 200 and "raw" in own.json() and "html" in own.json()


async def test_bad_post_queries_are_422_naming_the_parameter(client, accounts):
    for query, field in (
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("since=not-a-date", "since"),
        ("until=2026-13-45", "until"),
        ("cursor=%25%25%25", "cursor"),
        ("cursor=WzFd", "cursor"),  # [1]: a cursor of another list
        ("source_id=abc", "source_id"),
        ("source_id=99999999999999", "source_id"),
        ("author=a%00b", "author"),
        ("q=a%00b", "q"),
    ):
        response = await client.get(f"/api/v1/posts?{query}", headers=accounts.alice.headers)
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", field], query


async def test_unknown_post_id_is_404_and_impossible_ones_422(client, accounts):
    headers = accounts.admin.headers
    assert (await client.get("/api/v1/posts/123456", headers=headers)).status_code == 404
    for post_id in ("0", "abc", str(2**64)):
        response = await client.get(f"/api/v1/posts/{post_id}", headers=headers)
        assert response.status_code == 422, post_id


async def test_forged_post_cursors_are_422_not_500(client, accounts):
    for cursor in (
        encode_cursor("2026-03-01T12:00:00", 5),  # a time without a zone
        encode_cursor("2026-03-01T12:00:00+00:00", 2**70),  # beyond any id
        encode_cursor("2026-03-01T12:00:00+00:00", 1e300),  # not an integer
    ):
        response = await client.get(
            "/api/v1/posts", params={"cursor": cursor}, headers=accounts.admin.headers
        )
        assert response.status_code == 422, cursor
        assert response.json()["detail"][0]["loc"] == ["query", "cursor"]
