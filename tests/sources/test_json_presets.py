"""Presets of the json kind: expansion, parameters, and Binance's recorded answers (corpus)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.users import create_user
from sigwatch.errors import Conflict, InvalidInput, InvalidOptions
from sigwatch.manage.sources import create_source
from sigwatch.sources.presets import (
    BINANCE_LIST_URL,
    PRESETS,
    expand_preset,
    split_preset_assignments,
)
from sigwatch.sources.registry import SOURCE_REGISTRY, build_source

BINANCE_FILES = [
    "json_api/binance_cms_article_list_full.json",
    "json_api/binance_cms_article_list_full_page1.json",
    "json_api/binance_cms_article_list_full_page10.json",
    "json_api/binance_cms_article_list_min_one.json",
    "json_api/binance_cms_article_list_min_two.json",
]
LIST_PATH = urlsplit(BINANCE_LIST_URL).path


def test_binance_announcements_defaults_to_new_listings_twenty_at_a_time():
    config = expand_preset("binance_announcements")
    assert config["url"] == f"{BINANCE_LIST_URL}?type=1&catalogId=48&pageNo=1&pageSize=20"
    assert config["items"] == "data.catalogs[].articles[]"
    assert config["link"] == "https://www.binance.com/en/support/announcement/{code}"


def test_binance_parameters_choose_the_catalog_and_page_size():
    delistings = expand_preset("binance_announcements", catalog_id=161, page_size=50)
    every = expand_preset("binance_announcements", catalog_id="all")
    assert delistings["url"].endswith("?type=1&catalogId=161&pageNo=1&pageSize=50")
    assert every["url"].endswith("?type=1&pageNo=1&pageSize=20")


@pytest.mark.parametrize(
    ("params", "where"),
    [({"page_size": 51}, "page_size"), ({"catalog_id": "listings"}, "catalog_id")],
)
def test_a_bad_parameter_value_is_refused_naming_it(params, where):
    with pytest.raises(ValidationError) as caught:
        expand_preset("binance_announcements", **params)
    assert caught.value.errors()[0]["loc"] == (where,)


def test_an_unknown_preset_or_parameter_is_refused_listing_what_there_is():
    with pytest.raises(InvalidInput, match="use one of: binance_announcements"):
        expand_preset("kraken_news")
    with pytest.raises(InvalidInput, match=r"\(catalog_id, page_size\)") as caught:
        expand_preset("binance_announcements", catalogId=48)
    assert caught.value.field == "catalogId"


def test_every_preset_expands_with_its_defaults_to_a_valid_json_config():
    for name in PRESETS:
        assert SOURCE_REGISTRY.clear_config("json", expand_preset(name))


def test_a_config_naming_a_preset_is_stored_as_the_json_config_it_expands_to():
    clear = SOURCE_REGISTRY.clear_config(
        "json", {"preset": "binance_announcements", "catalog_id": 128}
    )
    assert "preset" not in clear and "catalog_id" not in clear
    assert clear == SOURCE_REGISTRY.clear_config("json", clear)
    assert "catalogId=128" in clear["url"] and clear["method"] == "GET"


def test_options_given_beside_a_preset_override_it_and_headers_stay_secret():
    given = {"preset": "binance_announcements", "title": "code", "headers": {"X-Key": "k3y"}}
    clear = SOURCE_REGISTRY.clear_config("json", given)
    assert clear["title"] == "code" and clear["items"] == "data.catalogs[].articles[]"
    assert SOURCE_REGISTRY.secret_values("json", clear) == ["k3y"]


@pytest.mark.parametrize(
    ("config", "where", "said"),
    [
        ({"preset": "kraken_news"}, "preset", "use one of: binance_announcements"),
        ({"preset": 7}, "preset", "use one of"),
        ({"preset": "binance_announcements", "colour": "red"}, "colour", "nor a json option"),
        ({"preset": "binance_announcements", "page_size": 0}, "page_size", "greater than"),
    ],
)
def test_a_bad_preset_config_is_an_invalid_options_naming_the_field(config, where, said):
    with pytest.raises(InvalidOptions) as caught:
        SOURCE_REGISTRY.validate("json", config)
    assert caught.value.field == f"config.{where}"
    assert said in caught.value.problems[0].message


def test_cli_assignments_are_split_into_preset_parameters_and_json_options():
    params, rest = split_preset_assignments(
        "binance_announcements", ["catalog_id=161", "headers=-", "page_size=5"]
    )
    assert params == {"catalog_id": "161", "page_size": "5"} and rest == ["headers=-"]
    with pytest.raises(InvalidInput, match="give a value"):
        split_preset_assignments("binance_announcements", ["catalog_id"])


@pytest.mark.parametrize("path", BINANCE_FILES)
async def test_binance_preset_extracts_the_recorded_answers_facts(path, corpus_dir, server, client):
    manifest = json.loads((corpus_dir / "manifest.json").read_text(encoding="utf-8"))
    expect = next(entry for entry in manifest if entry["path"] == path)["expect"]
    answer = json.loads((corpus_dir / path).read_text(encoding="utf-8"))
    config = expand_preset("binance_announcements")
    query = urlsplit(config["url"]).query
    server.serve(
        f"{LIST_PATH}?{query}",
        (corpus_dir / path).read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    local = {**config, "url": server.url(f"{LIST_PATH}?{query}")}

    source = build_source("json", SOURCE_REGISTRY.clear_config("json", local), client)
    result = await source.fetch({})

    first = expect["first_article"]
    post = result.posts[0]
    assert result.warnings == []
    assert len(result.posts) == expect["article_total"]
    assert post.external_id == str(first["id"])
    assert post.title == post.text == first["title"]
    assert post.url == f"https://www.binance.com/en/support/announcement/{first['code']}"
    released = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=first["releaseDate"])
    assert post.published_at == released
    assert post.raw == answer["data"]["catalogs"][0]["articles"][0]
    # Posts come catalog by catalog, in the answer's order, as many as the manifest counts.
    catalogs = {catalog["catalogId"]: catalog for catalog in answer["data"]["catalogs"]}
    start = 0
    for counted in expect["catalogs"]:
        chunk = result.posts[start : start + counted["articles"]]
        recorded = catalogs[counted["catalogId"]]["articles"]
        assert [p.external_id for p in chunk] == [str(article["id"]) for article in recorded]
        start += counted["articles"]
    assert start == len(result.posts)
    assert server.requests[0].path == f"{LIST_PATH}?{query}"


@pytest.fixture
async def sessions(migrated_database: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(migrated_database)
    yield session_factory(engine)
    await engine.dispose()


async def test_one_owner_adding_the_same_preset_twice_is_a_conflict_another_catalog_is_not(
    sessions,
):
    key = "json-preset-secret-key-that-is-long-enough-0123456789"
    async with sessions.begin() as session:
        owner = await create_user(session, username="alice", password_hash="not-a-real-hash")
        owner_id = owner.id

    async def add(name: str, catalog_id: int) -> int:
        async with sessions.begin() as session:
            source = await create_source(
                session,
                owner_id=owner_id,
                kind="json",
                name=name,
                config={"preset": "binance_announcements", "catalog_id": catalog_id},
                secret_key=key,
            )
            return source.id

    listings = await add("Binance listings", 48)
    assert await add("Binance delistings", 161) != listings
    with pytest.raises(Conflict):
        await add("Binance listings again", 48)
