"""One plug-in registry for source kinds and channel kinds: options, secrets, schema.

A kind is a class with a ``kind`` name and a pydantic ``Options`` model. Options values typed
``SecretStr`` (at any depth: optional, in a dict, a list or a nested model) are the kind's
secrets. The registry validates a config against the options (errors name the field, never a
value), seals every secret with the Fernet helpers of :mod:`sigwatch.secrets` before it is
stored, opens them again for the worker that builds the plug-in, and masks them for everything
shown to people: API answers, audit rows, logs and errors. Source kinds and channel kinds use
the same registry class, so a secret is handled the same way wherever it comes from.

Configs travel as JSON objects in three states: *clear* (validated, secrets readable), *sealed*
(secrets replaced by Fernet tokens, what the database holds) and *shown* (secrets masked).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Protocol, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from sigwatch.errors import ConfigError, InvalidOptions, OptionProblem
from sigwatch.secrets import MASK, decrypt_secret, encrypt_secret, mask_secret


class Kind(Protocol):
    """What the registry needs of a plug-in class: its name and its options model."""

    kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]]


K = TypeVar("K", bound=Kind)


@dataclass(frozen=True, slots=True)
class KindDescription:
    """A kind as the API, the CLI and the docs show it: name, description, options schema."""

    name: str
    description: str
    options_schema: dict[str, Any]
    secret_fields: tuple[str, ...]


class KindRegistry(Generic[K]):
    """The kinds of one plug-in type (``noun`` is "source" or "channel"), by name.

    ``kinds`` is kept by reference, so a kind added to that dict later (a test's own kind) is
    known at once.
    """

    def __init__(self, noun: str, kinds: dict[str, type[K]]) -> None:
        self.noun = noun
        self.kinds = kinds

    def names(self) -> list[str]:
        """The registered kind names, sorted."""
        return sorted(self.kinds)

    def plugin(self, kind: str) -> type[K]:
        """The class of ``kind``; ConfigError listing the known kinds when there is none."""
        try:
            return self.kinds[kind]
        except KeyError:
            raise ConfigError(self.unknown_kind_message(kind)) from None

    def unknown_kind_message(self, kind: str) -> str:
        """What to tell someone who named a kind that is not registered."""
        return f"unknown {self.noun} kind {kind!r}; known kinds: {', '.join(self.names())}"

    def validate(self, kind: str, config: Mapping[str, Any]) -> BaseModel:
        """The options of ``kind`` read from ``config``; InvalidOptions naming each bad option.

        No message quotes a submitted value: pydantic's inputs are dropped, and any secret value
        a message would repeat is replaced by the mask.
        """
        options = self.plugin(kind).Options
        try:
            return options.model_validate(dict(config))
        except ValidationError as exc:
            hidden = _secret_strings(options, dict(config))
            errors = [
                {**error, "msg": _scrub(error["msg"], hidden)}
                for error in exc.errors(
                    include_url=False, include_input=False, include_context=False
                )
            ]
            raise InvalidOptions.from_validation_errors(kind, errors, what=self.noun) from None

    def clear_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` validated and normalised by the options of ``kind``, secrets readable."""
        return dump_clear(self.validate(kind, config))

    def secret_fields(self, kind: str) -> tuple[str, ...]:
        """The top-level options of ``kind`` that are or hold secrets."""
        return secret_fields(self.plugin(kind).Options)

    def secret_values(self, kind: str, config: Mapping[str, Any]) -> list[str]:
        """Every non-empty string in a secret position of ``config``, longest first.

        For scrubbing text that might quote them (an error message, a log line).
        """
        return _secret_strings(self.plugin(kind).Options, dict(config))

    def seal(self, kind: str, clear: Mapping[str, Any], secret_key: str) -> dict[str, Any]:
        """A clear config with every secret encrypted under ``secret_key``, ready to store."""
        return self._map(kind, clear, lambda value: encrypt_secret(secret_key, value))

    def open(self, kind: str, sealed: Mapping[str, Any], secret_key: str) -> dict[str, Any]:
        """A stored config with its secrets decrypted; ConfigError when the key has changed."""
        return self._map(kind, sealed, lambda value: decrypt_secret(secret_key, value))

    def mask(self, kind: str, clear: Mapping[str, Any]) -> dict[str, Any]:
        """A clear config with its secrets masked, for showing."""
        return self._map(kind, clear, mask_secret)

    def shown(self, kind: str, sealed: Mapping[str, Any], secret_key: str) -> dict[str, Any]:
        """A stored config as people may see it: every secret masked, whatever went wrong.

        When the secrets cannot be decrypted (the secret key changed) they are shown as the bare
        mask, so the object can still be listed and its secrets entered again; when the kind is
        no longer registered, which values are secret is unknown, so every string is masked.
        """
        if kind not in self.kinds:
            every_string: dict[str, Any] = _mask_every_string(dict(sealed))
            return every_string
        try:
            return self.mask(kind, self.open(kind, sealed, secret_key))
        except ConfigError:
            return self._map(kind, sealed, lambda _value: MASK)

    def keep_stored_secrets(
        self,
        kind: str,
        given: Mapping[str, Any],
        sealed: Mapping[str, Any],
        secret_key: str,
    ) -> dict[str, Any]:
        """``given`` with each secret option left out, or sent back as shown, taken from storage.

        People never see secrets, so an edit cannot ask them to repeat one; null removes an
        optional secret. When the secret key has changed they cannot be kept: InvalidOptions
        naming each one, so the user enters them again in the same edit.
        """
        shown = self.shown(kind, sealed, secret_key)
        kept = [
            name
            for name in self.secret_fields(kind)
            if name in sealed and (name not in given or given[name] == shown.get(name))
        ]
        if not kept:
            return dict(given)
        try:
            stored = self.open(kind, sealed, secret_key)
        except ConfigError:
            problem = (
                "was sealed under another SIGWATCH_SECRET_KEY and cannot be kept: enter it again"
            )
            raise InvalidOptions(
                kind, [OptionProblem((name,), problem) for name in kept], what=self.noun
            ) from None
        return {**given, **{name: stored[name] for name in kept}}

    def describe(self, kind: str) -> KindDescription:
        """Name, one-paragraph description and options JSON Schema (secrets ``writeOnly``)."""
        plugin = self.plugin(kind)
        return KindDescription(
            name=kind,
            description=_first_paragraph(plugin),
            options_schema=plugin.Options.model_json_schema(),
            secret_fields=secret_fields(plugin.Options),
        )

    def _map(
        self, kind: str, config: Mapping[str, Any], change: Callable[[str], str]
    ) -> dict[str, Any]:
        return _map_model(self.plugin(kind).Options, dict(config), change)


@dataclass(frozen=True, slots=True)
class KindOption:
    """One option of a kind as people read it: name, JSON type, required, secret, default."""

    name: str
    type: str
    required: bool
    secret: bool
    default: Any
    description: str


def options_of(options: type[BaseModel]) -> list[KindOption]:
    """The options of ``options`` in declaration order, read from its JSON Schema."""
    schema = options.model_json_schema()
    required = set(schema.get("required", ()))
    secrets = set(secret_fields(options))
    return [
        KindOption(
            name=name,
            type=_json_type(prop),
            required=name in required,
            secret=name in secrets,
            default=prop.get("default"),
            description=" ".join(str(prop.get("description", "")).split()),
        )
        for name, prop in schema.get("properties", {}).items()
    ]


def options_table(options: type[BaseModel]) -> str:
    """The Markdown table of the options of ``options``, as the docs show it."""
    lines = ["| option | type | required | default | description |", "|---|---|---|---|---|"]
    for option in options_of(options):
        kind = f"{option.type}, secret" if option.secret else option.type
        shown = "" if option.default is None or option.secret else f"`{option.default}`"
        required = "yes" if option.required else "no"
        description = option.description.replace("|", "\\|")
        lines.append(f"| `{option.name}` | {kind} | {required} | {shown} | {description} |")
    return "\n".join(lines) + "\n"


def _json_type(prop: Mapping[str, Any]) -> str:
    if "anyOf" in prop:
        types_ = [_json_type(choice) for choice in prop["anyOf"] if choice.get("type") != "null"]
        return " or ".join(types_) or "null"
    kind = str(prop.get("type", "object"))
    if kind == "array" and isinstance(prop.get("items"), Mapping):
        return f"array of {_json_type(prop['items'])}"
    return kind


def dump_clear(options: BaseModel) -> dict[str, Any]:
    """``options`` as a JSON object with every secret readable (pydantic would mask them)."""
    return dict(to_jsonable_python(_reveal(options.model_dump())))


def secret_fields(options: type[BaseModel]) -> tuple[str, ...]:
    """Names of the fields of ``options`` whose type holds a ``SecretStr`` at any depth."""
    return tuple(
        name for name, info in options.model_fields.items() if _holds_secret(info.annotation)
    )


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_reveal(item) for item in value]
    return value


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _holds_secret(annotation: Any, seen: frozenset[type] = frozenset()) -> bool:
    annotation = _unwrap(annotation)
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        return any(
            _holds_secret(info.annotation, seen | {annotation})
            for info in annotation.model_fields.values()
        )
    return any(_holds_secret(arg, seen) for arg in get_args(annotation))


def _map_value(annotation: Any, value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (JSON) with ``change`` applied to each string that ``annotation`` types secret."""
    annotation = _unwrap(annotation)
    if value is None or not _holds_secret(annotation):
        return value
    if annotation is SecretStr:
        return change(value) if isinstance(value, str) else value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _map_model(annotation, value, change) if isinstance(value, dict) else value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        holding = [arg for arg in args if _holds_secret(arg)]
        return _map_value(holding[0], value, change)
    if isinstance(value, dict) and args:
        return {key: _map_value(args[-1], item, change) for key, item in value.items()}
    if isinstance(value, list) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return [_map_value(arg, item, change) for arg, item in zip(args, value, strict=False)]
        return [_map_value(args[0], item, change) for item in value]
    return value


def _map_model(
    options: type[BaseModel], config: dict[str, Any], change: Callable[[str], str]
) -> dict[str, Any]:
    fields = options.model_fields
    return {
        name: _map_value(fields[name].annotation, value, change) if name in fields else value
        for name, value in config.items()
    }


def _secret_strings(options: type[BaseModel], config: dict[str, Any]) -> list[str]:
    """Every string given for a secret position, longest first, to scrub from messages.

    Blank ones are left out: hiding a lone space would mask every space of the message.
    """
    found: list[str] = []

    def collect(value: str) -> str:
        if value.strip():
            found.append(value)
        return value

    _map_model(options, config, collect)
    return sorted(found, key=len, reverse=True)


def _scrub(message: str, hidden: Sequence[str]) -> str:
    for value in hidden:
        message = message.replace(value, MASK)
    return message


def _mask_every_string(value: Any) -> Any:
    if isinstance(value, str):
        return MASK
    if isinstance(value, dict):
        return {key: _mask_every_string(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_every_string(item) for item in value]
    return value


def _first_paragraph(plugin: type[Any]) -> str:
    doc = inspect.getdoc(plugin) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())
