"""``--set key=value`` for source kinds and channels, drawn from each kind's options model.

One pydantic model per kind says which options exist, which are required and which are secrets
(fields that hold a ``SecretStr``, as :func:`sigwatch.kinds.secret_fields` finds them). From it the
commands' help lists every kind's options, and the values given are checked by the model itself,
so a bad option is refused with the field named before anything is stored. Secrets are never
taken from the command line, where shell history and ``ps`` would keep them: ``--set token=-``
reads one line of standard input, and a secret left out (or given as ``--set token``) is asked
for at a hidden prompt.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from sigwatch.cli.common import USAGE_ERROR, fail
from sigwatch.kinds import KindOption, options_of

#: A value shown in place of a secret.
SECRET_SHOWN = "********"


def secret_names(model: type[BaseModel]) -> set[str]:
    """The names of the secret options of ``model``."""
    return {field.name for field in options_of(model) if field.secret}


def describe_kinds(models: Mapping[str, type[BaseModel]]) -> str:
    """Help text listing every kind's options, secrets marked.

    Each option is a paragraph of its own, so that both the terminal's help (which rewraps
    paragraphs) and the generated Markdown reference keep one option per item.
    """
    paragraphs = []
    for kind in sorted(models):
        paragraphs.append(f"Options of {kind}:")
        for field in options_of(models[kind]):
            marks = [field.type]
            if field.required:
                marks.append("required")
            elif field.default is not None and not field.secret:
                marks.append(f"default {json.dumps(field.default)}")
            if field.secret:
                name = field.name
                marks.append(f"secret: --set {name}=- reads it from stdin, --set {name} asks")
            text = f"- {field.name} ({', '.join(marks)})"
            if field.description:
                text += f": {field.description}"
            paragraphs.append(text)
    return "\n\n".join(paragraphs)


def parse_settings(
    kind: str,
    model: type[BaseModel],
    assignments: Sequence[str],
    *,
    prompt_missing_secrets: bool,
    fixed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The options given as ``key=value`` (plus ``fixed`` ones), checked against ``model``.

    Only the options given are returned (the model fills defaults when it is applied), with
    secrets read from standard input or a hidden prompt. Exits 2 naming the option on a bad
    name, a secret written on the command line, or a value the model refuses.
    """
    fields = {field.name: field for field in options_of(model)}
    given: dict[str, Any] = dict(fixed or {})
    for assignment in assignments:
        name, has_value, raw = assignment.partition("=")
        name = name.strip()
        field = fields.get(name)
        if field is None:
            known = ", ".join(fields) or "none"
            raise fail(
                f"--set {name}: {kind} has no option {name!r}; its options are: {known}",
                USAGE_ERROR,
            )
        if field.secret:
            secret = _read_secret(name, raw if has_value else None)
            given[name] = _typed(field, secret, shown=SECRET_SHOWN)
        elif not has_value:
            raise fail(f"--set {name}: give a value, as --set {name}=VALUE", USAGE_ERROR)
        else:
            given[name] = _typed(field, raw)
    if prompt_missing_secrets:
        for field in fields.values():
            if field.secret and field.required and field.name not in given:
                given[field.name] = _typed(field, _prompt_secret(field.name), shown=SECRET_SHOWN)
    check_options(kind, model, given, partial=not prompt_missing_secrets)
    return given


def check_options(
    kind: str, model: type[BaseModel], options: Mapping[str, Any], *, partial: bool = False
) -> None:
    """Exit 2 naming each option ``model`` refuses, never echoing a value (it may be secret).

    ``partial``: options not given are not reported missing (an edit changes only some).
    """
    try:
        model.model_validate(dict(options))
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
            if not (partial and error["type"] == "missing")
        ]
        if problems:
            raise fail(
                f"invalid {kind} options: {'; '.join(problems)}. "
                f"See `--help` for the options of {kind}.",
                USAGE_ERROR,
            ) from None


def masked(config: Mapping[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """``config`` with the values of ``secrets`` replaced by a mask, for showing."""
    hidden = set(secrets)
    return {
        name: SECRET_SHOWN if name in hidden and value is not None else value
        for name, value in config.items()
    }


def _read_secret(name: str, raw: str | None) -> str:
    if raw is None or raw == "":
        return _prompt_secret(name)
    if raw != "-":
        raise fail(
            f"--set {name}: {name} is a secret, so it is not taken from the command line (shell "
            f"history and ps would keep it). Pipe it in with --set {name}=- , or give "
            f"--set {name} to be asked for it.",
            USAGE_ERROR,
        )
    line = sys.stdin.readline()
    value = line.rstrip("\r\n")
    if not value:
        raise fail(
            f"--set {name}=- read nothing from standard input: pipe the value in, one per line",
            USAGE_ERROR,
        )
    return value


def _prompt_secret(name: str) -> str:
    value: str = typer.prompt(name, hide_input=True)
    return value


def _typed(field: KindOption, raw: str, *, shown: str | None = None) -> Any:
    """The value as the model expects it: JSON for lists and objects, text otherwise.

    Numbers and booleans stay text, since the model parses "60" and "true" itself. ``shown``
    stands in for the value in the error when it is a secret.
    """
    structure = field.type.split()[0]  # "array of string" is an array
    if structure in ("array", "object"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            example = '["a", "b"]' if structure == "array" else '{"key": "value"}'
            raise fail(
                f"--set {field.name}: {shown or repr(raw)} is not JSON; give the {field.type} "
                f"as JSON, e.g. {example}",
                USAGE_ERROR,
            ) from None
    return raw
