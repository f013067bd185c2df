"""The command line run in process, as a user would, each test with its own SQLite database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sigwatch.cli import app


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Result]:
    """Run ``sigwatch ARGS`` with this test's data directory; loopback feeds are allowed."""
    runner = CliRunner()
    env = {
        "SIGWATCH_DATA_DIR": str(tmp_path / "data"),
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LOG_LEVEL": "warning",
        # Wide enough that table cells are not wrapped across lines.
        "COLUMNS": "250",
    }

    def run(*args: str, input: str | None = None, **extra_env: Any) -> Result:
        return runner.invoke(app, list(args), input=input, env={**env, **extra_env})

    return run


@pytest.fixture
def admin(cli: Callable[..., Result]) -> str:
    """An admin user, the one the commands act for by default."""
    result = cli("user", "create", "root", "--admin", "--password-stdin", input="long enough\n")
    assert result.exit_code == 0, result.output
    return "root"
