"""Pages built by JavaScript, rendered in a headless Chromium whose every request sigwatch makes.

A browser left to itself would resolve names and open connections on its own, past the SSRF
guard of the outbound client. Here it can do neither: its host resolver maps every name to
nothing (``--host-resolver-rules``), and every request the page makes (the document, scripts,
XHR, stylesheets) is intercepted and fetched through :class:`~sigwatch.net.client.OutboundClient`
(guard, timeouts, size cap, User-Agent), then handed back to the page. Images, media and fonts
are not fetched at all: they draw nothing a selector reads. Service workers are blocked.

Playwright is an extra (``pip install 'sigwatch[render]'``); nothing here is imported until a
source asks for rendering.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from sigwatch.errors import ConfigError, FetchError, HTTPStatusError, SigwatchError
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url

if TYPE_CHECKING:
    from playwright.async_api import Route

log = structlog.get_logger(__name__)

#: What a page may ask for that is never fetched: it cannot change the text a selector reads.
SKIPPED_RESOURCES = frozenset({"image", "media", "font"})
#: The browser resolves no name itself: a request not intercepted goes nowhere.
BROWSER_ARGS = ("--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking")
#: Headers of a fetched answer that describe its encoding on the wire, not the body handed over.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})
#: Request headers the browser sets that the outbound client sets itself, or must not forward.
_NOT_FORWARDED = frozenset({"host", "user-agent", "connection", "content-length", "cookie"})
#: Where Debian and Ubuntu put Chromium, tried when no browser is configured.
SYSTEM_CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def playwright_installed() -> bool:
    """Whether Playwright, which drives the browser, can be imported here."""
    return importlib.util.find_spec("playwright") is not None


def find_browser(configured: str | None) -> str | None:
    """The Chromium to launch: the configured path, else one on PATH; None: Playwright's own."""
    if configured:
        return configured
    for name in SYSTEM_CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_playwright() -> None:
    """ConfigError saying how to install the extra, unless Playwright is importable."""
    if not playwright_installed():
        raise ConfigError(
            "render: true needs Playwright, which is not installed: run "
            "`pip install 'sigwatch[render]'` where sigwatch runs and install Chromium "
            "(`apt install chromium`, or `playwright install chromium`), "
            "or set render to false (most news pages need no browser)"
        )


async def render_page(
    url: str, client: OutboundClient, *, browser_path: str | None = None
) -> FetchedResponse:
    """The HTML of ``url`` once its scripts have run, as a 200 answer; every request through
    ``client``. FetchError when the page cannot be rendered within the client's timeout."""
    require_playwright()
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    shown = redact_url(url)
    try:
        async with asyncio.timeout(client.timeout_s * 2), async_playwright() as playwright:
            try:
                browser = await playwright.chromium.launch(
                    executable_path=find_browser(browser_path), args=list(BROWSER_ARGS)
                )
            except PlaywrightError as exc:
                raise ConfigError(
                    f"the headless browser did not start ({_first_line(exc)}): install "
                    "Chromium (`apt install chromium`) or set SIGWATCH_BROWSER_PATH to it"
                ) from None
            try:
                context = await browser.new_context(
                    service_workers="block", user_agent=client.user_agent
                )
                await context.route("**/*", lambda route: _fetch_for_page(route, client))
                page = await context.new_page()
                await page.goto(url, wait_until="load", timeout=client.timeout_s * 1000)
                try:  # scripts that fetch their items after load: give them a moment
                    await page.wait_for_load_state("networkidle", timeout=2000)
                except PlaywrightError:
                    pass
                html = await page.content()
                final_url = page.url
            finally:
                await browser.close()
    except TimeoutError:
        raise FetchError(
            f"rendering {shown} took longer than {client.timeout_s * 2:g}s: the page may keep "
            "loading forever; set render to false if its HTML holds the items already"
        ) from None
    except PlaywrightError as exc:
        raise FetchError(f"rendering {shown} failed: {_first_line(exc)}") from None
    return FetchedResponse(
        url=final_url,
        status=200,
        headers=httpx.Headers({"content-type": "text/html; charset=utf-8"}),
        body=html.encode("utf-8"),
    )


async def _fetch_for_page(route: Route, client: OutboundClient) -> None:
    """Answer one of the page's requests with what the outbound client fetched for it."""
    request = route.request
    if request.resource_type in SKIPPED_RESOURCES or request.method not in ("GET", "POST"):
        await route.abort("blockedbyclient")
        return
    headers = _forwarded(request.headers)
    try:
        if request.method == "GET":
            answer = await client.get(request.url, headers=headers)
        else:
            answer = await client.post(
                request.url, content=request.post_data_buffer or b"", headers=headers
            )
    except HTTPStatusError as exc:
        await route.fulfill(status=exc.status, body=b"")
        return
    except SigwatchError as exc:  # refused by the guard, timed out, too large
        log.debug("rendered page request refused", url=redact_url(request.url), error=str(exc))
        await route.abort("blockedbyclient")
        return
    await route.fulfill(
        status=answer.status, headers=_handed_over(answer.headers), body=answer.body
    )


def _forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in _NOT_FORWARDED}


def _handed_over(headers: httpx.Headers) -> dict[str, Any]:
    return {name: value for name, value in headers.items() if name.lower() not in _WIRE_HEADERS}


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
