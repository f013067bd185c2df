"""Write the generated parts of the docs: settings, CLI reference, each kind's options table.

.venv/bin/python docs/generate.py          # rewrite them
.venv/bin/python docs/generate.py --check  # exit 1 if they are stale (the tests do this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import typer

from sigwatch.cli import app
from sigwatch.config import settings_reference
from sigwatch.delivery.channels.registry import CHANNEL_REGISTRY
from sigwatch.kinds import KindRegistry, options_table
from sigwatch.sources.registry import SOURCE_REGISTRY

DOCS = Path(__file__).parent
START, END = "<!-- generated:start -->", "<!-- generated:end -->"
#: Where each kind's options table goes, under the kind's own heading.
KIND_DOCS = (("sources.md", SOURCE_REGISTRY), ("channels.md", CHANNEL_REGISTRY))


def cli_reference() -> str:
    """Markdown for every command of the CLI: usage, help and options."""
    root = typer.main.get_command(app)
    out: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name in sorted(command.commands):
                walk(command.commands[name], [*path, name])
            return
        context = command.context_class(command, info_name=" ".join(path))
        out.append(f"### `{' '.join(path)}`\n")
        usage = " ".join([*path, *command.collect_usage_pieces(context)])
        out.append(f"```\n{usage}\n```\n")
        if command.help:
            out.append(command.help.strip() + "\n")
        rows = []
        for param in command.params:
            if param.param_type_name == "argument":
                described = getattr(param, "help", None) or ""
                rows.append(f"| `{param.name.upper()}` | {described} | |")
            elif param.param_type_name == "option" and "--help" not in param.opts:
                names = ", ".join(f"`{opt}`" for opt in param.opts)
                default = (
                    "" if param.default in (None, False, (), "") else f"default `{param.default}`"
                )
                rows.append(f"| {names} | {param.help or ''} | {default} |")
        if rows:
            out.append("| parameter | description | default |\n|---|---|---|")
            out.append("\n".join(rows) + "\n")

    walk(root, ["sigwatch"])
    return "\n".join(out)


def options_start(kind: str) -> str:
    """The marker that opens the generated options table of ``kind``."""
    return f"<!-- generated:options:{kind}:start -->"


def options_end(kind: str) -> str:
    """The marker that closes the generated options table of ``kind``."""
    return f"<!-- generated:options:{kind}:end -->"


def _replace(text: str, generated: str, start: str = START, end: str = END) -> str:
    head, found, rest = text.partition(start)
    if not found:
        raise LookupError(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{generated}{end}{tail}"


def _with_kind_tables(text: str, registry: KindRegistry[Any]) -> str:
    for kind in registry.names():
        options = registry.plugin(kind).Options
        text = _replace(text, options_table(options), options_start(kind), options_end(kind))
    return text


def wanted_docs() -> dict[str, str]:
    """Each generated file as it should read now."""
    wanted = {}
    for name, generated in (
        ("configuration.md", settings_reference()),
        ("cli.md", cli_reference()),
    ):
        wanted[name] = _replace((DOCS / name).read_text(encoding="utf-8"), generated)
    for name, registry in KIND_DOCS:
        wanted[name] = _with_kind_tables((DOCS / name).read_text(encoding="utf-8"), registry)
    return wanted


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate the generated parts of docs/.")
    parser.add_argument("--check", action="store_true", help="fail if a generated part is stale")
    args = parser.parse_args()
    try:
        wanted = wanted_docs()
    except LookupError as missing:
        print(
            f"a generated part has no place in docs/: add {missing} and its closing marker "
            "(for a kind, under its `## kind` heading)",
            file=sys.stderr,
        )
        return 1
    stale = []
    for name, text in wanted.items():
        path = DOCS / name
        if path.read_text(encoding="utf-8") != text:
            stale.append(name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
