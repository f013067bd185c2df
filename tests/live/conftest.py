"""Fixtures for the live tests; the helpers they use are in support.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.conftest import Accounts, accounts, password_hash  # noqa: F401  (fixtures)
from live.support import WAIT_S, Live, serving, started
from localserver import LocalServer
from sigwatch.api import create_app
from sigwatch.config import Settings


@pytest.fixture
async def live(
    settings: Settings,
    accounts: Accounts,  # noqa: F811  (the fixture imported above)
    server: LocalServer,
) -> AsyncIterator[Live]:
    """The app served by uvicorn, with Nebula, Helix and Orion on the watchlist."""
    async with started(create_app(settings)) as app, serving(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=WAIT_S) as http:
            for entity in (
                {"name": "Nebula Protocol", "aliases": ["Nebula"], "symbols": ["NEB"]},
                {"name": "Helix Network", "aliases": ["Helix"], "symbols": ["HLX"]},
                {"name": "Orion Chain", "aliases": ["Orion"], "symbols": ["ORN"]},
            ):
                created = await http.post(
                    "/api/v1/entities", json=entity, headers=accounts.admin.headers
                )
                assert created.status_code == 201, created.text
            yield Live(app, address, http, accounts, settings, server)
