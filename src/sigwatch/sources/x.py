"""X (Twitter): an account's posts (``x_user``) and a recent search (``x_search``), API v2.

Both kinds read ``/2/...`` JSON answers with the expansions that name each post's author, its
media and the posts it quotes, retweets or replies to, and keep the newest id seen
(``since_id``) so each poll asks only for what is new. ``x_user`` resolves the account's id
once and keeps it in the fetch state. An account can also be read without a paid API plan,
through a self-hosted RSSHub or Nitter instance (``via``), with the RSS kind's parser.

What X says decides what the scheduler does: an exhausted rate limit on a good answer delays
the next poll to the reset (``FetchResult.wait_s``), a 429 is an ``HTTPStatusError`` carrying
the reset, a refused token (401/403) pauses the source until a person fixes it, and errors
beside data in a 200 answer are warnings.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from sigwatch.errors import HTTPStatusError, ParseError, SourceError, SourcePaused
from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url, url_problem
from sigwatch.net.retry_after import describe_wait, parse_rate_limit_reset, rate_limit_exhausted
from sigwatch.sources.base import BackfillPage, CollectedPost, FetchResult, Platforms
from sigwatch.sources.rss import MAX_URL_CHARS, RssOptions, RssSource
from sigwatch.sources.text import sanitize_html, text_to_html

_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
MAX_QUERY_CHARS = 512
#: The most posts one request may ask for (timelines and recent search alike).
PAGE_SIZE = 100
#: Pages one poll follows when more new posts arrived than one page holds.
MAX_PAGES_PER_POLL = 5
_EXPANSIONS = {
    "expansions": "author_id,attachments.media_keys,referenced_tweets.id",
    "tweet.fields": "created_at,public_metrics,entities,referenced_tweets,conversation_id,lang",
    "user.fields": "username,name",
    "media.fields": "url,preview_image_url,type",
    "max_results": str(PAGE_SIZE),
}
# A post's address on X, RSSHub or Nitter: /<account>/status/<id>, whatever the host.
_STATUS_PATH = re.compile(r"^/(?P<username>[A-Za-z0-9_]{1,15})/status(?:es)?/(?P<id>\d+)")
_EDIT_TOKEN = "`sigwatch source edit ID --set bearer_token=-`"
_RESUME = "`sigwatch source resume ID`"


def _check_token(value: SecretStr | None) -> SecretStr | None:
    """A bearer token on one line, without a ``Bearer`` prefix pasted along with it."""
    if value is None:
        return None
    token = value.get_secret_value().strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer ") :].strip()
    if not token:
        raise ValueError("must not be blank: leave it out to use SIGWATCH_X_BEARER_TOKEN")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in token):
        raise ValueError("must be one word without spaces or control characters")
    return SecretStr(token)


_TOKEN_DESCRIPTION = (
    "X API bearer token (app-only); when left out, the operator's SIGWATCH_X_BEARER_TOKEN is used."
)


class XUserOptions(BaseModel):
    """Options of an ``x_user`` source: one account's posts."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(description="The account's @username (1-15 letters, digits or _).")
    bearer_token: SecretStr | None = Field(None, description=_TOKEN_DESCRIPTION)
    include_replies: bool = Field(False, description="Also collect the account's replies.")
    include_retweets: bool = Field(True, description="Also collect the account's retweets.")
    via: Literal["api", "rsshub", "nitter"] = Field(
        "api",
        description=(
            "Where the posts are read: `api` (X API v2, needs a token), or the account's feed "
            "on a self-hosted `rsshub` or `nitter` instance at `bridge_url`."
        ),
    )
    bridge_url: str | None = Field(
        None,
        validate_default=True,
        description="Base URL of the RSSHub or Nitter instance; required when `via` is not api.",
    )

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str) -> str:
        name = value.strip().removeprefix("@")
        if not _USERNAME.fullmatch(name):
            raise ValueError(
                "must be an X username: 1 to 15 letters, digits or underscores, e.g. XDevelopers"
            )
        return name

    @field_validator("bearer_token")
    @classmethod
    def _check_bearer_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_token(value)

    @field_validator("bridge_url")
    @classmethod
    def _check_bridge_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        via = info.data.get("via")
        if value is None:
            if via in ("rsshub", "nitter"):
                raise ValueError(
                    f"is required when via is {via}: give the base URL of your "
                    f"{'RSSHub' if via == 'rsshub' else 'Nitter'} instance"
                )
            return None
        value = value.strip()
        if len(value) > MAX_URL_CHARS:
            raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. https://rsshub.example")
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        if parts.query or parts.fragment:
            raise ValueError("must be the instance's base URL, without a query or fragment")
        return value.rstrip("/")

    def origin(self) -> str:
        """The account, whatever way it is read: one owner follows an account once."""
        return f"x:user:{self.username.lower()}"

    def feed_url(self) -> str:
        """The account's feed on the bridge (``via`` rsshub or nitter)."""
        if self.via == "rsshub":
            return f"{self.bridge_url}/twitter/user/{self.username}"
        return f"{self.bridge_url}/{self.username}/rss"


class XSearchOptions(BaseModel):
    """Options of an ``x_search`` source: posts of the last seven days matching a query."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        description="An X search query (operators allowed), at most 512 characters, e.g. "
        '`"token launch" -is:retweet lang:en`.'
    )
    bearer_token: SecretStr | None = Field(None, description=_TOKEN_DESCRIPTION)

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: str) -> str:
        query = value.strip()
        if not query:
            raise ValueError("must not be blank: give the words or operators to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise ValueError(
                f"must be at most {MAX_QUERY_CHARS} characters (the recent search's limit)"
            )
        return query

    @field_validator("bearer_token")
    @classmethod
    def _check_bearer_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_token(value)

    def origin(self) -> str:
        """The query as given (trimmed): one owner runs the same search once."""
        return f"x:search:{self.query}"


# --- reading X API v2 answers -------------------------------------------------------------


@dataclass(slots=True)
class Includes:
    """The ``includes`` of an answer, indexed: users and posts by id, media by key."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    tweets: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> Includes:
        """Index ``answer["includes"]``, ignoring whatever is not shaped as X sends it."""
        includes = answer.get("includes")
        if not isinstance(includes, dict):
            return cls()
        return cls(
            users=_index(includes.get("users"), "id"),
            tweets=_index(includes.get("tweets"), "id"),
            media=_index(includes.get("media"), "media_key"),
        )


@dataclass(slots=True)
class TweetsPage:
    """The posts of one answer, in X's order (newest first), and what it says of the rest."""

    posts: list[CollectedPost]
    newest_id: str | None
    next_token: str | None
    warnings: list[str]


def decode_answer(body: bytes, shown_url: str) -> dict[str, Any]:
    """The JSON object of an X API v2 answer; ParseError when the body is not one."""
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(
            f"{shown_url} did not answer X API JSON ({exc}): check SIGWATCH_X_API_URL points at "
            "the X API (https://api.x.com); a cut-off answer is retried at the next poll"
        ) from None
    if not isinstance(answer, dict) or not answer.keys() & {"data", "errors", "meta"}:
        raise ParseError(
            f"{shown_url} answered JSON that is not an X API v2 answer (no data, meta or "
            "errors): check SIGWATCH_X_API_URL points at the X API (https://api.x.com)"
        )
    return answer


def answer_problems(answer: Mapping[str, Any]) -> list[str]:
    """The ``errors`` of an answer as sentences: title, detail and the resource concerned."""
    errors = answer.get("errors")
    if not isinstance(errors, list):
        return []
    return [_problem(error) for error in errors if isinstance(error, dict)]


def read_tweets(
    answer: Mapping[str, Any], *, username: str | None = None, account_id: str | None = None
) -> TweetsPage:
    """The posts of an answer whose ``data`` is a list of posts (or one post object).

    ``username`` is whose posts these are when the answer names no author (a timeline asked
    for without expansions): a post by ``account_id``, or by nobody named, is theirs.
    ParseError when ``data`` holds things but no post.
    """
    data = answer.get("data")
    items = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    includes = Includes.of(answer)
    tweets = [item for item in items if _is_tweet(item)]
    if items and not tweets:
        raise ParseError(
            "the X answer's data holds no posts (no id and text): the endpoint answered "
            "something else; check SIGWATCH_X_API_URL"
        )
    warnings = [f"X reported a problem: {problem}" for problem in answer_problems(answer)]
    if len(tweets) < len(items):
        warnings.append(
            f"skipped {len(items) - len(tweets)} item(s) of X's answer that are no post"
        )
    posts = [_tweet_to_post(t, includes, username, account_id) for t in tweets]
    meta = answer.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    newest = _newest([str(meta.get("newest_id") or ""), *(p.external_id for p in posts)])
    next_token = meta.get("next_token")
    return TweetsPage(
        posts=posts,
        newest_id=newest,
        next_token=next_token if isinstance(next_token, str) and next_token else None,
        warnings=warnings,
    )


def read_user(answer: Mapping[str, Any], username: str) -> tuple[str, str]:
    """The id and the username (as X spells it) of ``username`` in a user lookup answer.

    SourcePaused when X has no such account (or a suspended one): polling cannot fix that.
    """
    data = answer.get("data")
    users = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    users = [u for u in users if isinstance(u, dict) and isinstance(u.get("id"), str)]
    if not users:
        said = "; ".join(answer_problems(answer)) or "no such user in the answer"
        raise SourcePaused(
            f"X shows no account @{username} ({said}): check the username, set the right one "
            f"with `sigwatch source edit ID --set username=NAME`, then {_RESUME}"
        )
    wanted = username.lower()
    user = next((u for u in users if str(u.get("username", "")).lower() == wanted), users[0])
    return str(user["id"]), str(user.get("username") or username)


def _is_tweet(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and "text" in item


def _tweet_to_post(
    tweet: dict[str, Any], includes: Includes, username: str | None, account_id: str | None
) -> CollectedPost:
    """One post: the @author from the includes, its media and referenced posts, its metrics."""
    author_id = tweet.get("author_id")
    author = includes.users.get(str(author_id)) if author_id is not None else None
    name = author.get("username") if author else None
    if not name and (author_id is None or author_id == account_id):
        name = username
    text = html.unescape(str(tweet.get("text") or ""))
    media = [includes.media[key] for key in _media_keys(tweet) if key in includes.media]
    referenced = _referenced(tweet, includes)
    raw: dict[str, Any] = {"data": tweet, "includes": _used(author, referenced, media, includes)}
    media_urls = [
        url for item in media if (url := item.get("url") or item.get("preview_image_url"))
    ]
    if media_urls:
        raw["media_urls"] = media_urls
    return CollectedPost(
        external_id=tweet["id"],
        text=text,
        url=status_url(name, tweet["id"]),
        author=f"@{name}" if name else None,
        html=_post_html(text, media, referenced, includes),
        published_at=_created_at(tweet.get("created_at")),
        metrics=_metrics(tweet.get("public_metrics")),
        raw=raw,
    )


def _used(
    author: dict[str, Any] | None,
    referenced: list[tuple[str, dict[str, Any]]],
    media: list[dict[str, Any]],
    includes: Includes,
) -> dict[str, list[dict[str, Any]]]:
    """The includes one post drew on, in the answer's shape: its author, posts and media."""
    users: dict[str, dict[str, Any]] = {}
    for user in [author, *(includes.users.get(str(ref.get("author_id"))) for _, ref in referenced)]:
        if user is not None:
            users.setdefault(str(user.get("id")), user)
    used = {"users": list(users.values()), "tweets": [ref for _, ref in referenced], "media": media}
    return {name: items for name, items in used.items() if items}


def status_url(username: str | None, tweet_id: str) -> str:
    """The post's address on x.com (``/i/web/status/ID`` when the author is unknown)."""
    return f"https://x.com/{username or 'i/web'}/status/{tweet_id}"


def _media_keys(tweet: Mapping[str, Any]) -> list[str]:
    attachments = tweet.get("attachments")
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    return [str(key) for key in keys] if isinstance(keys, list) else []


def _referenced(tweet: Mapping[str, Any], includes: Includes) -> list[tuple[str, dict[str, Any]]]:
    """The posts ``tweet`` quotes, retweets or replies to that the includes hold, with the how."""
    found = []
    for reference in tweet.get("referenced_tweets") or []:
        if isinstance(reference, dict) and str(reference.get("id")) in includes.tweets:
            found.append(
                (str(reference.get("type", "referenced")), includes.tweets[str(reference["id"])])
            )
    return found


def _post_html(
    text: str,
    media: list[dict[str, Any]],
    referenced: list[tuple[str, dict[str, Any]]],
    includes: Includes,
) -> str:
    """The post for display: its text, its media as links, and the posts it refers to."""
    parts = [text_to_html(text)]
    for item in media:
        url = item.get("url") or item.get("preview_image_url")
        if isinstance(url, str) and url.startswith("https://"):
            kind = html.escape(str(item.get("type") or "media"))
            parts.append(f'<p><a href="{html.escape(url)}">{kind}</a></p>')
    for how, ref in referenced:
        ref_author = includes.users.get(str(ref.get("author_id")), {}).get("username")
        link = status_url(ref_author, str(ref.get("id")))
        who = f"@{ref_author}" if ref_author else "a post"
        quoted = text_to_html(html.unescape(str(ref.get("text") or "")))
        parts.append(
            f'<blockquote><p>{html.escape(how)} <a href="{link}">{html.escape(who)}</a></p>'
            f"{quoted}</blockquote>"
        )
    return sanitize_html("".join(parts))


def _created_at(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _metrics(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def _problem(error: Mapping[str, Any]) -> str:
    title = str(error.get("title") or error.get("type") or "error")
    detail = str(error.get("detail") or error.get("message") or "").strip()
    resource = error.get("resource_id") or error.get("value")
    said = f"{title}: {detail}" if detail else title
    if resource is not None and str(resource) not in detail:
        kind = error.get("resource_type") or "resource"
        said += f" ({kind} {resource})"
    return said


def _index(items: object, key: str) -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(i[key]): i for i in items if isinstance(i, dict) and i.get(key) is not None}


def _is_newer(tweet_id: str, since_id: str | None) -> bool:
    """True unless ``tweet_id`` is ``since_id`` or older (X's ids grow with time)."""
    if since_id is None or not tweet_id.isdigit() or not since_id.isdigit():
        return True
    return int(tweet_id) > int(since_id)


def _newest(ids: list[str]) -> str | None:
    numeric = [i for i in ids if i.isdigit()]
    return max(numeric, key=int) if numeric else None


# --- talking to the API --------------------------------------------------------------------


class XApi:
    """GETs X API v2 JSON with the bearer token and turns X's refusals into sigwatch's errors.

    ``wait_s`` is the longest wait an answer asked for by saying no requests remain (the
    seconds until its ``x-rate-limit-reset``), None while requests remain.
    """

    def __init__(
        self, client: OutboundClient, platforms: Platforms, token: SecretStr | None, kind: str
    ) -> None:
        self.client = client
        self.base_url = platforms.x_api_url.rstrip("/")
        own = token.get_secret_value() if token is not None else None
        self.token = own or platforms.x_bearer_token
        self.token_source = "the source's bearer_token" if own else "SIGWATCH_X_BEARER_TOKEN"
        self.kind = kind
        self.wait_s: float | None = None

    def require_token(self) -> str:
        """The token to send; SourceError saying how to set one when there is none."""
        if not self.token:
            hint = (
                ", or read the account with via=rsshub or via=nitter"
                if self.kind == "x_user"
                else ""
            )
            raise SourceError(
                f"{self.kind} needs an X API bearer token and none is set: give this source one "
                f"with {_EDIT_TOKEN}, or every X source one with SIGWATCH_X_BEARER_TOKEN{hint}"
            )
        return self.token

    async def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """The JSON answer of ``GET path?params``; SourceError subclasses when there is none."""
        token = self.require_token()
        url = f"{self.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            response = await self.client.get(url, headers={"Authorization": f"Bearer {token}"})
        except HTTPStatusError as exc:
            raise self._refusal(exc, path) from None
        self._note_rate_limit(response)
        return decode_answer(response.body, redact_url(response.url))

    def _note_rate_limit(self, response: FetchedResponse) -> None:
        if not rate_limit_exhausted(response.headers):
            return
        wait = parse_rate_limit_reset(response.headers)
        if wait is not None:
            self.wait_s = max(wait, self.wait_s or 0.0)

    def _refusal(self, error: HTTPStatusError, path: str) -> SourceError:
        """What an error status from X means: a pause for a refused token, else the error."""
        if error.status == 401:
            return SourcePaused(
                f"X refused {self.token_source} (HTTP 401 Unauthorized): it is wrong, expired or "
                f"revoked. Set a valid one with {_EDIT_TOKEN} (or SIGWATCH_X_BEARER_TOKEN for "
                f"every X source), then {_RESUME}"
            )
        if error.status == 403 and not error.rate_limited:
            return SourcePaused(
                f"X refused access to {path} with {self.token_source} (HTTP 403 Forbidden): the "
                "token's app lacks this endpoint on its API plan, or the account is protected or "
                f"suspended. Use a token whose plan includes it with {_EDIT_TOKEN}, then {_RESUME}"
            )
        if error.rate_limited:
            waits = (
                f"asked to wait {describe_wait(error.wait_s)}, until its rate-limit window "
                "resets; sigwatch polls again after that"
                if error.wait_s is not None
                else "gave no reset time; sigwatch waits longer each time"
            )
            message = (
                f"X is rate-limiting {self.token_source} (HTTP {error.status}) and {waits}; "
                "raise this source's poll interval if it keeps happening"
            )
        elif error.retryable:
            message = f"X failed (HTTP {error.status}) for {path}; sigwatch tries again later"
        else:
            message = (
                f"X rejected the request for {path} (HTTP {error.status}): check the source's "
                "options (the username, or the query's syntax)"
            )
        return HTTPStatusError(
            message,
            status=error.status,
            retry_after_s=error.retry_after_s,
            rate_limit_reset_s=error.rate_limit_reset_s,
            rate_limit_exhausted=error.rate_limited,
        )


# --- polling and paging a listing of posts --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """One X listing of posts: its path, its own parameters, and whose posts it holds."""

    path: str
    params: Mapping[str, str]
    username: str | None = None
    account_id: str | None = None

    def request(self, **extra: str) -> dict[str, str]:
        """The query parameters of a request: expansions, the listing's own, then ``extra``."""
        return {**_EXPANSIONS, **self.params, **extra}


async def poll_listing(
    api: XApi, listing: Listing, state: dict[str, Any], *, stale_since_id_is_400: bool = False
) -> FetchResult:
    """What is new in ``listing`` since ``state["since_id"]`` (everything on the first poll).

    The first poll takes the newest page only: older posts are a backfill's job. A later poll
    keeps only posts newer than ``since_id`` and follows ``next_token`` through up to
    :data:`MAX_PAGES_PER_POLL` pages of them, stopping early when the rate limit is spent.

    ``stale_since_id_is_400``: the listing refuses a ``since_id`` older than it reaches
    (recent search: seven days) with 400, so one such refusal starts over from the newest.
    """
    since_id = state.get("since_id") if isinstance(state.get("since_id"), str) else None
    try:
        return await _poll_from(api, listing, state, since_id)
    except HTTPStatusError as exc:
        if not (stale_since_id_is_400 and since_id and exc.status == 400):
            raise
    result = await _poll_from(api, listing, state, None)
    result.warnings.append(
        "X refused the last seen post id as too old for this listing; started again from the "
        "newest posts (some posts in between may be missing)"
    )
    return result


async def _poll_from(
    api: XApi, listing: Listing, state: dict[str, Any], since_id: str | None
) -> FetchResult:
    extra = {"since_id": since_id} if since_id else {}
    posts: list[CollectedPost] = []
    warnings: list[str] = []
    newest = since_id
    token: str | None = None
    for _ in range(MAX_PAGES_PER_POLL):
        paging = {"pagination_token": token} if token else {}
        page = read_tweets(
            await api.get(listing.path, listing.request(**extra, **paging)),
            username=listing.username,
            account_id=listing.account_id,
        )
        known = {post.external_id for post in posts}
        fresh = [
            post
            for post in page.posts
            if post.external_id not in known and _is_newer(post.external_id, since_id)
        ]
        posts.extend(fresh)
        warnings.extend(w for w in page.warnings if w not in warnings)
        newest = _newest([newest or "", page.newest_id or ""])
        token = page.next_token
        if since_id is None or token is None or not fresh or api.wait_s is not None:
            break
    else:
        warnings.append(
            f"more than {MAX_PAGES_PER_POLL * PAGE_SIZE} new posts since the last poll: the "
            "oldest of them were not collected; poll this source more often, or run a backfill"
        )
    new_state = dict(state)
    if newest is not None:
        new_state["since_id"] = newest
    return FetchResult(posts=posts, state=new_state, warnings=warnings, wait_s=api.wait_s)


async def backfill_listing(
    api: XApi, listing: Listing, cursor: dict[str, Any] | None
) -> tuple[TweetsPage, dict[str, Any] | None]:
    """One page of ``listing`` from ``cursor`` (None: the newest), and the next page's cursor."""
    token = cursor.get("pagination_token") if cursor else None
    paging = {"pagination_token": str(token)} if token else {}
    answer = await api.get(listing.path, listing.request(**paging))
    page = read_tweets(answer, username=listing.username, account_id=listing.account_id)
    return page, {"pagination_token": page.next_token} if page.next_token else None


# --- the account's feed on a bridge (RSSHub, Nitter) ----------------------------------------


class Bridge:
    """An account's posts read from its RSS feed on a self-hosted RSSHub or Nitter instance.

    The feed is fetched and parsed by the RSS kind (conditional GET included); each item becomes
    a post shaped as the API's: the tweet id from its status link, the x.com address, the
    @username. Retweets are recognised by a status link to another account (or Nitter's
    ``RT by`` title), replies by Nitter's ``R to`` title.
    """

    def __init__(self, options: XUserOptions, client: OutboundClient) -> None:
        self.options = options
        self.feed_url = options.feed_url()
        self.feed = RssSource(RssOptions(url=self.feed_url), client)

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """The posts of the account's feed; ParseError when the bridge answers no feed."""
        name = "RSSHub" if self.options.via == "rsshub" else "Nitter"
        try:
            result = await self.feed.fetch(state)
        except ParseError:
            raise ParseError(
                f"{redact_url(self.feed_url)} did not return @{self.options.username}'s feed: "
                f"check that bridge_url is your {name} instance's base URL and that the instance "
                "can reach X (open that address in a browser)"
            ) from None
        posts: list[CollectedPost] = []
        unlinked = 0
        for item in result.posts:
            post = bridge_post(item, self.options.via)
            if post is None:
                unlinked += 1
            elif self._wanted(item, post):
                posts.append(post)
        warnings = list(result.warnings)
        if unlinked:
            warnings.append(f"skipped {unlinked} feed item(s) without a link to an X post")
        return FetchResult(
            posts=posts, state=result.state, not_modified=result.not_modified, warnings=warnings
        )

    def _wanted(self, item: CollectedPost, post: CollectedPost) -> bool:
        title = item.title or ""
        retweet = (
            title.startswith(("RT by @", "RT @"))
            or (post.author or "").lower() != f"@{self.options.username.lower()}"
        )
        reply = title.startswith("R to @")
        return (self.options.include_retweets or not retweet) and (
            self.options.include_replies or not reply
        )


def bridge_post(item: CollectedPost, via: str) -> CollectedPost | None:
    """A feed item as an X post, or None when none of its links is an X status address."""
    for link in (item.url, item.raw.get("link"), item.raw.get("id"), item.external_id):
        if not isinstance(link, str):
            continue
        match = _STATUS_PATH.match(urlsplit(link).path)
        if match is not None:
            username, tweet_id = match["username"], match["id"]
            return CollectedPost(
                external_id=tweet_id,
                text=item.text or item.title or "",
                url=status_url(username, tweet_id),
                author=f"@{username}",
                html=item.html,
                published_at=item.published_at,
                raw={**item.raw, "via": via},
            )
    return None


# --- the two kinds ---------------------------------------------------------------------------


class XUserSource:
    """The posts of one X account: its timeline through the X API v2, or its feed through a
    self-hosted RSSHub or Nitter instance.

    The account's id is looked up once and kept in the fetch state with the newest post id
    seen; backfill pages back through the timeline (the API serves an account's latest 3,200).
    """

    kind: ClassVar[str] = "x_user"
    Options: ClassVar[type[BaseModel]] = XUserOptions

    def __init__(
        self, options: XUserOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client
        self.platforms = platforms or Platforms()
        self.bridge = Bridge(options, client) if options.via != "api" else None

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """What the account posted since ``state``."""
        if self.bridge is not None:
            return await self.bridge.fetch(state)
        api = self._api()
        resolved = await self._resolved(api, state)
        return await poll_listing(api, self._listing(resolved), resolved)

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The page of the account's posts older than ``cursor``; a bridge gives its feed once."""
        if self.bridge is not None:
            result = await self.bridge.fetch({})
            return BackfillPage(posts=result.posts, cursor=None)
        api = self._api()
        resolved = await self._resolved(api, state)
        page, next_cursor = await backfill_listing(api, self._listing(resolved), cursor)
        return BackfillPage(
            posts=page.posts, cursor=next_cursor, state=resolved if resolved != state else None
        )

    def _api(self) -> XApi:
        # One per fetch, so a rate limit spent in one poll says nothing about the next.
        return XApi(self.client, self.platforms, self.options.bearer_token, self.kind)

    async def _resolved(self, api: XApi, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` with the account's id, looked up unless known for this username."""
        wanted = self.options.username.lower()
        if state.get("user_id") and state.get("user_id_for") == wanted:
            return state
        answer = await api.get(
            f"/2/users/by/username/{self.options.username}", {"user.fields": "username,name"}
        )
        user_id, username = read_user(answer, self.options.username)
        # The newest id seen belongs to whichever account the state was for.
        kept = {k: v for k, v in state.items() if k not in ("since_id", "user_id", "username")}
        return {**kept, "user_id": user_id, "username": username, "user_id_for": wanted}

    def _listing(self, state: dict[str, Any]) -> Listing:
        excluded = [
            name
            for name, included in (
                ("replies", self.options.include_replies),
                ("retweets", self.options.include_retweets),
            )
            if not included
        ]
        return Listing(
            path=f"/2/users/{state['user_id']}/tweets",
            params={"exclude": ",".join(excluded)} if excluded else {},
            username=str(state.get("username") or self.options.username),
            account_id=str(state["user_id"]),
        )


class XSearchSource:
    """Posts of the last seven days matching an X search query, through the X API v2 recent
    search; backfill pages back as far as those seven days."""

    kind: ClassVar[str] = "x_search"
    Options: ClassVar[type[BaseModel]] = XSearchOptions

    def __init__(
        self, options: XSearchOptions, client: OutboundClient, platforms: Platforms | None = None
    ) -> None:
        self.options = options
        self.client = client
        self.platforms = platforms or Platforms()
        self.listing = Listing(path="/2/tweets/search/recent", params={"query": options.query})

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        """The posts matching the query since ``state``."""
        return await poll_listing(self._api(), self.listing, state, stale_since_id_is_400=True)

    async def backfill(self, state: dict[str, Any], cursor: dict[str, Any] | None) -> BackfillPage:
        """The page of matching posts older than ``cursor``."""
        page, next_cursor = await backfill_listing(self._api(), self.listing, cursor)
        return BackfillPage(posts=page.posts, cursor=next_cursor)

    def _api(self) -> XApi:
        # One per fetch, so a rate limit spent in one poll says nothing about the next.
        return XApi(self.client, self.platforms, self.options.bearer_token, self.kind)
