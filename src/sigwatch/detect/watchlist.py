"""Watchlist models and their YAML form, loaded strictly: every error names its line.

The file format::

    entities:
      - name: Arbitrum          # required, unique (compared without case)
        aliases: [Arbitrum One]
        symbols: [ARB]
        handles: [arbitrum]
        domains: [arbitrum.io]
        tags: [l2]
        priority: 0
    rules:                      # optional overrides of the built-in event rules
      listing:
        enabled: true
        keywords: {strong: ["now tradable on"], weak: []}
        cancels: ["paper trading"]
        min_confidence: 0.6

Loading builds the whole watchlist or raises :class:`WatchlistError`; nothing is half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from sigwatch.detect.events import EVENT_TYPES, TIER_WEIGHTS
from sigwatch.errors import InvalidInput

_LIST_FIELDS = ("aliases", "symbols", "handles", "domains", "tags")
_ENTITY_FIELDS = ("name", *_LIST_FIELDS, "priority")
_RULE_FIELDS = ("enabled", "keywords", "cancels", "min_confidence")
_TOP_FIELDS = ("entities", "rules")
_MAX_TEXT = 200
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
#: Deepest nesting of collections a watchlist document may have; the format itself uses four.
MAX_YAML_DEPTH = 16


class WatchlistError(InvalidInput):
    """A watchlist file is not valid YAML or breaks the format; ``line`` says where (1-based)."""

    def __init__(self, line: int | None, reason: str) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__("watchlist", f"{where}{reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Entity:
    """A watched project, token, company, ticker or person and the names it goes by."""

    name: str
    aliases: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    priority: int = 0


@dataclass(frozen=True)
class RuleOverride:
    """A watchlist's change to one built-in event rule: extra phrases, or the rule switched off."""

    enabled: bool = True
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cancels: tuple[str, ...] = ()
    min_confidence: float | None = None


@dataclass(frozen=True)
class Watchlist:
    """The entities to watch and the overrides of the built-in rules, keyed by event type."""

    entities: tuple[Entity, ...] = ()
    rules: Mapping[str, RuleOverride] = field(default_factory=dict)


def load_watchlist_yaml(text: str) -> Watchlist:
    """Parse and validate a watchlist document; raise WatchlistError naming the line and reason."""
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise WatchlistError(line, f"invalid YAML: {problem}") from None
    if root is None:
        raise WatchlistError(1, "the document is empty: expected a mapping with an 'entities' list")
    top = _mapping(root, "the document", _TOP_FIELDS)
    if "entities" not in top:
        raise WatchlistError(_line(root), "missing field 'entities' (a list of entities)")
    entities = _entities(top["entities"])
    rules = _rules(top["rules"]) if "rules" in top else {}
    return Watchlist(entities=entities, rules=rules)


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses nesting deeper than MAX_YAML_DEPTH as soon as it is reached.

    PyYAML's composer recurses once per level (a deep document overflows the stack) and its
    scanner slows down quadratically with the depth of ``[``/``{``; both stop at the limit.
    Aliases are composed as shared nodes, never expanded, so anchors cannot multiply the work.
    """

    _depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # PyYAML's argument name
        if self.flow_level >= MAX_YAML_DEPTH:
            self._too_deep()
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                self._too_deep()
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _too_deep(self) -> None:
        raise WatchlistError(
            self.get_mark().line + 1,
            f"the document nests deeper than {MAX_YAML_DEPTH} levels; a watchlist needs four "
            "(rules, an event, keywords, a tier): flatten it",
        )


def dump_watchlist_yaml(watchlist: Watchlist) -> str:
    """Write a watchlist in the YAML form that load_watchlist_yaml reads back unchanged."""
    entities: list[dict[str, Any]] = []
    for entity in watchlist.entities:
        item: dict[str, Any] = {"name": entity.name}
        for name in _LIST_FIELDS:
            values = getattr(entity, name)
            if values:
                item[name] = list(values)
        if entity.priority:
            item["priority"] = entity.priority
        entities.append(item)
    document: dict[str, Any] = {"entities": entities}
    if watchlist.rules:
        rules: dict[str, Any] = {}
        for event, override in watchlist.rules.items():
            rule: dict[str, Any] = {"enabled": override.enabled}
            if override.keywords:
                rule["keywords"] = {tier: list(v) for tier, v in override.keywords.items()}
            if override.cancels:
                rule["cancels"] = list(override.cancels)
            if override.min_confidence is not None:
                rule["min_confidence"] = override.min_confidence
            rules[event] = rule
        document["rules"] = rules
    dumped: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return dumped


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    """A mapping node's values by key; unknown and repeated keys are errors."""
    if not isinstance(node, yaml.MappingNode):
        raise WatchlistError(_line(node), f"{what} must be a mapping")
    values: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise WatchlistError(_line(key_node), f"{what} has a key that is not a plain name")
        key = str(key_node.value)
        if key not in allowed:
            expected = ", ".join(allowed)
            raise WatchlistError(
                _line(key_node), f"unknown field {key!r} in {what} (expected one of: {expected})"
            )
        if key in values:
            raise WatchlistError(_line(key_node), f"field {key!r} appears twice in {what}")
        values[key] = value_node
    return values


def _text(node: yaml.Node, what: str) -> str:
    """A scalar as text: YAML's guesses (ON → true, 1000 → int) are undone for names and symbols."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL_TAG:
        raise WatchlistError(_line(node), f"{what} must be a text value")
    value = str(node.value).strip()
    if not value:
        raise WatchlistError(_line(node), f"{what} must not be blank")
    if len(value) > _MAX_TEXT:
        raise WatchlistError(_line(node), f"{what} must be at most {_MAX_TEXT} characters")
    return value


def _texts(node: yaml.Node, what: str) -> tuple[str, ...]:
    """A list of text values (null is an empty list); repeats, compared without case, dropped."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise WatchlistError(_line(node), f"{what} must be a list")
    kept: list[str] = []
    seen: set[str] = set()
    for item in node.value:
        value = _text(item, f"each item of {what}")
        if value.casefold() not in seen:
            seen.add(value.casefold())
            kept.append(value)
    return tuple(kept)


def _entities(node: yaml.Node) -> tuple[Entity, ...]:
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise WatchlistError(_line(node), "'entities' must be a list")
    entities: list[Entity] = []
    names: dict[str, int] = {}
    for item in node.value:
        fields = _mapping(item, "an entity", _ENTITY_FIELDS)
        if "name" not in fields:
            raise WatchlistError(_line(item), "an entity is missing its 'name'")
        name = _text(fields["name"], "'name'")
        line = _line(fields["name"])
        if name.casefold() in names:
            first = names[name.casefold()]
            raise WatchlistError(line, f"entity name {name!r} is already used on line {first}")
        names[name.casefold()] = line
        lists = {
            key: _texts(fields[key], f"'{key}' of {name!r}")
            for key in _LIST_FIELDS
            if key in fields
        }
        priority = 0
        if "priority" in fields:
            priority_node = fields["priority"]
            if not isinstance(priority_node, yaml.ScalarNode) or priority_node.tag != _INT_TAG:
                raise WatchlistError(
                    _line(priority_node), f"'priority' of {name!r} must be a number"
                )
            priority = int(priority_node.value)
        entities.append(Entity(name=name, priority=priority, **lists))
    return tuple(entities)


def _rules(node: yaml.Node) -> dict[str, RuleOverride]:
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return {}
    rules: dict[str, RuleOverride] = {}
    for event, rule_node in _mapping(node, "'rules'", EVENT_TYPES).items():
        fields = _mapping(rule_node, f"the {event!r} rule", _RULE_FIELDS)
        enabled = True
        if "enabled" in fields:
            flag = fields["enabled"]
            if not isinstance(flag, yaml.ScalarNode) or flag.tag != _BOOL_TAG:
                raise WatchlistError(
                    _line(flag), f"'enabled' of the {event!r} rule must be true/false"
                )
            enabled = str(flag.value).lower() in {"true", "yes", "on", "y"}
        keywords: dict[str, tuple[str, ...]] = {}
        if "keywords" in fields:
            tiers = _mapping(
                fields["keywords"], f"'keywords' of the {event!r} rule", tuple(TIER_WEIGHTS)
            )
            keywords = {
                tier: _texts(value, f"'{tier}' keywords of the {event!r} rule")
                for tier, value in tiers.items()
            }
        cancels = (
            _texts(fields["cancels"], f"'cancels' of the {event!r} rule")
            if "cancels" in fields
            else ()
        )
        min_confidence = None
        if "min_confidence" in fields:
            min_confidence = _fraction(
                fields["min_confidence"], f"'min_confidence' of the {event!r} rule"
            )
        rules[event] = RuleOverride(
            enabled=enabled, keywords=keywords, cancels=cancels, min_confidence=min_confidence
        )
    return rules


def _fraction(node: yaml.Node, what: str) -> float:
    if not isinstance(node, yaml.ScalarNode) or node.tag not in {_INT_TAG, _FLOAT_TAG}:
        raise WatchlistError(_line(node), f"{what} must be a number between 0 and 1")
    value = float(node.value)
    if not 0.0 <= value <= 1.0:
        raise WatchlistError(_line(node), f"{what} must be between 0 and 1")
    return value
