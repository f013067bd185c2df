"""/docs works offline: its page names only assets this app serves, and they are served."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest


class _AssetLinks(HTMLParser):
    """Collects the ``src`` of scripts and the ``href`` of links in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


async def _docs_asset_urls(client) -> list[str]:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = _AssetLinks()
    links.feed(page.text)
    return links.urls


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_docs_page_names_only_same_origin_assets(client, accounts):
    urls = await _docs_asset_urls(client)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    assert any(url.endswith("swagger-ui.css") for url in urls)
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
    # Not even the inline script reaches out: no absolute URL anywhere in the page.
    assert "://" not in (await client.get("/docs")).text


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_every_asset_the_docs_page_names_is_served(client, accounts):
    expected_types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in await _docs_asset_urls(client):
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert expected_types[suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 0, url


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_docs_page_loads_the_openapi_document_and_a_local_oauth2_redirect(client, accounts):
    page = (await client.get("/docs")).text
    assert "url: '/openapi.json'" in page
    assert "/docs/oauth2-redirect" in page
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_redoc_is_not_offered_because_it_would_need_a_cdn(client, accounts):
    assert (await client.get("/redoc")).status_code == 404


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_docs_pages_stay_out_of_the_openapi_document(client, accounts):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not any(path.startswith("/docs") for path in paths)
