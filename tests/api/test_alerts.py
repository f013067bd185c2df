"""Alerts through the API: detection in the pipeline, stories, filters, lifecycle, export, rules."""

from __future__ import annotations

import csv
import io
import json

import pytest

from feedbuilder import rss_feed
from sigwatch.worker.runner import collect_once

NEBULA_A = "Nebula Protocol mainnet launch is live: the Nebula Protocol mainnet is now open"
NEBULA_B = "The Nebula Protocol mainnet is live today, its team says, opening the network"
HELIX = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"
ORDINARY = "Market wrap: bitcoin holds steady as traders await the rate decision"


@pytest.fixture
async def story(client, accounts, settings, sessions, server):
    """Alice's feed and Bob's feed both report the Nebula mainnet; Bob's also a Helix airdrop."""
    for entity in (
        {"name": "Nebula Protocol", "aliases": ["Nebula"], "symbols": ["NEB"], "tags": ["l1"]},
        {"name": "Helix Network", "aliases": ["Helix"], "symbols": ["HLX"], "tags": ["l2"]},
    ):
        created = await client.post("/api/v1/entities", json=entity, headers=accounts.admin.headers)
        assert created.status_code == 201, created.text
    ids = {}
    for who, path, titles in (
        ("alice", "/a.xml", [NEBULA_A, ORDINARY]),  # hers is published first
        ("bob", "/b.xml", [HELIX, NEBULA_B]),
    ):
        url = server.serve(path, rss_feed(titles, link=f"https://{who}.example"))
        created = await client.post(
            "/api/v1/sources",
            json={"kind": "rss", "name": who, "config": {"url": url}},
            headers=getattr(accounts, who).headers,
        )
        ids[who] = created.json()["id"]
    allowed = settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})
    outcomes = await collect_once(allowed, sessions, list(ids.values()))
    assert all(outcome.ok for outcome in outcomes)
    return ids


async def alerts_of(client, account, **params):
    answer = await client.get("/api/v1/alerts", params=params, headers=account.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_one_story_on_two_sources_is_one_corroborated_alert(client, accounts, story):
    alerts = await alerts_of(client, accounts.admin)
    by_key = {(a["entity"], a["event"]): a for a in alerts}
    assert set(by_key) == {("Nebula Protocol", "mainnet"), ("Helix Network", "airdrop")}
    nebula = by_key["Nebula Protocol", "mainnet"]
    assert nebula["source_count"] == 2 and nebula["evidence_count"] == 2
    detail = (
        await client.get(f"/api/v1/alerts/{nebula['id']}", headers=accounts.admin.headers)
    ).json()
    single = max(item["confidence"] for item in detail["evidence"])
    assert nebula["confidence"] > single  # corroboration raised it
    assert detail["first_source_id"] == story["alice"]  # her item was published first
    assert detail["lead_time_s"] is not None
    first = detail["evidence"][0]
    assert first["features"] and first["spans"]
    assert any(span["kind"] == "entity" for span in first["spans"])
    assert isinstance(first["sentiment"], float)  # every stored post is scored
    assert [h["action"] for h in detail["history"]] == ["created", "corroborated"]


async def test_users_see_only_alerts_with_evidence_from_their_sources(client, accounts, story):
    alice = await alerts_of(client, accounts.alice)
    assert {a["entity"] for a in alice} == {"Nebula Protocol"}
    helix = [a for a in await alerts_of(client, accounts.admin) if a["entity"] == "Helix Network"]
    hidden = await client.get(f"/api/v1/alerts/{helix[0]['id']}", headers=accounts.alice.headers)
    assert hidden.status_code == 404
    detail = await client.get(f"/api/v1/alerts/{alice[0]['id']}", headers=accounts.alice.headers)
    assert [e["source_id"] for e in detail.json()["evidence"]] == [story["alice"]]


async def test_filters(client, accounts, story):
    admin = accounts.admin
    assert [a["entity"] for a in await alerts_of(client, admin, event="airdrop")] == [
        "Helix Network"
    ]
    assert [a["entity"] for a in await alerts_of(client, admin, tag="l1")] == ["Nebula Protocol"]
    assert [a["entity"] for a in await alerts_of(client, admin, entity="helix network")] == [
        "Helix Network"
    ]
    assert await alerts_of(client, admin, min_confidence=1.0) == []
    assert len(await alerts_of(client, admin, status="new")) == 2
    assert [a["entity"] for a in await alerts_of(client, admin, q="eligibility")] == [
        "Helix Network"
    ]
    bad = await client.get("/api/v1/alerts?urgency=soon", headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "urgency"


async def test_lifecycle_keeps_history_and_refuses_impossible_moves(client, accounts, story):
    ids = [a["id"] for a in await alerts_of(client, accounts.admin)]
    headers = accounts.admin.headers
    acked = await client.post(
        "/api/v1/alerts/status", json={"ids": ids, "status": "acknowledged"}, headers=headers
    )
    assert acked.status_code == 200 and {a["status"] for a in acked.json()} == {"acknowledged"}
    resolved = await client.post(
        "/api/v1/alerts/status",
        json={"ids": ids[:1], "status": "resolved", "note": "listed as expected"},
        headers=headers,
    )
    assert resolved.status_code == 200
    refused = await client.post(
        "/api/v1/alerts/status", json={"ids": ids, "status": "dismissed"}, headers=headers
    )
    assert refused.status_code == 409  # resolved cannot become dismissed; nothing changed
    assert len(await alerts_of(client, accounts.admin, status="acknowledged")) == 1
    detail = (await client.get(f"/api/v1/alerts/{ids[0]}", headers=headers)).json()
    moves = [(h["from_status"], h["to_status"], h["actor"]) for h in detail["history"][-2:]]
    assert moves == [("new", "acknowledged", "admin"), ("acknowledged", "resolved", "admin")]
    unknown = await client.post(
        "/api/v1/alerts/status", json={"ids": [999999], "status": "resolved"}, headers=headers
    )
    assert unknown.status_code == 404
    invalid = await client.post(
        "/api/v1/alerts/status", json={"ids": ids, "status": "done"}, headers=headers
    )
    assert invalid.status_code == 422


async def test_export_as_csv_and_jsonl(client, accounts, story):
    headers = accounts.admin.headers
    as_jsonl = await client.get("/api/v1/alerts/export?format=jsonl", headers=headers)
    records = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert {r["entity"] for r in records} == {"Nebula Protocol", "Helix Network"}
    as_csv = await client.get("/api/v1/alerts/export?format=csv&event=mainnet", headers=headers)
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["entity"] for r in rows] == ["Nebula Protocol"]
    assert as_csv.headers["content-type"].startswith("text/csv")


async def test_detect_says_what_would_fire_and_why(client, accounts, story):
    answer = await client.post(
        "/api/v1/detect", json={"text": HELIX}, headers=accounts.alice.headers
    )
    assert answer.status_code == 200, answer.text
    detections = answer.json()["detections"]
    assert [(d["entity"], d["event"], d["would_alert"]) for d in detections] == [
        ("Helix Network", "airdrop", True)
    ]
    assert detections[0]["features"] and detections[0]["spans"]
    grim = await client.post(
        "/api/v1/detect",
        json={"text": "Terrible hack, funds stolen, users furious"},
        headers=accounts.alice.headers,
    )
    assert grim.json()["detections"] == [] and grim.json()["sentiment"] < -0.5
    empty = await client.post("/api/v1/detect", json={"text": ""}, headers=accounts.alice.headers)
    assert empty.status_code == 422


async def test_users_cannot_change_the_shared_rules_or_watchlist(client, accounts, story):
    alice = accounts.alice.headers
    refused = [
        await client.put("/api/v1/rules/airdrop", json={"enabled": False}, headers=alice),
        await client.delete("/api/v1/rules/airdrop", headers=alice),
        await client.put(
            "/api/v1/watchlist",
            content="entities: []\nrules: {}\n",
            headers={**alice, "Content-Type": "application/yaml"},
        ),
    ]
    assert [answer.status_code for answer in refused] == [403, 403, 403]
    assert (await client.get("/api/v1/rules", headers=alice)).status_code == 200
    assert (await client.get("/api/v1/watchlist", headers=alice)).status_code == 200
    fired = await client.post("/api/v1/detect", json={"text": HELIX}, headers=alice)
    assert [d["event"] for d in fired.json()["detections"]] == ["airdrop"]


async def test_rule_override_switches_an_event_off_and_back(client, accounts, story):
    headers = accounts.admin.headers
    off = await client.put("/api/v1/rules/airdrop", json={"enabled": False}, headers=headers)
    assert off.status_code == 200
    silent = await client.post("/api/v1/detect", json={"text": HELIX}, headers=headers)
    assert silent.json()["detections"] == []
    assert (await client.get("/api/v1/rules", headers=headers)).json()[0]["event"] == "airdrop"
    assert (await client.delete("/api/v1/rules/airdrop", headers=headers)).status_code == 204
    back = await client.post("/api/v1/detect", json={"text": HELIX}, headers=headers)
    assert [d["event"] for d in back.json()["detections"]] == ["airdrop"]
    unknown = await client.put("/api/v1/rules/weather", json={}, headers=headers)
    assert unknown.status_code == 422


async def test_watchlist_yaml_import_and_export(client, accounts, story):
    headers = {**accounts.admin.headers, "Content-Type": "application/yaml"}
    document = "entities:\n  - name: Orbit Chain\n    symbols: [ORB]\n    tags: [l1]\nrules: {}\n"
    imported = await client.put("/api/v1/watchlist", content=document, headers=headers)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"added": 1, "updated": 0, "rules": 0}
    exported = await client.get("/api/v1/watchlist", headers=accounts.admin.headers)
    assert "Orbit Chain" in exported.text and "Nebula Protocol" in exported.text
    bad = "entities:\n  - name: X\n    colour: red\n"
    refused = await client.put("/api/v1/watchlist", content=bad, headers=headers)
    assert refused.status_code == 422
    assert "line 3" in json.dumps(refused.json()) and "colour" in json.dumps(refused.json())


async def test_one_feed_added_by_two_users_is_one_source_not_corroboration(
    client, accounts, settings, sessions, server
):
    await client.post(
        "/api/v1/entities",
        json={"name": "Nebula Protocol", "aliases": ["Nebula"], "symbols": ["NEB"]},
        headers=accounts.admin.headers,
    )
    url = server.serve("/shared.xml", rss_feed([NEBULA_A], link="https://wire.example"))
    ids = []
    for who in ("alice", "bob"):
        created = await client.post(
            "/api/v1/sources",
            json={"kind": "rss", "name": who, "config": {"url": url}},
            headers=getattr(accounts, who).headers,
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    allowed = settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})
    assert all(o.ok for o in await collect_once(allowed, sessions, ids))

    (nebula,) = await alerts_of(client, accounts.admin)
    detail = (
        await client.get(f"/api/v1/alerts/{nebula['id']}", headers=accounts.admin.headers)
    ).json()
    assert nebula["evidence_count"] == 2  # both copies' posts are kept as evidence
    assert nebula["source_count"] == 1  # but they are one origin
    assert nebula["confidence"] == max(item["confidence"] for item in detail["evidence"])
    assert detail["lead_time_s"] is None
