"""The post store: idempotent batches, updates, listing, cursor pagination and full-text search."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.models import Source
from sigwatch.db.posts import NewPost, list_posts, merge_pending_search_entries, store_posts
from sigwatch.db.sources import count_posts
from sigwatch.errors import InvalidInput

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def post(n: int, text: str = "", **fields: object) -> NewPost:
    return NewPost(
        external_id=f"id-{n}",
        title=f"title {n}",
        text=text or f"body of post {n}",
        url=f"https://news.example/{n}",
        published_at=T0 + timedelta(minutes=n),
        **fields,  # type: ignore[arg-type]
    )


async def store(sessions: async_sessionmaker[AsyncSession], source_id: int, posts, **kw):
    async with sessions.begin() as session:
        return await store_posts(session, source_id, posts, **kw)


async def test_store_reports_new_posts_and_repolled_posts_are_not_stored_twice(sessions, source_id):
    first = await store(sessions, source_id, [post(1), post(2), post(3)])
    assert len(first.new_ids) == 3 and first.updated_ids == [] and first.unchanged == 0

    again = await store(sessions, source_id, [post(1), post(2), post(3), post(4)])
    assert len(again.new_ids) == 1 and again.updated_ids == [] and again.unchanged == 3
    async with sessions() as session:
        assert await count_posts(session, [source_id]) == {source_id: 4}


async def test_changed_post_is_updated_in_place(sessions, source_id):
    first = await store(sessions, source_id, [post(1), post(2)])
    changed = await store(sessions, source_id, [post(1, text="corrected body"), post(2)])
    assert changed.new_ids == [] and changed.unchanged == 1
    assert changed.updated_ids == [first.new_ids[0]]
    async with sessions() as session:
        page = await list_posts(session, owner_id=None, q="corrected")
    assert [p.text for p in page.items] == ["corrected body"]


async def test_duplicate_ids_within_one_batch_keep_the_last(sessions, source_id):
    result = await store(sessions, source_id, [post(1, text="old"), post(1, text="new")])
    assert len(result.new_ids) == 1
    async with sessions() as session:
        page = await list_posts(session, owner_id=None)
    assert [p.text for p in page.items] == ["new"]


async def test_same_external_id_under_two_sources_is_two_posts(sessions, source_id):
    async with sessions.begin() as session:
        other = Source(kind="rss", name="other", config={"url": "https://other.example/feed"})
        session.add(other)
        await session.flush()
        other_id = other.id
    await store(sessions, source_id, [post(1)])
    result = await store(sessions, other_id, [post(1)])
    assert len(result.new_ids) == 1


async def test_large_batch_spans_several_statements(sessions, source_id):
    result = await store(sessions, source_id, [post(n) for n in range(1234)])
    assert len(result.new_ids) == 1234 and len(set(result.new_ids)) == 1234
    again = await store(sessions, source_id, [post(n) for n in range(1234)])
    assert again.new_ids == [] and again.unchanged == 1234


async def test_post_without_date_sorts_by_collection_time(sessions, source_id):
    undated = NewPost(external_id="undated", text="no date here")
    collected = datetime(2026, 5, 5, tzinfo=UTC)
    await store(sessions, source_id, [undated], collected_at=collected)
    async with sessions() as session:
        page = await list_posts(session, owner_id=None)
    assert page.items[0].published_at == collected


async def test_list_is_newest_first_with_a_cursor_that_walks_every_post(sessions, source_id):
    await store(sessions, source_id, [post(n) for n in range(25)])
    seen: list[str] = []
    cursor = None
    async with sessions() as session:
        while True:
            page = await list_posts(session, owner_id=None, cursor=cursor, limit=10)
            seen += [p.external_id for p in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == [f"id-{n}" for n in range(24, -1, -1)]


async def test_filters_by_author_and_time_window(sessions, source_id):
    await store(sessions, source_id, [post(1, author="alice"), post(2, author="bob"), post(3)])
    async with sessions() as session:
        by_author = await list_posts(session, owner_id=None, author="alice")
        window = await list_posts(
            session,
            owner_id=None,
            since=T0 + timedelta(minutes=2),
            until=T0 + timedelta(minutes=3),
        )
    assert [p.external_id for p in by_author.items] == ["id-1"]
    assert [p.external_id for p in window.items] == ["id-2"]


async def test_full_text_search_matches_every_word_in_title_or_text(sessions, source_id):
    await store(
        sessions,
        source_id,
        [
            post(1, text="Arbitrum announces token generation event"),
            post(2, text="Binance will list the token next week"),
            post(3, text="Weather is nice"),
        ],
    )
    async with sessions() as session:
        token = await list_posts(session, owner_id=None, q="token")
        both = await list_posts(session, owner_id=None, q="TOKEN arbitrum")
        title = await list_posts(session, owner_id=None, q="title 3")
        nothing = await list_posts(session, owner_id=None, q="solana")
    assert {p.external_id for p in token.items} == {"id-1", "id-2"}
    assert [p.external_id for p in both.items] == ["id-1"]
    assert [p.external_id for p in title.items] == ["id-3"]
    assert nothing.items == []


async def test_search_syntax_characters_are_plain_words(sessions, source_id):
    await store(sessions, source_id, [post(1, text='quote " and NEAR(x) OR star*')])
    async with sessions() as session:
        page = await list_posts(session, owner_id=None, q='"NEAR(x) OR*')
    assert [p.external_id for p in page.items] == ["id-1"]


async def test_search_without_words_and_bad_cursor_name_the_field(sessions, source_id):
    async with sessions() as session:
        with pytest.raises(InvalidInput) as empty:
            await list_posts(session, owner_id=None, q="  !! ")
        with pytest.raises(InvalidInput) as cursor:
            await list_posts(session, owner_id=None, cursor="not-a-cursor")
    assert empty.value.field == "q"
    assert cursor.value.field == "cursor"


async def test_search_sees_updated_text_and_forgets_the_old(sessions, source_id):
    await store(sessions, source_id, [post(1, text="mainnet launch soon")])
    await store(sessions, source_id, [post(1, text="airdrop claim open")])
    async with sessions() as session:
        old = await list_posts(session, owner_id=None, q="mainnet")
        new = await list_posts(session, owner_id=None, q="airdrop")
    assert old.items == [] and len(new.items) == 1


async def test_punctuation_and_underscores_separate_search_words(sessions, source_id):
    await store(sessions, source_id, [post(1, text="snake_case v2.0 e-mail: USDT/ETH (beta)!")])
    async with sessions() as session:
        for q in ("snake", "CASE", "v2", "0", "mail", "eth", "beta", "usdt", "snake_case"):
            page = await list_posts(session, owner_id=None, q=q)
            assert [p.external_id for p in page.items] == ["id-1"], q
        for q in ("snakecase", "v20", "email", "v"):
            page = await list_posts(session, owner_id=None, q=q)
            assert page.items == [], q


async def test_accented_and_cased_words_are_found_folded(sessions, source_id):
    await store(sessions, source_id, [post(1, text="Café Élan: ÜBER straße")])
    async with sessions() as session:
        for q in ("cafe", "CAFÉ", "elan", "uber", "über"):
            page = await list_posts(session, owner_id=None, q=q)
            assert [p.external_id for p in page.items] == ["id-1"], q


async def test_a_batch_that_fails_part_way_stores_nothing_and_the_session_recovers(
    sessions, source_id
):
    # 1,000 posts go to PostgreSQL in several statements; the bad one (a lone surrogate, which
    # no database can encode) is in a later one.
    batch = [post(n) for n in range(1000)]
    batch[700] = post(700, text="a lone surrogate \ud800 here")
    with pytest.raises(Exception, match="surrogate"):
        await store(sessions, source_id, batch)
    result = await store(sessions, source_id, [post(n) for n in range(1000)])
    assert len(result.new_ids) == 1000


async def test_nul_characters_are_dropped_and_the_post_is_stored_and_found(sessions, source_id):
    nul = replace(
        post(1, text="Helix\x00 mainnet\x00 launch", author="a\x00b"),
        title="Hel\x00ix",
        raw={"k\x00": ["v\x00", {"x": "\x00y"}]},
    )
    result = await store(sessions, source_id, [nul, post(2)])
    assert len(result.new_ids) == 2
    async with sessions() as session:
        (found,) = (await list_posts(session, owner_id=None, q="mainnet")).items
    assert (found.text, found.title, found.author) == ("Helix mainnet launch", "Helix", "ab")
    assert found.raw == {"k": ["v", {"x": "y"}]}
    again = await store(sessions, source_id, [replace(nul, text="Helix mainnet launch")])
    assert again.unchanged == 1  # the same post without its NUL: nothing changed


async def test_posts_stored_in_a_transaction_that_rolls_back_are_not_kept(sessions, source_id):
    with pytest.raises(RuntimeError, match="after storing"):
        async with sessions.begin() as session:
            await store_posts(session, source_id, [post(n) for n in range(300)])
            raise RuntimeError("the caller fails after storing")
    async with sessions() as session:
        assert (await list_posts(session, owner_id=None)).items == []


async def test_pending_search_entries_are_merged_and_stay_searchable(sessions, source_id):
    await store(sessions, source_id, [post(n, text=f"mainnet launch {n}") for n in range(300)])
    async with sessions.begin() as session:
        merged = await merge_pending_search_entries(session)
        again = await merge_pending_search_entries(session)
        page = await list_posts(session, owner_id=None, q="mainnet launch 7", limit=10)
    postgres = session.get_bind().dialect.name == "postgresql"
    # PostgreSQL buffered the entries of the new posts; SQLite's FTS5 keeps no such list.
    assert (merged > 0) is postgres and again == 0
    assert [p.text for p in page.items] == ["mainnet launch 7"]
