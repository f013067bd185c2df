"""Wire shapes of the API: what requests may carry and what responses contain.

Request models forbid unknown fields, so a misspelt field is a 422 naming it rather than a
silently ignored change. Every text is checked to be storable (no NUL, valid Unicode) so bad
input is a 4xx here instead of a database error later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from sigwatch.alerts.freshness import FreshnessOverrides
from sigwatch.db.pagination import Page
from sigwatch.db.sources import MAX_POLL_INTERVAL_S, MIN_POLL_INTERVAL_S

T = TypeVar("T")
U = TypeVar("U")

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1


def _storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _storable_json(value: Any) -> Any:
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {_storable_text(str(key)): _storable_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable_json(item) for item in value]
    return value


def _as_utc(value: datetime) -> datetime:
    # A time without a zone is read as UTC, the zone of everything sigwatch stores.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of representable times") from None


#: Any text field: storable, at most 10,000 characters.
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_storable_text)]
#: A display name: stripped, 1 to 200 characters.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable_text),
]
#: One value of an entity's list fields.
ListItem = Annotated[str, StringConstraints(max_length=200), AfterValidator(_storable_text)]
Username = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$"),
]
Password = Annotated[
    str, StringConstraints(min_length=8, max_length=1024), AfterValidator(_storable_text)
]
#: A JSON object whose every string is storable.
JSONObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
#: A moment given as ISO 8601; without a zone it is UTC.
UTCTime = Annotated[datetime, AfterValidator(_as_utc)]
#: The name of a source kind, such as ``rss``.
SourceKind = Annotated[
    str, StringConstraints(min_length=1, max_length=32), AfterValidator(_storable_text)
]
Id32 = Annotated[int, Field(ge=1, le=MAX_INT32)]
Int32 = Annotated[int, Field(ge=-MAX_INT32, le=MAX_INT32)]
PollInterval = Annotated[int, Field(ge=MIN_POLL_INTERVAL_S, le=MAX_POLL_INTERVAL_S)]
Role = Literal["admin", "user"]


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(RequestModel):
    """Base of partial updates: a field left out is kept; null is refused, not stored."""

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError("must not be null: leave the field out to keep its value")
        return value


class ResponseModel(BaseModel):
    """Base of responses, read from table rows."""

    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (null on the last)."""

    items: list[T]
    next_cursor: str | None


def page_out(page: Page[Any], convert: Callable[[Any], U]) -> PageOut[U]:
    """Turn a repository page into its wire shape, converting each item."""
    return PageOut[U](items=[convert(item) for item in page.items], next_cursor=page.next_cursor)


# --- auth ------------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    """Credentials for a token, as OAuth2 password form fields or JSON."""

    # OAuth2 clients send grant_type, scope and client_id too; they are accepted and ignored.
    model_config = ConfigDict(extra="ignore")

    username: Annotated[
        str, StringConstraints(min_length=1, max_length=256), AfterValidator(_storable_text)
    ]
    password: Annotated[
        str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_storable_text)
    ]
    grant_type: Literal["password"] | None = None


class RefreshRequest(RequestModel):
    """A refresh token to trade for a new token pair."""

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenPairOut(BaseModel):
    """A bearer access token, its lifetime in seconds, and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class PasswordChange(RequestModel):
    """The caller's current password and the one to replace it with."""

    old_password: Annotated[
        str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_storable_text)
    ]
    new_password: Password


# --- users -----------------------------------------------------------------------------------


class UserCreate(RequestModel):
    """A new user."""

    username: Username
    password: Password
    role: Role = "user"


class UserUpdate(PatchModel):
    """Changes to a user: role, active flag, password."""

    role: Role | None = None
    is_active: bool | None = None
    password: Password | None = None


class UserOut(ResponseModel):
    """A user, without credentials."""

    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime


class UnlockOut(BaseModel):
    """Whether an account's sign-in lock or failure count was lifted."""

    user: UserOut
    unlocked: bool


class MeOut(UserOut):
    """The signed-in user and how the request was authenticated."""

    auth: Literal["token", "api_key"]


# --- API keys --------------------------------------------------------------------------------


class ApiKeyCreate(RequestModel):
    """A new API key; admins may make one for another user."""

    name: Annotated[str, StringConstraints(max_length=128), AfterValidator(_storable_text)] = ""
    user_id: Id32 | None = None


class ApiKeyOut(ResponseModel):
    """An API key as listed: identified by its prefix, never the key itself."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A key just made; ``key`` is shown this once and cannot be read again."""

    key: str


# --- sources ---------------------------------------------------------------------------------


class SourceCreate(RequestModel):
    """A new source; ``config`` is checked against the options of ``kind``."""

    kind: SourceKind
    name: Name
    config: JSONObject = Field(default_factory=dict)
    enabled: bool = True
    poll_interval_s: PollInterval | None = None


class SourceUpdate(PatchModel):
    """Changes to a source; its kind is fixed."""

    name: Name | None = None
    config: JSONObject | None = None
    enabled: bool | None = None
    poll_interval_s: PollInterval | None = None
    freshness: FreshnessOverrides | None = Field(
        None,
        description="The source's own freshness thresholds (replacing any stored); {} returns "
        "to the settings' values.",
    )


class HostBreakerOut(ResponseModel):
    """The circuit breaker of the host a source fetches from, shared by the sources on it.

    ``state`` is ``unknown`` where this process cannot see the breakers: an API process
    without Redis, while the workers keep them in their own memory.
    """

    host: str | None = Field(description="The host (with its port when not the default).")
    state: Literal["closed", "open", "half_open", "unknown"]
    failures: int | None = Field(None, description="Transient failures in a row, when known.")
    retry_at: datetime | None = Field(None, description="When an open breaker tries again.")
    summary: str = Field(description="closed, open until T, half-open or unknown.")


class SourceOut(ResponseModel):
    """A source with its health and the number of posts it has stored."""

    id: int
    owner_id: int | None
    kind: str
    name: str
    config: dict[str, Any]
    enabled: bool
    poll_interval_s: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_poll_at: datetime
    effective_interval_s: float | None = Field(
        None,
        description="The wait before the next poll that the last successful poll chose, "
        "jitter included: adaptive, between the kind's minimum and poll_interval_s.",
    )
    interval_reason: str | None = Field(
        None,
        description="Why that interval, e.g. 'adaptive: new posts every ~4 min → 60 s'.",
    )
    post_gap_s: float | None = Field(
        None, description="The source's usual time between new posts (a weighted mean), seconds."
    )
    post_gap_samples: int = Field(0, description="How many gaps post_gap_s is made of.")
    last_new_post_at: datetime | None = Field(
        None,
        description="When its newest post appeared (its published time, at the latest when "
        "it was collected).",
    )
    created_at: datetime
    updated_at: datetime
    post_count: int = 0
    breaker: HostBreakerOut | None = None
    freshness: dict[str, Any] | None = Field(
        None, description="The source's own freshness thresholds; null: the settings' values."
    )


# --- jobs ------------------------------------------------------------------------------------


class JobOut(ResponseModel):
    """One collection run: status, progress from 0 to 1, counters, error and timestamps."""

    id: int
    source_id: int | None
    kind: str
    status: str
    requested_by: int | None
    progress: float
    counters: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# --- posts -----------------------------------------------------------------------------------


class PostOut(ResponseModel):
    """A collected post as listed."""

    id: int
    source_id: int
    external_id: str
    url: str | None
    author: str | None
    title: str | None
    text: str
    published_at: datetime | None
    collected_at: datetime
    sentiment: float | None = None
    metrics: dict[str, Any]


class PostDetail(PostOut):
    """A collected post with its HTML and the raw item the source returned."""

    html: str | None
    content_hash: str
    raw: dict[str, Any]


# --- entities --------------------------------------------------------------------------------

_Strings = Annotated[list[ListItem], Field(max_length=500)]


class EntityCreate(RequestModel):
    """A new watchlist entity and the names it goes by."""

    name: Name
    aliases: _Strings = Field(default_factory=list)
    symbols: _Strings = Field(default_factory=list)
    handles: _Strings = Field(default_factory=list)
    domains: _Strings = Field(default_factory=list)
    tags: _Strings = Field(default_factory=list)
    priority: Int32 = 0


class EntityUpdate(PatchModel):
    """Changes to an entity; a list given replaces the stored list."""

    name: Name | None = None
    aliases: _Strings | None = None
    symbols: _Strings | None = None
    handles: _Strings | None = None
    domains: _Strings | None = None
    tags: _Strings | None = None
    priority: Int32 | None = None


class EntityOut(ResponseModel):
    """A watchlist entity."""

    id: int
    name: str
    aliases: list[str]
    symbols: list[str]
    handles: list[str]
    domains: list[str]
    tags: list[str]
    priority: int
    created_at: datetime
    updated_at: datetime


# --- health ----------------------------------------------------------------------------------


class ReadinessOut(BaseModel):
    """Whether the process can serve: ``failed`` names each unavailable component and why."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
    failed: dict[str, str] = Field(default_factory=dict)
