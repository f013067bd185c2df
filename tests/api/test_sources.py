"""Sources: CRUD with audit rows, validation naming the field, ownership, and poll-now jobs."""

from __future__ import annotations

from sigwatch.db.audit import list_audit
from sigwatch.db.models import Source

FEED = {"kind": "rss", "name": "Example news", "config": {"url": "https://news.example/feed"}}


async def create_source(client, headers, **overrides):
    response = await client.post("/api/v1/sources", json={**FEED, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_source_crud_is_audited_with_before_and_after(client, accounts, sessions):
    headers = accounts.alice.headers
    created = await create_source(client, headers, poll_interval_s=600)
    assert created["owner_id"] == accounts.alice.id and created["post_count"] == 0
    assert created["poll_interval_s"] == 600 and created["enabled"] is True
    assert created["created_at"].endswith("Z")

    url = f"/api/v1/sources/{created['id']}"
    read = await client.get(url, headers=headers)
    assert read.status_code == 200
    health = read.json()
    for field in (
        "last_polled_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "next_poll_at",
        "post_count",
    ):
        assert field in health

    patched = await client.patch(url, json={"name": "Renamed", "enabled": False}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed" and patched.json()["enabled"] is False

    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404

    async with sessions() as session:
        rows = (await list_audit(session, object_type="source")).items
    assert [row.action for row in rows] == ["delete", "update", "create"]
    delete, update, create = rows
    assert create.before is None and create.after["name"] == "Example news"
    assert update.before["name"] == "Example news" and update.after["name"] == "Renamed"
    assert delete.before["name"] == "Renamed" and delete.after is None
    assert {row.actor for row in rows} == {"alice"}
    assert "state" not in create.after


async def test_default_poll_interval_comes_from_settings(client, accounts, settings):
    created = await create_source(client, accounts.alice.headers)
    assert created["poll_interval_s"] == settings.poll_interval_s


BAD_SOURCES = {
    "missing-url": ({**FEED, "config": {}}, ["body", "config", "url"]),
    "bad-url-scheme": (
        {**FEED, "config": {"url": "ftp://news.example/feed"}},
        ["body", "config", "url"],
    ),
    "url-no-request-can-use": (
        {**FEED, "config": {"url": "http://0177.0.0.2/feed"}},
        ["body", "config", "url"],
    ),
    "interval-too-small": ({**FEED, "poll_interval_s": 1}, ["body", "poll_interval_s"]),
    "interval-not-a-number": ({**FEED, "poll_interval_s": "often"}, ["body", "poll_interval_s"]),
    "unknown-kind": ({**FEED, "kind": "carrier-pigeon"}, ["body", "kind"]),
    "blank-name": ({**FEED, "name": "   "}, ["body", "name"]),
    "nul-in-name": ({**FEED, "name": "nul\x00byte"}, ["body", "name"]),
    "nul-in-config": ({**FEED, "config": {"url": "https://x.example/\x00"}}, ["body", "config"]),
    "unknown-field": ({**FEED, "colour": "blue"}, ["body", "colour"]),
    "missing-name": (
        {"kind": "rss", "config": {"url": "https://news.example/feed"}},
        ["body", "name"],
    ),
    "config-not-an-object": ({**FEED, "config": ["https://news.example/feed"]}, ["body", "config"]),
}


async def test_bad_source_input_is_422_naming_the_field(client, accounts):
    # One database for the whole table: each case fails before anything is stored.
    for case, (body, loc) in BAD_SOURCES.items():
        response = await client.post("/api/v1/sources", json=body, headers=accounts.alice.headers)
        assert response.status_code == 422, (case, response.text)
        locs = [error["loc"] for error in response.json()["detail"]]
        assert loc in locs, (case, locs)
    listed = await client.get("/api/v1/sources", headers=accounts.alice.headers)
    assert listed.json()["items"] == []


async def test_bad_json_body_is_422_not_500(client, accounts):
    response = await client.post(
        "/api/v1/sources",
        content=b'{"kind": "rss",',
        headers={**accounts.alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


async def test_patch_with_a_bad_config_is_422_and_changes_nothing(client, accounts):
    created = await create_source(client, accounts.alice.headers)
    url = f"/api/v1/sources/{created['id']}"
    response = await client.patch(url, json={"config": {"url": 5}}, headers=accounts.alice.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "config"]
    kind = await client.patch(url, json={"kind": "reddit"}, headers=accounts.alice.headers)
    assert kind.status_code == 422
    after = await client.get(url, headers=accounts.alice.headers)
    assert after.json()["config"] == {**FEED["config"], "authorization": None}


async def test_users_cannot_see_or_change_other_users_sources(client, accounts):
    alices = await create_source(client, accounts.alice.headers)
    url = f"/api/v1/sources/{alices['id']}"
    bob = accounts.bob.headers
    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.patch(url, json={"name": "mine"}, headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    assert (await client.post(f"{url}/poll", headers=bob)).status_code == 404
    assert (await client.get("/api/v1/sources", headers=bob)).json()["items"] == []

    admin_view = await client.get(url, headers=accounts.admin.headers)
    assert admin_view.status_code == 200


async def test_source_list_pages_and_filters(client, accounts):
    for n in range(3):
        config = {"url": f"https://news.example/feed/{n}"}
        await create_source(
            client, accounts.alice.headers, name=f"feed {n}", config=config, enabled=n != 1
        )
    first = await client.get("/api/v1/sources?limit=2", headers=accounts.alice.headers)
    assert [s["name"] for s in first.json()["items"]] == ["feed 0", "feed 1"]
    second = await client.get(
        "/api/v1/sources",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=accounts.alice.headers,
    )
    assert [s["name"] for s in second.json()["items"]] == ["feed 2"]
    assert second.json()["next_cursor"] is None
    disabled = await client.get("/api/v1/sources?enabled=false", headers=accounts.alice.headers)
    assert [s["name"] for s in disabled.json()["items"]] == ["feed 1"]


async def test_bad_list_parameters_are_422_naming_them(client, accounts):
    for query in (
        "limit=0",
        "limit=201",
        "cursor=not-a-cursor",
        "cursor=WyJ4Il0",  # ["x"]: a cursor of the wrong type
        "cursor=Wzk5OTk5OTk5OTk5OV0",  # [999999999999]: beyond any id
        "enabled=maybe",
        "kind=a%00b",
    ):
        response = await client.get(f"/api/v1/sources?{query}", headers=accounts.alice.headers)
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", query.split("=")[0]], query


async def test_unknown_source_id_is_404_and_impossible_ones_422(client, accounts):
    headers = accounts.admin.headers
    assert (await client.get("/api/v1/sources/4242", headers=headers)).status_code == 404
    for source_id in ("0", "-1", str(2**64), "abc", "1.5"):
        response = await client.get(f"/api/v1/sources/{source_id}", headers=headers)
        assert response.status_code == 422, source_id
        assert response.json()["detail"][0]["loc"] == ["path", "source_id"]


async def test_poll_now_queues_one_job_visible_to_the_owner_only(client, accounts):
    source = await create_source(client, accounts.alice.headers)
    poll = await client.post(f"/api/v1/sources/{source['id']}/poll", headers=accounts.alice.headers)
    assert poll.status_code == 202
    job = poll.json()
    assert job["status"] == "queued" and job["source_id"] == source["id"]
    assert job["requested_by"] == accounts.alice.id

    again = await client.post(
        f"/api/v1/sources/{source['id']}/poll", headers=accounts.alice.headers
    )
    assert again.json()["id"] == job["id"]

    url = f"/api/v1/jobs/{job['id']}"
    read = await client.get(url, headers=accounts.alice.headers)
    assert read.status_code == 200
    assert {"status", "progress", "counters", "error", "created_at"} <= set(read.json())
    assert (await client.get(url, headers=accounts.bob.headers)).status_code == 404
    assert (await client.get(url, headers=accounts.admin.headers)).status_code == 200
    assert (
        await client.get("/api/v1/jobs/4242", headers=accounts.admin.headers)
    ).status_code == 404


async def test_poll_of_a_disabled_source_is_a_conflict(client, accounts):
    source = await create_source(client, accounts.alice.headers, enabled=False)
    poll = await client.post(f"/api/v1/sources/{source['id']}/poll", headers=accounts.alice.headers)
    assert poll.status_code == 409 and "enable it" in poll.json()["detail"]


async def test_an_edit_that_repeats_the_config_keeps_the_fetch_state(client, accounts, sessions):
    created = await create_source(client, accounts.alice.headers)
    url = f"/api/v1/sources/{created['id']}"
    async with sessions.begin() as session:
        source = await session.get(Source, created["id"])
        # As a row from before the authorization option: the key is absent, not null.
        source.config = {"url": FEED["config"]["url"]}
        source.state = {"etag": '"v1"'}

    same = await client.patch(url, json={"config": FEED["config"]}, headers=accounts.alice.headers)
    assert same.status_code == 200
    async with sessions() as session:
        assert (await session.get(Source, created["id"])).state == {"etag": '"v1"'}

    moved = {"url": "https://news.example/other-feed"}
    assert (
        await client.patch(url, json={"config": moved}, headers=accounts.alice.headers)
    ).status_code == 200
    async with sessions() as session:
        assert (await session.get(Source, created["id"])).state == {}
