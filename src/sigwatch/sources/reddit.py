"""Reddit: a subreddit's, a user's or a search's posts, from Reddit's JSON listings.

Without credentials the public listings under ``SIGWATCH_REDDIT_URL`` are read
(``https://www.reddit.com/r/<sub>/new.json``). With a Reddit app's ``client_id`` and
``client_secret`` the source asks ``<reddit_url>/api/v1/access_token`` for an app-only token
(``grant_type=client_credentials``) and reads the same listings from the OAuth host, which
allows more requests and is not blocked where anonymous clients are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from sigwatch.errors import HTTPStatusError, ParseError, SourcePaused
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url, status_error
from sigwatch.net.retry_after import parse_rate_limit_reset, rate_limit_exhausted
from sigwatch.sources.base import BackfillPage, CollectedPost, FetchResult, Platforms
from sigwatch.sources.text import (
    absolutize_urls,
    html_to_multiline_text,
    normalize_whitespace,
    sanitize_html,
)

#: Where posts link to, whatever address the listing was read from.
PUBLIC_URL = "https://www.reddit.com"
#: Reddit's OAuth API host; used when ``reddit_url`` is Reddit's own site.
OAUTH_URL = "https://oauth.reddit.com"
_REDDIT_HOSTS = frozenset({"reddit.com", "www.reddit.com", "old.reddit.com", "new.reddit.com"})
#: The most a listing page holds; Reddit ignores anything larger.
PAGE_LIMIT = 100
Listing = Literal["new", "hot", "top", "rising"]
_SUBREDDIT = re.compile(r"[A-Za-z0-9_]{2,21}")
_USER = re.compile(r"[A-Za-z0-9_-]{3,20}")
MAX_SEARCH_CHARS = 512
#: A token is renewed this long before Reddit says it expires, so no request carries a dead one.
_TOKEN_MARGIN_S = 60.0


def normalize_subreddit(value: str) -> str:
    """The subreddit named by ``value``: ``python``, ``r/python``, a reddit.com address of it,
    or several joined by ``+`` (``python+rust``, read as one listing)."""
    name = _strip_reddit_prefix(value, ("r",))
    parts = name.split("+")
    if not all(_SUBREDDIT.fullmatch(part) for part in parts):
        raise ValueError(
            "must be a subreddit name (2 to 21 letters, digits or underscores), such as `python`, "
            "`r/python` or several joined by `+`"
        )
    return name


def normalize_user(value: str) -> str:
    """The account named by ``value``: ``spez``, ``u/spez``, ``/user/spez`` or its address."""
    name = _strip_reddit_prefix(value, ("u", "user"))
    if not _USER.fullmatch(name):
        raise ValueError(
            "must be a Reddit user name (3 to 20 letters, digits, `-` or `_`), such as `spez` "
            "or `u/spez`"
        )
    return name


def _strip_reddit_prefix(value: str, prefixes: tuple[str, ...]) -> str:
    given = value.strip()
    if "://" in given or given.lower().startswith(("reddit.com/", "www.reddit.com/")):
        parts = urlsplit(given if "://" in given else f"https://{given}")
        if (parts.hostname or "").lower() not in _REDDIT_HOSTS:
            raise ValueError("must be a name or a reddit.com address")
        given = parts.path
    segments = [segment for segment in given.split("/") if segment]
    if len(segments) >= 2 and segments[0].lower() in prefixes:
        return segments[1]
    return segments[0] if len(segments) == 1 else given


class RedditOptions(BaseModel):
    """Options of a Reddit source: exactly one of subreddit, user or search."""

    model_config = ConfigDict(extra="forbid")

    subreddit: str | None = Field(
        None,
        description=(
            "A subreddit's posts: its name (`python`, `r/python`), several joined by `+` "
            "(`python+rust`)."
        ),
    )
    user: str | None = Field(
        None, description="A user's submitted posts: the name (`spez`, `u/spez`)."
    )
    search: str | None = Field(
        None, description="The posts of a Reddit-wide search, in Reddit's search syntax."
    )
    listing: Listing = Field(
        "new",
        description=(
            "Which listing: `new` (newest first, what a monitor wants), `hot`, `top` (of the "
            "day) or `rising` (subreddits only). For a user or a search it is the sort order."
        ),
    )
    client_id: SecretStr | None = Field(
        None,
        description=(
            "The client id of a Reddit app (https://www.reddit.com/prefs/apps, type *script* or "
            "*web app*); with `client_secret`, requests use an app-only OAuth token."
        ),
    )
    client_secret: SecretStr | None = Field(None, description="The Reddit app's secret.")

    @field_validator("subreddit")
    @classmethod
    def _check_subreddit(cls, value: str | None) -> str | None:
        return None if value is None else normalize_subreddit(value)

    @field_validator("user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        return None if value is None else normalize_user(value)

    @field_validator("search")
    @classmethod
    def _check_search(cls, value: str | None) -> str | None:
        if value is None:
            return None
        query = normalize_whitespace(value)
        if not query:
            raise ValueError("must not be blank")
        if len(query) > MAX_SEARCH_CHARS:
            raise ValueError(f"must be at most {MAX_SEARCH_CHARS} characters")
        return query

    @field_validator("client_id", "client_secret")
    @classmethod
    def _check_credential(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        if not text or any(char.isspace() or ord(char) < 0x20 for char in text):
            raise ValueError("must be one word without spaces or control characters")
        return SecretStr(text)

    @model_validator(mode="after")
    def _check_choice(self) -> RedditOptions:
        chosen = [name for name in ("subreddit", "user", "search") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of `subreddit`, `user` or `search` "
                f"(got {', '.join(chosen) if chosen else 'none'})"
            )
        if self.listing == "rising" and self.subreddit is None:
            raise ValueError("listing `rising` exists only for a subreddit: use new, hot or top")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("set both `client_id` and `client_secret`, or neither")
        return self

    def origin(self) -> str:
        """``reddit:r/<sub>:<listing>``, ``reddit:u/<user>:<listing>`` or
        ``reddit:search:<query>:<listing>``, lower-cased: Reddit's names ignore case."""
        if self.subreddit is not None:
            what = f"r/{self.subreddit}"
        elif self.user is not None:
            what = f"u/{self.user}"
        else:
            what = f"search:{self.search}"
        return f"reddit:{what.lower()}:{self.listing}"

    def described(self) -> str:
        """What is read, as a person names it: ``r/python``, ``u/spez``, ``the search "tge"``."""
        if self.subreddit is not None:
            return f"r/{self.subreddit}"
        if self.user is not None:
            return f"u/{self.user}"
        return f'the search "{self.search}"'


@dataclass(slots=True)
class ListingPage:
    """The posts of one listing answer, Reddit's cursor to the next page, and the creation
    times of its posts that are not pinned (pinned posts are old posts shown first)."""

    posts: list[CollectedPost]
    after: str | None
    created: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float


#: App-only tokens by (token URL, digest of the credentials): sources are built for each poll,
#: and a token lives a day, so one is asked for once a day rather than at every poll.
_TOKENS: dict[tuple[str, str], _Token] = {}


def forget_tokens() -> None:
    """Drop every cached OAuth token (tests; a changed secret gets a new key anyway)."""
    _TOKENS.clear()


def oauth_base_url(reddit_url: str) -> str:
    """Where OAuth requests go: Reddit's OAuth host when ``reddit_url`` is Reddit itself, else
    ``reddit_url`` (a proxy or a test server answering both)."""
    host = (urlsplit(reddit_url).hostname or "").lower()
    return OAUTH_URL if host in _REDDIT_HOSTS else reddit_url.rstrip("/")


class RedditSource:
    """Collects the posts of a subreddit, a user or a Reddit search from the JSON listings.

    Each poll reads the first page (up to 100 posts, one request); a backfill follows the
    ``after`` cursor back through the listing (Reddit stops at about 1,000 posts).
    """

    kind: ClassVar[str] = "reddit"
    Options: ClassVar[type[BaseModel]] = RedditOptions

    def __init__(
        self, options: RedditOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client
        self.platforms = platforms or Platforms()

    def listing_url(self, after: str | None = None) -> str:
        """The address of the listing's page after fullname ``after`` (None: the first page)."""
        options = self.options
        base = self._api_base()
        query: dict[str, str | int] = {}
        if options.subreddit is not None:
            path = f"/r/{options.subreddit}/{options.listing}.json"
        elif options.user is not None:
            path = f"/user/{options.user}/submitted.json"
            query["sort"] = options.listing
        else:
            path = "/search.json"
            query.update({"q": options.search or "", "sort": options.listing})
        query.update({"limit": PAGE_LIMIT, "raw_json": 1})
        if after is not None:
            query["after"] = after
        return f"{base}{path}?{urlencode(query)}"

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """The first page of the listing, all of it: storage keeps each post once and updates
        an edited one. For ``new``, warns when the page holds only posts newer than the newest
        seen before (more than a page was posted between polls)."""
        page, wait_s = await self._read_page(None)
        warnings: list[str] = []
        new_state = dict(state)
        if self.options.listing == "new" and page.created:
            previous = state.get("newest_created_utc")
            known = float(previous) if isinstance(previous, int | float) else None
            if known is not None and len(page.created) >= PAGE_LIMIT and min(page.created) > known:
                warnings.append(
                    f"more than {PAGE_LIMIT} posts since the last poll: older ones were not read; "
                    "run a backfill to fetch them, or poll this source more often"
                )
            new_state["newest_created_utc"] = max([*page.created, *([known] if known else [])])
        return FetchResult(posts=page.posts, state=new_state, warnings=warnings, wait_s=wait_s)

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The listing page after ``cursor["after"]`` (None: the first page); its cursor is None
        at the end of the listing."""
        after = None
        if cursor is not None:
            after = cursor.get("after")
            if not isinstance(after, str) or not after:
                raise ParseError(
                    f"the backfill cursor {cursor!r} has no Reddit `after` fullname: start the "
                    "backfill again from the newest posts"
                )
        page, _ = await self._read_page(after)
        next_cursor = {"after": page.after} if page.after and page.posts else None
        return BackfillPage(posts=page.posts, cursor=next_cursor)

    def _api_base(self) -> str:
        reddit_url = self.platforms.reddit_url.rstrip("/")
        return oauth_base_url(reddit_url) if self._has_credentials() else reddit_url

    def _has_credentials(self) -> bool:
        return self.options.client_id is not None and self.options.client_secret is not None

    async def _read_page(self, after: str | None) -> tuple[ListingPage, float | None]:
        """One listing page and the wait Reddit asks for when its rate limit is used up."""
        url = self.listing_url(after)
        response = await self._get(url)
        if urlsplit(response.url).path.startswith(("/subreddits/search", "/search")) and (
            self.options.subreddit is not None
        ):
            # Reddit answers an unknown subreddit by redirecting to a subreddit search: a 404
            # in all but name, so it is treated as one (not retried soon, not paused).
            raise HTTPStatusError(
                f"{_not_found_message(self.options)} (Reddit redirected to its subreddit search)",
                status=404,
            )
        page = parse_listing_response(response, self.options.described())
        wait_s = None
        if rate_limit_exhausted(response.headers):
            wait_s = parse_rate_limit_reset(response.headers)
        return page, wait_s

    async def _get(self, url: str) -> FetchedResponse:
        if not self._has_credentials():
            return await self._get_with(url, {})
        token, cached = await self._token()
        try:
            return await self._get_with(url, {"Authorization": f"bearer {token}"})
        except HTTPStatusError as exc:
            if exc.status != 401 or not cached:
                raise
        # A cached token Reddit has revoked early: ask for a new one, once.
        self._forget_token()
        token, _ = await self._token()
        return await self._get_with(url, {"Authorization": f"bearer {token}"})

    async def _get_with(self, url: str, headers: dict[str, str]) -> FetchedResponse:
        try:
            return await self.client.get(url, headers=headers)
        except HTTPStatusError as exc:
            raise _explained(exc, self.options, authorized=bool(headers)) from None

    def _token_key(self) -> tuple[str, str]:
        client_id = self.options.client_id.get_secret_value() if self.options.client_id else ""
        secret = self.options.client_secret.get_secret_value() if self.options.client_secret else ""
        digest = hashlib.sha256(f"{client_id}\x00{secret}".encode()).hexdigest()
        return (self._token_url(), digest)

    def _token_url(self) -> str:
        return f"{self.platforms.reddit_url.rstrip('/')}/api/v1/access_token"

    def _forget_token(self) -> None:
        _TOKENS.pop(self._token_key(), None)

    async def _token(self) -> tuple[str, bool]:
        """An app-only OAuth token for the source's credentials, and whether it came from the
        cache (where it stays until it expires)."""
        key = self._token_key()
        cached = _TOKENS.get(key)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.value, True
        token = await self._request_token()
        _TOKENS[key] = token
        return token.value, False

    async def _request_token(self) -> _Token:
        assert self.options.client_id is not None and self.options.client_secret is not None
        pair = (
            f"{self.options.client_id.get_secret_value()}:"
            f"{self.options.client_secret.get_secret_value()}"
        )
        url = self._token_url()
        response = await self.client.post(
            url,
            content=b"grant_type=client_credentials",
            headers={
                "Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii"),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        return parse_token_response(response)


def parse_token_response(response: FetchedResponse) -> _Token:
    """The token of an ``access_token`` answer; SourcePaused when Reddit refused the
    credentials (no retry can fix that), HTTPStatusError for other error statuses."""
    shown = redact_url(response.url)
    if response.status in (400, 401, 403):
        raise SourcePaused(_refused_credentials_message(response.status))
    if not 200 <= response.status < 300:
        raise status_error(response.status, "", response.headers, shown)
    data = _json(response.body, shown)
    if isinstance(data, dict) and data.get("error"):
        raise SourcePaused(_refused_credentials_message(response.status, str(data["error"])))
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise ParseError(
            f"Reddit's token endpoint {shown} answered without an access_token: check that "
            "SIGWATCH_REDDIT_URL points at Reddit"
        )
    expires_in = data.get("expires_in")
    lifetime_s = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
    return _Token(token, time.monotonic() + max(0.0, lifetime_s - _TOKEN_MARGIN_S))


def _refused_credentials_message(status: int, error: str | None = None) -> str:
    said = f"HTTP {status}" + (f", {error}" if error else "")
    return (
        f"Reddit refused the app credentials ({said}): check `client_id` and `client_secret` "
        "against the app at https://www.reddit.com/prefs/apps (a *script* or *web app* app), "
        "then edit the source"
    )


def _not_found_message(options: RedditOptions) -> str:
    if options.user is not None:
        return (
            f"u/{options.user} was not found: the account may be deleted, suspended or "
            "misspelt; check https://www.reddit.com/user/" + options.user
        )
    return (
        f"{options.described()} was not found: the subreddit may be banned, deleted or "
        "misspelt; check " + f"{PUBLIC_URL}/r/{options.subreddit}"
    )


def _explained(exc: HTTPStatusError, options: RedditOptions, *, authorized: bool) -> Exception:
    """``exc`` with Reddit's meaning of its status, keeping its facts (status, waits)."""
    if exc.status == 404 and options.search is None:
        message = f"{_not_found_message(options)} ({exc})"
    elif exc.status == 403:
        cure = (
            "check the app's permissions"
            if authorized
            else "or Reddit blocks anonymous clients from this network: set `client_id` and "
            "`client_secret`"
        )
        message = (
            f"Reddit refused access to {options.described()} ({exc}): a private, quarantined "
            f"or banned subreddit, a suspended account, {cure}"
        )
    elif exc.status == 429:
        message = (
            f"{exc}; Reddit allows few anonymous requests: set `client_id` and `client_secret`, "
            "or poll less often"
            if not authorized
            else str(exc)
        )
    else:
        return exc
    return HTTPStatusError(
        message,
        status=exc.status,
        retry_after_s=exc.retry_after_s,
        rate_limit_reset_s=exc.rate_limit_reset_s,
        rate_limit_exhausted=exc.rate_limited and exc.status == 403,
    )


def _json(body: bytes, shown: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ParseError(
            f"{shown} did not answer JSON{where}: the answer was cut off, or this is not "
            "Reddit; check SIGWATCH_REDDIT_URL"
        ) from None


def parse_listing_response(response: FetchedResponse, what: str) -> ListingPage:
    """The posts of a listing answer: one listing, or the array of listings of a comments page.

    ParseError when the body is no listing; SourceError for Reddit's JSON error object.
    """
    shown = redact_url(response.url)
    data = _json(response.body, shown)
    if isinstance(data, dict) and "error" in data and data.get("kind") != "Listing":
        raise ParseError(
            f"Reddit answered {shown} with error {data.get('error')} "
            f"({data.get('message') or data.get('reason') or 'no message'}) for {what}: check "
            "the source's name and listing"
        )
    listings = data if isinstance(data, list) else [data]
    if not listings or not all(_is_listing(item) for item in listings):
        raise ParseError(
            f"{shown} did not answer a Reddit listing (JSON with kind `Listing`): check "
            "SIGWATCH_REDDIT_URL"
        )
    pages = [parse_listing(item) for item in listings]
    return ListingPage(
        posts=[post for page in pages for post in page.posts],
        after=pages[0].after,
        created=[stamp for page in pages for stamp in page.created],
    )


def _is_listing(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("kind") == "Listing"
        and isinstance(value.get("data"), dict)
        and isinstance(value["data"].get("children", []), list)
    )


def parse_listing(listing: dict[str, Any]) -> ListingPage:
    """The posts (``t3``) and comments (``t1``) of one listing, in its order, and its cursor.

    Other children (``more`` stubs, subreddits) are no posts and are left out; pinned posts are
    kept but left out of ``created``, since they are old posts shown first.
    """
    data = listing["data"]
    posts: list[CollectedPost] = []
    created: list[float] = []
    for child in data.get("children") or []:
        post = child_to_post(child)
        if post is None:
            continue
        posts.append(post)
        if not child["data"].get("stickied") and post.published_at is not None:
            created.append(post.published_at.timestamp())
    after = data.get("after")
    return ListingPage(
        posts=posts, after=after if isinstance(after, str) and after else None, created=created
    )


def child_to_post(child: Any) -> CollectedPost | None:
    """A listing child as a post: a link post (``t3``) or a comment (``t1``); None otherwise."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return None
    kind, item = child.get("kind"), child["data"]
    if kind not in ("t3", "t1") or not isinstance(item.get("id"), str):
        return None
    name = item.get("name") if isinstance(item.get("name"), str) else f"{kind}_{item['id']}"
    if kind == "t3":
        title = normalize_whitespace(str(item.get("title") or "")) or None
        text, html = _body(item, "selftext")
        if not text and not item.get("is_self") and isinstance(item.get("url"), str):
            text = item["url"]
    else:
        title = None
        text, html = _body(item, "body")
    return CollectedPost(
        external_id=name,
        text=text,
        url=_permalink(item, kind),
        author=_author(item.get("author")),
        title=title,
        html=html,
        published_at=_created(item.get("created_utc")),
        metrics=_metrics(item),
        raw=child,
    )


def _body(item: dict[str, Any], field_name: str) -> tuple[str, str | None]:
    """Plain text and sanitised HTML of a self post's or comment's body (Markdown as HTML)."""
    rendered = item.get(f"{field_name}_html")
    if isinstance(rendered, str) and rendered.strip():
        # Reddit's Markdown links are site-relative (/r/…, /u/…).
        return html_to_multiline_text(rendered), sanitize_html(
            absolutize_urls(rendered, PUBLIC_URL)
        )
    plain = item.get(field_name)
    return (plain.strip() if isinstance(plain, str) else ""), None


def _permalink(item: dict[str, Any], kind: str) -> str | None:
    permalink = item.get("permalink")
    if isinstance(permalink, str) and permalink.startswith("/"):
        return f"{PUBLIC_URL}{permalink}"
    link_id = item.get("link_id")
    if kind == "t1" and isinstance(link_id, str):
        return f"{PUBLIC_URL}/comments/{link_id.removeprefix('t3_')}/_/{item['id']}/"
    return f"{PUBLIC_URL}/comments/{item['id']}/" if kind == "t3" else None


def _author(name: Any) -> str | None:
    if not isinstance(name, str) or not name or name == "[deleted]":
        return None
    return f"u/{name}"


def _created(value: Any) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _metrics(item: dict[str, Any]) -> dict[str, Any]:
    return {
        name: item[name]
        for name in ("score", "num_comments", "upvote_ratio")
        if isinstance(item.get(name), int | float) and not isinstance(item.get(name), bool)
    }
