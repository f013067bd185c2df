"""No request may outlast the lease on its work: such settings are refused at startup."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sigwatch.config import load_settings
from sigwatch.errors import ConfigError


@pytest.mark.parametrize("timeout_s", [30, 60])
def test_fetch_timeout_not_below_the_lease_is_refused_naming_both_settings(tmp_path, timeout_s):
    with pytest.raises(ConfigError) as refused:
        load_settings(data_dir=tmp_path, lease_s=30, fetch_timeout_s=timeout_s)
    message = str(refused.value)
    assert "SIGWATCH_FETCH_TIMEOUT_S" in message and "SIGWATCH_LEASE_S" in message
    assert "lower the timeout or raise the lease" in message


def test_fetch_timeout_below_the_lease_is_accepted(tmp_path):
    settings = load_settings(data_dir=tmp_path, lease_s=30, fetch_timeout_s=29.5)
    assert (settings.lease_s, settings.fetch_timeout_s) == (30, 29.5)


def test_worker_refuses_to_start_when_the_fetch_timeout_outlasts_the_lease(tmp_path):
    secret = "do-not-show-this-secret-key-0123456789abcdef"
    result = subprocess.run(
        [sys.executable, "-m", "sigwatch", "worker"],
        env={
            **os.environ,
            "SIGWATCH_DATA_DIR": str(tmp_path / "data"),
            "SIGWATCH_SECRET_KEY": secret,
            "SIGWATCH_LEASE_S": "10",
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    said = " ".join(result.stderr.split())  # Rich wraps long lines
    assert "SIGWATCH_FETCH_TIMEOUT_S (20s)" in said and "SIGWATCH_LEASE_S (10s)" in said
    assert secret[-12:] not in result.stderr  # the settings' values are never echoed
