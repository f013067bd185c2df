"""The source kinds and channel kinds, each with the JSON Schema of its options.

Both lists are drawn from the kinds' registries, as the CLI's ``--set`` help, the docs tables
and the dashboard's forms are, so every client shows the same options. The OpenAPI document
carries the current lists as the example of each answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sigwatch.api.deps import CurrentPrincipal
from sigwatch.api.kind_schemas import KindOut
from sigwatch.api.routes import API_PREFIX
from sigwatch.delivery.channels.registry import CHANNEL_REGISTRY
from sigwatch.kinds import KindRegistry
from sigwatch.sources.registry import SOURCE_REGISTRY

router = APIRouter(prefix=API_PREFIX, tags=["kinds"])


def kinds_out(registry: KindRegistry[Any]) -> list[KindOut]:
    """Every kind of ``registry``, by name."""
    return [KindOut.of(registry.describe(kind)) for kind in registry.names()]


def _example(registry: KindRegistry[Any]) -> dict[int | str, dict[str, Any]]:
    listed = [kind.model_dump() for kind in kinds_out(registry)]
    return {200: {"content": {"application/json": {"example": listed}}}}


@router.get("/source-kinds", responses=_example(SOURCE_REGISTRY))
async def list_source_kinds(_principal: CurrentPrincipal) -> list[KindOut]:
    """The kinds of source you can add, with the options each takes."""
    return kinds_out(SOURCE_REGISTRY)


@router.get("/channel-kinds", responses=_example(CHANNEL_REGISTRY))
async def list_channel_kinds(_principal: CurrentPrincipal) -> list[KindOut]:
    """The kinds of channel you can add, with the options each takes."""
    return kinds_out(CHANNEL_REGISTRY)
