"""Guard tests that keep the docs true to the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sigwatch.config import Settings
from sigwatch.sources.registry import SOURCE_KINDS

ROOT = Path(__file__).parents[1]


def test_generated_settings_table_and_cli_reference_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_setting_has_a_description():
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"


def test_every_source_kind_is_documented():
    text = (ROOT / "docs" / "sources.md").read_text()
    for kind in SOURCE_KINDS:
        assert f"## `{kind}`" in text, f"source kind {kind} is missing from docs/sources.md"


def test_readme_names_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text
