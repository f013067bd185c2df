"""The interactive API reference at ``/docs``, served with its assets from this process.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a CDN, so it is blank
on a machine without a network, which sigwatch promises to work on. Here the page points at a
mount of the Swagger UI files that the ``swagger-ui-py`` package ships (Swagger UI 5, which
renders the OpenAPI 3.1 document FastAPI writes). ReDoc is turned off in ``create_app``: no
installed package ships it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from sigwatch.errors import ConfigError

DOCS_URL = "/docs"
#: Where the Swagger UI files are served; under /docs, so they share its rate-limit exemption.
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def swagger_ui_assets_dir() -> Path:
    """The directory of Swagger UI's script, stylesheet and icons inside ``swagger-ui-py``.

    Found without importing the package, whose import loads its web-framework adapters.
    """
    spec = importlib.util.find_spec("swagger_ui")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        assets = Path(location) / "static"
        if (assets / "swagger-ui-bundle.js").is_file():
            return assets
    raise ConfigError(
        "the Swagger UI files for /docs are missing: the swagger-ui-py package is not installed "
        "or is incomplete. Reinstall sigwatch with its dependencies (make install, or "
        "pip install -r requirements.lock)."
    )


def install_swagger_ui(app: FastAPI) -> None:
    """Serve ``/docs`` and its OAuth2 redirect page, loading assets only from this origin.

    Call on an app made with ``docs_url=None``, so FastAPI's CDN-backed page is not added too.
    """
    app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_assets_dir()), name="swagger-ui")

    async def swagger_ui_page(request: Request) -> HTMLResponse:
        # root_path: behind a proxy that mounts sigwatch under a prefix, links keep the prefix.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        )

    async def oauth2_redirect_page(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route(DOCS_URL, swagger_ui_page, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect_page, include_in_schema=False)
