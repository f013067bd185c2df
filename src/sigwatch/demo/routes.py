"""HTTP routes that serve the demo feeds from the API process itself."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from sigwatch.db.types import utcnow
from sigwatch.demo.feeds import DEMO_FEEDS, render_feed

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

_BY_SLUG = {feed.slug: feed for feed in DEMO_FEEDS}


@router.get("/feeds/{slug}.xml")
async def demo_feed(slug: str, request: Request) -> Response:
    """Serve one demo feed, answering 304 when the client already has the newest item."""
    feed = _BY_SLUG.get(slug)
    if feed is None:
        raise HTTPException(404, f"no demo feed {slug!r}")
    base_url = str(request.base_url).rstrip("/")
    body, etag = render_feed(feed, base_url, utcnow())
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/rss+xml", headers={"ETag": etag})
