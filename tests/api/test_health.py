"""Probes, metrics, request ids, unexpected errors, and what startup refuses."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from sigwatch.api import create_app
from sigwatch.config import load_settings
from sigwatch.errors import DatabaseOutOfDate

from .conftest import PASSWORD


def http(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_live_and_ready_answer_200_without_credentials(client, accounts):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}, "failed": {}}


async def test_ready_is_503_naming_the_database_when_postgres_is_unreachable(tmp_path, closed_port):
    settings = load_settings(
        data_dir=tmp_path,
        secret_key="k" * 40,
        database_url=f"postgresql+asyncpg://sigwatch@127.0.0.1:{closed_port}/sigwatch",
    )
    app = create_app(settings)
    # An unreachable database does not stop startup: the process comes up not ready.
    async with app.router.lifespan_context(app), http(app) as client:
        assert (await client.get("/health/live")).status_code == 200
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable" and set(body["failed"]) == {"database"}
    assert body["failed"]["database"]


async def test_ready_is_503_when_the_sqlite_file_cannot_be_opened(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    settings = load_settings(
        data_dir=tmp_path,
        secret_key="k" * 40,
        database_url=f"sqlite+aiosqlite:///{blocker}/sigwatch.db",
    )
    threads_before = set(threading.enumerate())
    app = create_app(settings)
    async with app.router.lifespan_context(app), http(app) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 503 and "database" in ready.json()["failed"]
    # aiosqlite does not wait for the thread of a connection that failed to open; one still
    # running when this test's loop closes dies with "Event loop is closed" in a later test.
    for thread in set(threading.enumerate()) - threads_before:
        if thread.name.endswith("_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 5)


@pytest.mark.redis
async def test_ready_checks_redis_when_configured(settings, accounts, redis_url):
    app = create_app(settings.model_copy(update={"redis_url": redis_url}))
    async with app.router.lifespan_context(app), http(app) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_ready_is_503_naming_redis_when_nothing_listens(settings, accounts, closed_port):
    app = create_app(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port}/0"})
    )
    async with app.router.lifespan_context(app), http(app) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert set(ready.json()["failed"]) == {"redis"}
    assert ready.json()["checks"]["database"] == "ok"


async def test_startup_refuses_a_database_behind_the_code(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data", secret_key="k" * 40)
    app = create_app(settings)
    with pytest.raises(DatabaseOutOfDate, match="sigwatch db upgrade"):
        async with app.router.lifespan_context(app):
            pass


async def test_metrics_count_requests_by_route_template(client, accounts):
    await client.get(f"/api/v1/sources/{424242}", headers=accounts.admin.headers)
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("sigwatch_http_requests_total")
    ]
    assert any(
        'route="/api/v1/sources/{source_id}"' in line and 'status="404"' in line for line in lines
    )
    assert not any("424242" in line for line in lines)
    assert "sigwatch_http_request_duration_seconds_bucket" in metrics.text


async def test_request_id_is_echoed_generated_or_replaced_when_unsafe(client, accounts):
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123.x"})
    assert echoed.headers["X-Request-ID"] == "abc-123.x"
    generated = await client.get("/health/live")
    assert len(generated.headers["X-Request-ID"]) == 32
    unsafe = await client.get("/health/live", headers={"X-Request-ID": "a\tb" + "x" * 300})
    assert unsafe.headers["X-Request-ID"] != "a\tb" + "x" * 300
    failed = await client.get("/api/v1/entities", headers={"X-Request-ID": "req-401"})
    assert failed.status_code == 401 and failed.headers["X-Request-ID"] == "req-401"


async def test_unexpected_error_is_500_with_the_request_id(app, client, accounts):
    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)
    response = await client.get("/explode", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    assert response.json()["request_id"] == "req-500"
    assert "boom" not in response.text


async def test_login_is_counted_under_its_route(client, accounts):
    await client.post("/api/v1/auth/token", data={"username": "alice", "password": PASSWORD})
    metrics = (await client.get("/metrics")).text
    assert 'route="/api/v1/auth/token"' in metrics
