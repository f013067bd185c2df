"""Presets of the ``json`` source kind: ready-made configs for well-known JSON APIs.

A preset is a name, a few parameters of its own (Binance's ``catalog_id``) and a function that
turns them into an ordinary ``json`` config. A config naming a preset, such as ``{"preset":
"binance_announcements", "catalog_id": 161}``, is expanded by the ``json`` options model
itself, so the API, the CLI and the dashboard take presets through one door. What is stored is
the plain config the preset expanded to: the source can then be read and edited like any other.

Every preset here was checked against recorded answers of its API (``../shared/corpus``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sigwatch.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Preset:
    """A named set of ``json`` options: its parameters model and how they expand."""

    name: str
    summary: str
    parameters: type[BaseModel]
    expand: Callable[[Any], dict[str, Any]]

    def parameter_names(self) -> tuple[str, ...]:
        """The preset's own parameters, in declaration order."""
        return tuple(self.parameters.model_fields)

    def describe(self) -> str:
        """One line for help and docs: name, parameters with defaults, and what it collects."""
        params = ", ".join(
            f"{name}={info.default!r}" for name, info in self.parameters.model_fields.items()
        )
        return f"{self.name} ({params}): {self.summary}"


#: Binance's announcement list, the endpoint its support pages load their lists from.
BINANCE_LIST_URL = "https://www.binance.com/bapi/composite/v1/public/cms/article/list/query"
#: Where an announcement is read, by its ``code``.
BINANCE_ARTICLE_URL = "https://www.binance.com/en/support/announcement/{code}"
#: The catalogs seen in Binance's answers, by id.
BINANCE_CATALOGS: dict[int, str] = {
    48: "New Cryptocurrency Listing",
    49: "Latest Binance News",
    93: "Latest Activities",
    50: "New Fiat Listings",
    161: "Delisting",
    157: "Maintenance Updates",
    51: "API Updates",
    128: "Crypto Airdrop",
}


class BinanceAnnouncementsParameters(BaseModel):
    """Parameters of the ``binance_announcements`` preset."""

    model_config = ConfigDict(extra="forbid")

    catalog_id: int | None = Field(
        48,
        ge=1,
        description=(
            "The catalog to watch: "
            + ", ".join(f"{number} {name}" for number, name in BINANCE_CATALOGS.items())
            + "; `all` (or null) for every catalog at once."
        ),
    )
    page_size: int = Field(20, ge=1, le=50, description="Articles per catalog and poll, 1-50.")

    @field_validator("catalog_id", mode="before")
    @classmethod
    def _all_catalogs(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("all", ""):
            return None
        return value


def _binance_announcements(params: BinanceAnnouncementsParameters) -> dict[str, Any]:
    """The json config of Binance's newest announcements in one catalog (or all of them).

    The answer holds ``data.catalogs[]``, each with its ``articles[]`` (``id``, ``code``,
    ``title``, ``releaseDate`` in epoch milliseconds); a list carries no article body, so the
    title is the post's text.
    """
    query: dict[str, int] = {"type": 1}
    if params.catalog_id is not None:
        query["catalogId"] = params.catalog_id
    query.update(pageNo=1, pageSize=params.page_size)
    return {
        "url": f"{BINANCE_LIST_URL}?{urlencode(query)}",
        "items": "data.catalogs[].articles[]",
        "id": "id",
        "title": "title",
        "link": BINANCE_ARTICLE_URL,
        "date": "releaseDate",
    }


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="binance_announcements",
            summary=(
                "Binance's announcements of one catalog (48 new listings, 161 delistings, "
                "128 airdrops), newest first"
            ),
            parameters=BinanceAnnouncementsParameters,
            expand=_binance_announcements,
        ),
    )
}


def preset_named(name: object) -> Preset:
    """The preset called ``name``; InvalidInput on ``preset`` listing the known ones."""
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise InvalidInput(
            "preset", f"there is no such preset; use one of: {', '.join(sorted(PRESETS))}"
        )
    return preset


def expand_preset(name: str, **params: Any) -> dict[str, Any]:
    """The ``json`` config that preset ``name`` gives with ``params``.

    InvalidInput for an unknown preset or parameter; pydantic's ValidationError, naming the
    parameter, for a value the preset refuses.
    """
    preset = preset_named(name)
    unknown = [key for key in params if key not in preset.parameter_names()]
    if unknown:
        raise InvalidInput(unknown[0], _not_a_parameter(preset))
    return preset.expand(preset.parameters.model_validate(params))


def expand_preset_config(config: Mapping[str, Any], options: Collection[str]) -> dict[str, Any]:
    """``config`` (naming a ``preset``) as the json config it stands for.

    Keys of ``config`` are the preset's parameters or ``json`` options (``options``); options
    given override what the preset sets (``headers``, or another ``title``). Errors as
    :func:`expand_preset`.
    """
    preset = preset_named(config.get("preset"))
    names = preset.parameter_names()
    unknown = [key for key in config if key != "preset" and key not in names and key not in options]
    if unknown:
        raise InvalidInput(unknown[0], _not_a_parameter(preset, also_options=True))
    params = {key: value for key, value in config.items() if key in names}
    overrides = {key: value for key, value in config.items() if key in options and key != "preset"}
    return {**expand_preset(preset.name, **params), **overrides}


def split_preset_assignments(
    name: str, assignments: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """``key=value`` pairs split into preset ``name``'s parameters and the rest (json options).

    InvalidInput for an unknown preset, or a parameter given without a value.
    """
    names = preset_named(name).parameter_names()
    params: dict[str, str] = {}
    rest: list[str] = []
    for assignment in assignments:
        key, has_value, value = assignment.partition("=")
        if key.strip() not in names:
            rest.append(assignment)
        elif not has_value:
            raise InvalidInput(key.strip(), f"give a value, as --set {key.strip()}=VALUE")
        else:
            params[key.strip()] = value
    return params, rest


def presets_help() -> str:
    """The presets, one sentence each, for the ``preset`` option's description."""
    return "; ".join(preset.describe() for preset in PRESETS.values()) + "."


def _not_a_parameter(preset: Preset, *, also_options: bool = False) -> str:
    names = ", ".join(preset.parameter_names())
    options = " nor a json option" if also_options else ""
    return f"is not a parameter of preset {preset.name} ({names}){options}"
