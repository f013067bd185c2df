"""Settings, read from ``SIGWATCH_*`` environment variables and an optional ``.env`` file.

Settings are built by :func:`load_settings` at the edge (the CLI, the app factory) and passed in;
nothing reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sigwatch.errors import ConfigError

SECRET_KEY_FILE = "secret_key"


class Settings(BaseSettings):
    """Every setting of sigwatch, with its type, default and a one-line description."""

    model_config = SettingsConfigDict(
        env_prefix="SIGWATCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("./data"), description="Directory for the SQLite file and keys.")
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; default: SQLite file sigwatch.db in the data dir."
    )
    redis_url: str | None = Field(
        None, description="Redis URL for the live bus and rate limits; unset: in process."
    )
    secret_key: SecretStr | None = Field(
        None, description="Key that signs tokens; unset: generated once into the data dir (0600)."
    )
    allow_private_urls: bool = Field(
        False, description="Let sources fetch private, loopback and link-local addresses."
    )
    allowed_private_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs sources may fetch even though private, e.g. 192.168.1.0/24.",
    )
    fetch_timeout_s: float = Field(
        20.0,
        gt=0,
        description="Timeout of one outbound request (a fetch or a webhook); below lease_s.",
    )
    max_response_bytes: int = Field(
        10_000_000, gt=0, description="Largest response body a source may download."
    )
    max_redirects: int = Field(5, ge=0, description="Redirects followed per outbound request.")
    user_agent: str = Field(
        "sigwatch/0.1 (self-hosted signal monitor)",
        description="User-Agent header of outbound requests.",
    )
    poll_interval_s: int = Field(
        300,
        ge=1,
        le=7 * 86400,
        description="Default poll interval of a new source: its longest wait between polls "
        "(raised to its kind's minimum).",
    )
    adaptive_polling: bool = Field(
        True,
        description="Poll sources that post often more often, down to their kind's minimum; "
        "off: each source at its own interval.",
    )
    adaptive_gap_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="An adaptive interval as a share of the source's usual time between new posts.",
    )
    poll_jitter_share: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Random spread of each next poll, as a share of its interval, so sources do "
        "not poll in step.",
    )
    # The fast lane: how often a source of each kind may be polled at most, by the platform's
    # rules. A kind without a field of its own here gets min_poll_interval_s.
    min_poll_interval_s: int = Field(
        10, ge=1, description="Shortest poll interval of a kind without a minimum of its own."
    )
    min_poll_interval_json_s: int = Field(
        1, ge=1, description="Shortest poll interval of a `json` source (the fast lane)."
    )
    min_poll_interval_web_s: int = Field(
        1, ge=1, description="Shortest poll interval of a `web` source (the fast lane)."
    )
    min_poll_interval_rss_s: int = Field(
        30, ge=1, description="Shortest poll interval of an `rss` feed; WebSub pushes sooner."
    )
    min_poll_interval_reddit_s: int = Field(
        60,
        ge=1,
        description="Shortest poll interval of a `reddit` source: unauthenticated listings "
        "allow a few requests a minute.",
    )
    min_poll_interval_telegram_s: int = Field(
        30,
        ge=1,
        description="Shortest poll interval of a `telegram` channel preview (t.me answers "
        "frequent readers with 429).",
    )
    min_poll_interval_discord_s: int = Field(
        5,
        ge=1,
        description="Shortest poll interval of a `discord` channel: its bot's per-route "
        "rate limit is shared with other uses.",
    )
    min_poll_interval_x_user_s: int = Field(
        60,
        ge=1,
        description="Shortest poll interval of an `x_user` source: X counts requests per "
        "15-minute window.",
    )
    min_poll_interval_x_search_s: int = Field(
        60,
        ge=1,
        description="Shortest poll interval of an `x_search` source: X counts requests per "
        "15-minute window.",
    )
    public_url: str | None = Field(
        None,
        description="Base URL at which WebSub hubs reach this instance, e.g. "
        "https://sigwatch.example.com; unset: no WebSub push, feeds are polled only.",
    )
    x_api_url: str = Field(
        "https://api.x.com", description="Base URL of the X API v2 (`x_user`, `x_search`)."
    )
    x_bearer_token: SecretStr | None = Field(
        None,
        description="X API bearer token used by X sources that have no token of their own.",
    )
    telegram_url: str = Field(
        "https://t.me", description="Where `telegram` sources read public channel previews."
    )
    reddit_url: str = Field(
        "https://www.reddit.com", description="Base URL of Reddit's JSON listings (`reddit`)."
    )
    discord_api_url: str = Field(
        "https://discord.com/api/v10", description="Base URL of Discord's bot REST API."
    )
    browser_path: str | None = Field(
        None,
        description="Chromium that renders `web` sources with `render: true`; default: the "
        "`chromium` on PATH, else Playwright's own.",
    )
    max_backoff_s: int = Field(
        6 * 3600,
        ge=60,
        description="Longest delay before retrying a failing source; a 4xx no retry can fix "
        "(401, 403, 404, 410) waits this long at once.",
    )
    lease_s: int = Field(
        120,
        ge=5,
        description="How long a claim on a source or delivery lasts unrenewed; renewed every "
        "third while the work runs.",
    )
    worker_concurrency: int = Field(4, ge=1, description="Sources polled at once per worker.")
    delivery_concurrency: int = Field(16, ge=1, description="Notifications a worker sends at once.")
    delivery_retry_base_s: float = Field(
        30.0, gt=0, description="First retry wait of a failed notification; doubles each time."
    )
    delivery_max_attempts: int = Field(
        10, ge=1, description="Attempts before a notification goes to the dead letters."
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM, how long in-flight polls may take to finish."
    )
    alert_min_confidence: float | None = Field(
        None, ge=0, le=1, description="Confidence a detection needs to alert; unset: the default."
    )
    access_token_ttl_s: int = Field(900, ge=60, description="Lifetime of a JWT access token.")
    refresh_token_ttl_s: int = Field(
        14 * 86400, ge=300, description="Lifetime of a JWT refresh token."
    )
    live_recheck_s: float = Field(
        60.0,
        gt=0,
        description="How often a live connection's API key or user is checked again; a token "
        "is also checked when it expires.",
    )
    login_account_backoff_after: int = Field(
        3, ge=1, description="Failed sign-ins of one account before each retry must wait longer."
    )
    login_account_lock_after: int = Field(
        10, ge=1, description="Failed sign-ins of one account that lock its password sign-in."
    )
    login_ip_backoff_after: int = Field(
        10, ge=1, description="Failed sign-ins from one address before its retries must wait."
    )
    login_ip_lock_after: int = Field(
        50, ge=1, description="Failed sign-ins from one address that lock sign-in from it."
    )
    login_backoff_base_s: float = Field(
        1.0, ge=0, description="First wait once backoff starts; doubles with each failure."
    )
    login_backoff_max_s: float = Field(
        60.0, ge=0, description="Longest wait between failed sign-ins before the lock."
    )
    login_lock_s: int = Field(
        900, ge=1, description="How long a lock lasts; failures during it do not extend it."
    )
    login_failure_window_s: int = Field(
        900, ge=1, description="Quiet time after which failed sign-ins are forgotten."
    )
    rate_limit_enabled: bool = Field(
        True, description="Limit API requests per API key, per user and per client address."
    )
    rate_limit_per_ip: str = Field(
        "600/minute", description="Requests one client address may make, e.g. 10/second;600/minute."
    )
    rate_limit_per_user: str = Field(
        "1200/minute", description="Requests one user may make with access tokens."
    )
    rate_limit_per_api_key: str = Field("1200/minute", description="Requests one API key may make.")
    host_rate_limit: str | None = Field(
        "10/second",
        description="Outbound requests to one host, all sources together, e.g. 10/second; "
        "empty: no limit.",
    )
    credential_rate_limit: str | None = Field(
        None,
        description="Outbound requests with one Authorization value (token), e.g. 300/minute; "
        "unset or empty: no limit.",
    )
    breaker_failures: int = Field(
        5, ge=1, le=1000, description="Transient failures in a row that open a host's breaker."
    )
    breaker_open_s: float = Field(
        60.0, ge=1, le=86400, description="How long a host's breaker stays open the first time."
    )
    breaker_max_open_s: float = Field(
        3600.0,
        ge=1,
        le=86400,
        description="Longest a breaker stays open; each failed half-open trial doubles the time.",
    )
    freshness_check_s: float = Field(
        30.0, ge=0, le=3600, description="Seconds between freshness checks of a worker; 0: off."
    )
    silence_factor: float = Field(
        4.0,
        ge=1,
        le=1000,
        description="A source is silent after this many of its usual gaps without a new post.",
    )
    silence_min_s: int = Field(
        3600, ge=0, description="Shortest silence that raises an alarm, however often it posts."
    )
    silence_min_samples: int = Field(
        3, ge=1, description="Gaps a source must have learned before its silence is judged."
    )
    stale_after_polls: int = Field(
        10, ge=1, description="Polls with content serving the same newest item that make it stale."
    )
    stale_after_s: int = Field(
        86400, ge=0, description="Shortest time its newest item must stay unchanged to be stale."
    )
    failing_after: int = Field(
        5, ge=1, description="Failed polls in a row that make a source failing."
    )
    failing_after_s: int = Field(
        3600, ge=0, description="Failing for longer than this (since the last success) is failing."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest log level written."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Log format; auto: readable on a terminal, JSON otherwise."
    )

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        scheme, _, rest = value.partition("://")
        if scheme.lower() not in ("http", "https") or not rest or "?" in rest or "#" in rest:
            raise ValueError(
                "must be the http:// or https:// base URL hubs reach this instance at, without "
                "a query, for example https://sigwatch.example.com"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(("postgres://", "postgresql://")):
            # Users paste libpq URLs; sigwatch talks to PostgreSQL through asyncpg.
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(for example postgresql+asyncpg://user@127.0.0.1:5432/sigwatch)"
            )
        return value

    @field_validator(
        "rate_limit_per_ip",
        "rate_limit_per_user",
        "rate_limit_per_api_key",
        "host_rate_limit",
        "credential_rate_limit",
    )
    @classmethod
    def _check_rate_limit(cls, value: str | None) -> str | None:
        # Imported here: the limits package takes a quarter second to load, and most CLI
        # commands never need it.
        from limits import parse_many

        if value is None:
            return None
        try:
            if any(item.amount < 1 for item in parse_many(value)):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write COUNT/PERIOD such as 600/minute, "
                "several separated by ';' (10/second;600/minute)"
            ) from None
        return value

    @model_validator(mode="after")
    def _check_login_thresholds(self) -> Settings:
        for scope in ("account", "ip"):
            backoff = getattr(self, f"login_{scope}_backoff_after")
            lock = getattr(self, f"login_{scope}_lock_after")
            if backoff > lock:
                raise ValueError(
                    f"SIGWATCH_LOGIN_{scope.upper()}_BACKOFF_AFTER ({backoff}) is above "
                    f"SIGWATCH_LOGIN_{scope.upper()}_LOCK_AFTER ({lock}): backoff starts before "
                    "the lock, so make it smaller"
                )
        return self

    @field_validator("allowed_private_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        # NoDecode hands the raw env string over, so both a JSON list and "a, b" are accepted.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [part for part in (p.strip() for p in text.split(",")) if part]
        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_network(str(item).strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not a network; give CIDRs such as 192.168.1.0/24 or fd00::/8"
                    ) from None
            return [str(item).strip() for item in value]
        return value

    @field_validator("host_rate_limit", "credential_rate_limit", mode="before")
    @classmethod
    def _empty_means_no_limit(cls, value: Any) -> Any:
        # SIGWATCH_HOST_RATE_LIMIT= (empty) is how an operator switches the limit off.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_breaker_times(self) -> Settings:
        if self.breaker_max_open_s < self.breaker_open_s:
            raise ValueError(
                f"SIGWATCH_BREAKER_MAX_OPEN_S ({self.breaker_max_open_s:g}s) is below "
                f"SIGWATCH_BREAKER_OPEN_S ({self.breaker_open_s:g}s): the longest open period "
                "cannot be shorter than the first, so raise it"
            )
        return self

    @model_validator(mode="after")
    def _check_timeouts_fit_the_lease(self) -> Settings:
        # A request that may outlast the claim it runs under would let a second worker take the
        # same work while the first is still doing it, were the lease not renewed in time.
        if self.fetch_timeout_s >= self.lease_s:
            raise ValueError(
                f"SIGWATCH_FETCH_TIMEOUT_S ({self.fetch_timeout_s:g}s) must be shorter than "
                f"SIGWATCH_LEASE_S ({self.lease_s}s): one fetch or webhook send must end "
                "within the lease on its work; lower the timeout or raise the lease"
            )
        return self

    def min_poll_interval_of(self, kind: str) -> int:
        """The shortest poll interval, in seconds, of a source of ``kind``."""
        value = getattr(self, f"min_poll_interval_{kind}_s", None)
        return value if isinstance(value, int) else self.min_poll_interval_s

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or the SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sigwatch.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite."""
        return self.effective_database_url.startswith("sqlite")

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret masked, for display."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else None
            elif name in ("database_url", "redis_url") and value:
                value = mask_url_password(value)
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        shown["database_url"] = mask_url_password(self.effective_database_url)
        return shown


def mask_url_password(url: str) -> str:
    """Replace the password in ``scheme://user:password@host`` with asterisks."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    if ":" in credentials:
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:********@{host}"
    return url


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and ``.env``; keyword overrides win."""
    try:
        return Settings(**overrides)
    except ValueError as exc:
        raise ConfigError(
            f"invalid settings: {_problems(exc)}. Fix the SIGWATCH_* variable named above."
        ) from exc


def _problems(exc: ValueError) -> str:
    """Each problem with the variable it concerns, never a value (values may be secrets)."""
    from pydantic import ValidationError  # pydantic's error type, kept apart from the imports

    if not isinstance(exc, ValidationError):
        return str(exc)
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        where = error["loc"]
        problems.append(f"SIGWATCH_{str(where[0]).upper()}: {message}" if where else message)
    return "; ".join(problems)


def ensure_secret_key(settings: Settings) -> str:
    """Return the signing key: the configured one, or the one kept in the data dir (made once)."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value()
        if len(key) < 32:
            raise ConfigError(
                "SIGWATCH_SECRET_KEY is shorter than 32 characters; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        return key
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def settings_reference() -> str:
    """The Markdown table of every setting: variable, type, default, description."""
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) is Literal:
            kind = " or ".join(f"`{choice}`" for choice in get_args(annotation))
        else:
            kind = str(annotation).replace("typing.", "").replace("pydantic.types.", "")
            kind = kind.replace("<class '", "").replace("'>", "").replace("pathlib.", "")
            kind = kind.replace(" | None", ", optional")
        default = info.get_default(call_default_factory=True)
        if isinstance(default, Path):
            default = str(default)
        shown = "unset" if default is None else f"`{default}`"
        lines.append(f"| `SIGWATCH_{name.upper()}` | {kind} | {shown} | {info.description} |")
    return "\n".join(lines) + "\n"
