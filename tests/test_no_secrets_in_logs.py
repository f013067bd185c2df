"""No secret is ever logged, at any level: a whole session at DEBUG, its logs searched for each one.

The session signs in with a password (and once with a wrong one), renews its tokens, makes a user
and an API key, uses the key as a header and as ``?api_key=``, opens WebSockets with ``?token=``
and ``?api_key=``, and makes channels holding secrets. Then every secret it handled — passwords,
their hashes, access and refresh tokens, the API key and its hash, channel secrets and URL tokens —
is looked for in everything written: the stderr of a real ``sigwatch api`` process (uvicorn's own
lines included), and in process, every stdlib record (caplog) and every structlog line.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import text
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from live.support import WAIT_S, receive_json, serving
from sigwatch import auth
from sigwatch.api import create_app
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db import users
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.delivery.channels.webhook import generate_webhook_secret
from sigwatch.observability.logging import configure_logging

#: Hashed once per run: argon2 is slow on purpose.
PASSWORD = f"pw-{secrets.token_urlsafe(16)}"
PASSWORD_HASH = auth.hash_password(PASSWORD)


class Secrets:
    """Every secret the session handled, and the log text they must not appear in."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {"password": PASSWORD, "password hash": PASSWORD_HASH}

    def add(self, name: str, value: str) -> str:
        assert len(value) >= 8, (name, value)
        self.values[name] = value
        return value

    def assert_none_in(self, text: str, where: str) -> None:
        found = [name for name, value in self.values.items() if value in text]
        assert not found, f"{', '.join(found)} written to {where}"


async def create_admin(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        async with session_factory(engine).begin() as session:
            await users.create_user(
                session, username="admin", password_hash=PASSWORD_HASH, role="admin"
            )
    finally:
        await engine.dispose()


async def run_session(base_url: str, found: Secrets) -> None:
    """Everything a user does that involves a secret, against the server at ``base_url``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=WAIT_S) as http:
        wrong = found.add("wrong password", f"wrong-{secrets.token_urlsafe(12)}")
        refused = await http.post(
            "/api/v1/auth/token", data={"username": "admin", "password": wrong}
        )
        assert refused.status_code == 401, refused.text
        pair = await http.post(
            "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
        )
        assert pair.status_code == 200, pair.text
        access = found.add("access token", pair.json()["access_token"])
        refresh = found.add("refresh token", pair.json()["refresh_token"])
        renewed = await http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert renewed.status_code == 200, renewed.text
        found.add("renewed access token", renewed.json()["access_token"])
        found.add("renewed refresh token", renewed.json()["refresh_token"])
        bearer = {"Authorization": f"Bearer {access}"}
        assert (await http.get("/api/v1/auth/me", headers=bearer)).status_code == 200

        bob_password = found.add("new user's password", f"bob-{secrets.token_urlsafe(12)}")
        made = await http.post(
            "/api/v1/users",
            json={"username": "bob", "password": bob_password, "role": "user"},
            headers=bearer,
        )
        assert made.status_code == 201, made.text
        json_sign_in = await http.post(
            "/api/v1/auth/token", json={"username": "bob", "password": bob_password}
        )
        assert json_sign_in.status_code == 200, json_sign_in.text
        found.add("bob's access token", json_sign_in.json()["access_token"])

        created = await http.post("/api/v1/api-keys", json={"name": "ci"}, headers=bearer)
        assert created.status_code == 201, created.text
        key = found.add("API key", created.json()["key"])
        found.add("API key hash", auth.hash_api_key(key))
        by_header = await http.get("/api/v1/auth/me", headers={"X-API-Key": key})
        assert by_header.status_code == 200 and by_header.json()["auth"] == "api_key"
        # Whether or not a route reads them, query credentials reach the access log.
        await http.get("/api/v1/posts", params={"api_key": key, "token": access}, headers=bearer)
        await http.get("/api/v1/nowhere", params={"password": PASSWORD, "secret": key})

        hook_token = found.add("webhook URL token", f"hook-{secrets.token_urlsafe(12)}")
        signing = found.add("webhook secret", generate_webhook_secret())
        webhook = await http.post(
            "/api/v1/channels",
            json={
                "kind": "webhook",
                "name": "hook",
                "config": {"url": f"https://hooks.example/in/{hook_token}", "secret": signing},
            },
            headers=bearer,
        )
        assert webhook.status_code == 201, webhook.text
        chat_password = found.add("Apprise URL password", f"chat-{secrets.token_urlsafe(12)}")
        apprise = await http.post(
            "/api/v1/channels",
            json={
                "kind": "apprise",
                "name": "chat",
                "config": {"url": f"json://robot:{chat_password}@notify.example/alerts"},
            },
            headers=bearer,
        )
        assert apprise.status_code == 201, apprise.text
        generated = await http.post(
            "/api/v1/channels",
            json={"kind": "webhook", "name": "generated", "config": {"url": "https://h.example/"}},
            headers={"X-API-Key": key},
        )
        assert generated.status_code == 201, generated.text
        found.add("generated webhook secret", generated.json()["generated_secrets"]["secret"])

    ws_base = base_url.replace("http://", "ws://", 1) + "/api/v1/ws"
    for query in (f"token={access}", f"api_key={key}"):
        async with connect(f"{ws_base}?{query}", open_timeout=WAIT_S, close_timeout=1) as ws:
            assert (await receive_json(ws))["type"] == "hello"
            await ws.send(json.dumps({"type": "ping"}))
            assert (await receive_json(ws))["type"] == "pong"
    bad = found.add("bad WebSocket token", f"bad-{secrets.token_urlsafe(12)}")
    try:
        async with connect(f"{ws_base}?token={bad}", open_timeout=WAIT_S, close_timeout=1) as ws:
            await ws.recv()
    except (InvalidStatus, OSError, Exception):  # refused or closed: either way it was logged
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ApiProcess:
    """A running ``sigwatch api`` and the file its output goes to."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> str:
        """SIGTERM, wait for the exit (every line written), and return the whole log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return self.log.read_text()


@pytest.fixture
async def admin_database(sqlite_settings: Settings) -> Settings:
    """A migrated SQLite database holding the admin."""
    await create_admin(sqlite_settings)
    return sqlite_settings


@pytest.fixture
def api_process(admin_database: Settings, tmp_path: Path) -> Iterator[ApiProcess]:
    """``sigwatch api`` on 127.0.0.1 logging at DEBUG, as JSON, to a file."""
    port = free_port()
    log = tmp_path / "api.log"
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(admin_database.data_dir),
        "SIGWATCH_SECRET_KEY": ensure_secret_key(admin_database),
        "SIGWATCH_LOG_LEVEL": "debug",
        "SIGWATCH_LOG_FORMAT": "json",
    }
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    running = ApiProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{running.base_url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield running
    finally:
        running.stop()


async def test_a_debug_session_of_sigwatch_api_logs_no_secret(api_process):
    found = Secrets()
    await run_session(api_process.base_url, found)
    written = api_process.stop()
    # The log is the real thing: debug lines, SQL, uvicorn's WebSocket lines, access lines.
    assert '"level": "debug"' in written and "SELECT" in written, written[-2000:]
    assert "WebSocket /api/v1/ws?token=" in written, written[-2000:]
    assert '"route": "/api/v1/auth/token"' in written
    found.assert_none_in(written, "the log of sigwatch api")
    assert "WebSocket /api/v1/ws?token=****" in written  # masked, not dropped


@pytest.fixture
def debug_logging() -> None:
    """sigwatch's logging at DEBUG, set up before caplog attaches its handler."""
    configure_logging("debug", "json")


async def test_a_debug_session_in_process_logs_no_secret_anywhere(
    settings, debug_logging, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    await create_admin(settings)
    found = Secrets()
    application = create_app(settings)
    async with application.router.lifespan_context(application), serving(application) as address:
        await run_session(f"http://{address}", found)
    records = [record.getMessage() for record in caplog.records]
    assert any("WebSocket /api/v1/ws?" in message for message in records), records[-20:]
    assert any("SELECT" in message for message in records)
    found.assert_none_in("\n".join(records), "a log record")
    found.assert_none_in(caplog.text, "the captured log")
    structlog_lines = capsys.readouterr().err
    assert "request handled" in structlog_lines
    found.assert_none_in(structlog_lines, "structlog's output")


def test_structlog_masks_secret_keys_and_scrubs_every_string(debug_logging, capsys):
    token = f"tok-{secrets.token_urlsafe(12)}"
    log = structlog.get_logger("test")
    log.info(
        "calling out",
        password=token,
        api_key=token,
        headers={"Authorization": f"Bearer {token}", "Accept": "text/html"},
        url=f"https://feeds.example/rss?token={token}&page=2",
        dsn=f"postgresql://sigwatch:{token}@db.example/sigwatch",
        attempts=[f"secret={token}"],
        token_type="access",
    )
    try:
        raise ValueError(f"upstream refused https://api.example/v1?api_key={token}")
    except ValueError:
        log.exception("fetch failed", refresh_token=token)
    written = capsys.readouterr().err
    assert token not in written
    [first, second] = [json.loads(line) for line in written.splitlines()]
    assert first["password"] == "****" and first["headers"]["Accept"] == "text/html"
    assert first["url"] == "https://feeds.example/rss?token=****&page=2"
    assert first["dsn"] == "postgresql://sigwatch:****@db.example/sigwatch"
    assert first["token_type"] == "access"  # the kind of a token is not a secret
    assert "api_key=****" in second["exception"]


async def test_sql_parameters_stay_out_of_database_errors(settings):
    engine = create_engine(settings)
    secret = f"hash-{secrets.token_urlsafe(12)}"
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            with pytest.raises(Exception) as failed:  # noqa: B017 (which one depends on the driver)
                await session.execute(
                    text("INSERT INTO users (id, username, password_hash) VALUES (:i, :u, :h)"),
                    [{"i": 1, "u": "x", "h": secret}, {"i": 1, "u": "y", "h": secret}],
                )
    finally:
        await engine.dispose()
    assert secret not in str(failed.value)
