"""Write the generated parts of the docs: the settings table and the CLI reference.

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

DOCS = Path(__file__).parent
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


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


def _replace(path: Path, generated: str) -> tuple[str, str]:
    current = path.read_text(encoding="utf-8")
    head, _, rest = current.partition(START)
    _, _, tail = rest.partition(END)
    return current, f"{head}{START}\n{generated}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate the generated parts of docs/.")
    parser.add_argument("--check", action="store_true", help="fail if a generated part is stale")
    args = parser.parse_args()
    stale = []
    for name, generated in (
        ("configuration.md", settings_reference()),
        ("cli.md", cli_reference()),
    ):
        path = DOCS / name
        current, wanted = _replace(path, generated)
        if current != wanted:
            stale.append(name)
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
