"""Tests needing PostgreSQL or Redis skip before building anything, and fail instead under CI.

Each case runs pytest in a subprocess over a small test file, with this suite's root conftest
copied beside it, so the rule is checked as a developer and CI meet it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent

SAMPLE_TESTS = '''
from pathlib import Path

import pytest


@pytest.fixture
def built(request):
    """Leaves a trace when it runs: a skipped test must not have run it."""
    Path("built-" + request.node.originalname).touch()


def test_reaches_redis(built, redis_url):
    pass


def test_reaches_postgres(built, postgres_url):
    pass


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
def test_postgres_settings(built, settings):
    pass


@pytest.mark.redis
def test_marked_redis(built):
    pass


def test_needs_no_service(built):
    pass
'''


#: The suite's own pytest settings that matter here (markers, asyncio, warnings as errors).
SAMPLE_INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
markers =
    postgres: needs SIGWATCH_TEST_DATABASE_URL
    redis: needs SIGWATCH_TEST_REDIS_URL
"""


def _run_sample(tmp_path: Path, *args: str, ci: bool = False) -> subprocess.CompletedProcess[str]:
    """Run pytest over the sample tests with no service configured (and CI=true when asked)."""
    shutil.copyfile(TESTS_DIR / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text(SAMPLE_INI, encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS, encoding="utf-8")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SIGWATCH_") and name not in ("CI", "PYTEST_ADDOPTS")
    }
    env["PYTHONPATH"] = str(TESTS_DIR)  # the conftest imports localserver from there
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _traces(tmp_path: Path) -> set[str]:
    return {path.name.removeprefix("built-") for path in tmp_path.glob("built-*")}


def test_a_missing_service_skips_with_the_variable_to_set_before_any_fixture(tmp_path):
    run = _run_sample(tmp_path, "-rs")
    assert run.returncode == 0, run.stdout + run.stderr
    closing = run.stdout.rstrip().splitlines()[-1]
    assert "1 passed, 4 skipped in" in closing and "warning" not in closing
    assert "set SIGWATCH_TEST_REDIS_URL to run the Redis tests" in run.stdout
    assert "set SIGWATCH_TEST_DATABASE_URL to run the PostgreSQL tests" in run.stdout
    assert _traces(tmp_path) == {"test_needs_no_service"}


def test_under_ci_a_missing_service_fails_the_run_instead_of_skipping(tmp_path):
    run = _run_sample(tmp_path, "-rE", ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    closing = run.stdout.rstrip().splitlines()[-1]
    assert "1 passed, 4 errors in" in closing and "warning" not in closing
    assert "skipped" not in run.stdout
    assert "SIGWATCH_TEST_REDIS_URL is not set under CI" in run.stdout
    assert "SIGWATCH_TEST_DATABASE_URL is not set under CI" in run.stdout
    assert _traces(tmp_path) == {"test_needs_no_service"}


@pytest.mark.parametrize("marker", ["postgres", "redis"])
def test_tests_reaching_a_service_carry_its_marker(tmp_path, marker):
    run = _run_sample(tmp_path, "--collect-only", "-q", "-m", marker)
    selected = {
        line.split("::")[1].split("[")[0] for line in run.stdout.splitlines() if "::" in line
    }
    expected = {
        "postgres": {"test_reaches_postgres", "test_postgres_settings"},
        "redis": {"test_reaches_redis", "test_marked_redis"},
    }[marker]
    assert selected == expected, run.stdout + run.stderr
