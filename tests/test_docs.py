"""Guard tests that keep the docs true to the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sigwatch.config import Settings
from sigwatch.delivery.channels.registry import CHANNEL_REGISTRY
from sigwatch.kinds import options_table
from sigwatch.sources.registry import SOURCE_KINDS, SOURCE_REGISTRY

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


KIND_DOCS = [("sources.md", SOURCE_REGISTRY, kind) for kind in SOURCE_REGISTRY.names()] + [
    ("channels.md", CHANNEL_REGISTRY, kind) for kind in CHANNEL_REGISTRY.names()
]


@pytest.mark.parametrize(("page", "registry", "kind"), KIND_DOCS)
def test_every_kind_has_its_generated_options_table_under_its_heading(page, registry, kind):
    text = (ROOT / "docs" / page).read_text()
    heading = text.index(f"## `{kind}`")
    start = text.index(f"<!-- generated:options:{kind}:start -->")
    next_heading = text.find("\n## ", heading + 1)
    assert heading < start < (next_heading if next_heading >= 0 else len(text))
    table = options_table(registry.plugin(kind).Options)
    assert table in text, f"the {kind} options table in docs/{page} is stale: run `make docs`"
    for secret in registry.secret_fields(kind):
        assert f"| `{secret}` | " in table and "secret" in table


def test_readme_names_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text
