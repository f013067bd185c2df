"""`sigwatch up --demo` (what `make run` starts): posts arrive within seconds, offline."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_shows_posts_within_seconds_and_stops_cleanly_on_sigterm(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "SIGWATCH_DATA_DIR": str(tmp_path / "data"), "SIGWATCH_LOG_FORMAT": "json"}
    with (tmp_path / "out.txt").open("wb") as out, (tmp_path / "err.txt").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "up", "--demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=err,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        password = None
        while password is None and time.monotonic() < deadline:
            found = re.search(r"password (\S+)", (tmp_path / "out.txt").read_text())
            password = found.group(1) if found else None
            time.sleep(0.1)
        assert password, (tmp_path / "err.txt").read_text()[-2000:]

        with httpx.Client(base_url=base, timeout=5) as client:
            token = None
            while token is None and time.monotonic() < deadline:
                try:
                    answer = client.post(
                        "/api/v1/auth/token", data={"username": "admin", "password": password}
                    )
                    token = answer.json()["access_token"]
                except httpx.TransportError:
                    time.sleep(0.1)
            assert token
            headers = {"Authorization": f"Bearer {token}"}
            started = time.monotonic()
            posts: list[dict[str, object]] = []
            while not posts and time.monotonic() < deadline:
                posts = client.get("/api/v1/posts", headers=headers).json()["items"]
                time.sleep(0.2)
            assert posts, "no demo post arrived"
            assert time.monotonic() - started < 15
            sources = client.get("/api/v1/sources", headers=headers).json()["items"]
            assert len(sources) == 3 and all(s["last_error"] is None for s in sources)
            entities = client.get("/api/v1/entities", headers=headers).json()["items"]
            assert {e["name"] for e in entities} >= {"Nebula Protocol", "Helix Network"}
            assert client.get("/health/ready").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0


def test_second_start_keeps_the_admin_and_does_not_print_a_password(tmp_path: Path):
    env = {**os.environ, "SIGWATCH_DATA_DIR": str(tmp_path / "data")}
    runs = []
    for _ in range(2):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "up", "--demo", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=30)
        runs.append(stdout)
    assert "password" in runs[0]
    assert "password" not in runs[1]
