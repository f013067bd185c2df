"""The tables of sigwatch. Wire shapes live in ``sigwatch.api.schemas``, not here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sigwatch.db.types import BigId, JSONType, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints the same way."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class User(Base):
    """A person who signs in; role ``admin`` sees and changes everything."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Raised on every password change; a token signed with an older version no longer works.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Recent failed sign-ins of one account or one client address, and its lock if any."""

    __tablename__ = "login_throttles"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "account" or "ip"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    """An API key; only its SHA-256 is stored, its prefix identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Source(Base):
    """Something polled for posts: its kind, options, fetch state, health and lease."""

    __tablename__ = "sources"
    __table_args__ = (
        Index("ix_sources_due", "enabled", "next_poll_at"),
        # One owner, one copy of a feed: among sources not removed, (owner, kind, origin) is
        # unique. Shared sources (no owner) are told apart by the code that adds them.
        Index(
            "uq_sources_owner_kind_origin",
            "owner_id",
            "kind",
            "origin",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # Ids are never reused, so a removed source's posts never seem to belong to a new one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    #: The kind's options as stored: every secret sealed (see sigwatch.kinds).
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The source's address normalised by its kind; what corroboration counts as one origin.
    origin: Mapped[str | None] = mapped_column(Text, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    poll_interval_s: Mapped[int] = mapped_column(Integer, default=300)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_polled_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When the source was removed: it is no longer polled or listed, its posts are kept.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # What adaptive polling learns (sigwatch.worker.cadence), updated by each successful poll
    # that stores new posts, and what it chose.
    #: The source's usual time between two new posts, in seconds: an exponentially weighted
    #: mean of the gaps between the moments of consecutive new posts (each post's moment as in
    #: ``last_new_post_at``). None until a second new post has been seen.
    post_gap_s: Mapped[float | None] = mapped_column(Float, default=None)
    #: How many gaps ``post_gap_s`` is made of (0 while it is None); few samples, rough mean.
    post_gap_samples: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When the newest post first stored by a poll appeared: its published time, or the time it
    #: was collected when it has none or claims a later one. Never moves backwards; None until
    #: a poll stores a post. A source is silent when now - this is several ``post_gap_s``.
    last_new_post_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The wait before the next poll that the last successful poll chose, in seconds, jitter
    #: included (next_poll_at is last_success_at plus this, unless a poll was asked for).
    effective_interval_s: Mapped[float | None] = mapped_column(Float, default=None)
    #: Why that interval, in words, as the source's health shows it.
    interval_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Freshness alarms (sigwatch.alerts.freshness): this source's own thresholds, and whether
    # the newest item it serves still changes.
    #: Per-source overrides of the SIGWATCH_SILENCE_* / STALE_* / FAILING_* settings; None: none.
    freshness: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    #: A hash of the newest item the last poll with content served (its id and content).
    newest_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    #: When that fingerprint last changed (or was first seen).
    newest_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Successful polls with content in a row that served the same newest item.
    unchanged_polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Post(Base):
    """One collected item, unique per (source, external id); kept forever as the archive."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_posts_published_at", "published_at"),
        Index("ix_posts_author", "author"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(Text, default=None)
    author: Mapped[str | None] = mapped_column(String(256), default=None)
    title: Mapped[str | None] = mapped_column(Text, default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text, default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    sentiment: Mapped[float | None] = mapped_column(Float, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Entity(Base):
    """A watched project, company, ticker or person, with the names it goes by."""

    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    symbols: Mapped[list[str]] = mapped_column(JSONType, default=list)
    handles: Mapped[list[str]] = mapped_column(JSONType, default=list)
    domains: Mapped[list[str]] = mapped_column(JSONType, default=list)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Job(Base):
    """One collection run of a source: status, progress, counters and error."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_source_status", "source_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(32), default="poll")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: A backfill's target: how many past posts to go through (None for a poll).
    post_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Where a backfill's next (older) page starts, as its kind gave it; None: from the newest.
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    #: The worker running a backfill, until when: an expired lease means its worker is gone.
    #: A poll's job needs none, since the poll holds its source's lease.
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditLog(Base):
    """Who changed what, when, with the object before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(128), default="system")
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)


class Alert(Base):
    """One story: an (entity, event) seen in one or more posts, with its corroborated confidence."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_story", "entity", "event", "last_evidence_at"),
        Index("ix_alerts_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(200))
    entity_id: Mapped[int | None] = mapped_column(
        ForeignKey("entities.id", ondelete="SET NULL"), default=None
    )
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="new")
    confidence: Mapped[float] = mapped_column(Float)
    urgency: Mapped[str] = mapped_column(String(16))
    event_time: Mapped[datetime | None] = mapped_column(default=None)
    title: Mapped[str] = mapped_column(Text)
    trade: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    first_seen_at: Mapped[datetime] = mapped_column()
    last_evidence_at: Mapped[datetime] = mapped_column()
    first_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), default=None
    )
    lead_time_s: Mapped[float | None] = mapped_column(Float, default=None)
    source_count: Mapped[int] = mapped_column(Integer, default=1)
    evidence_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertEvidence(Base):
    """A post that supports an alert, with why the detector fired on it."""

    __tablename__ = "alert_evidence"
    __table_args__ = (
        UniqueConstraint("alert_id", "post_id"),
        Index("ix_alert_evidence_post_id", "post_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    published_at: Mapped[datetime] = mapped_column()
    confidence: Mapped[float] = mapped_column(Float)
    urgency: Mapped[str] = mapped_column(String(16))
    event_time: Mapped[datetime | None] = mapped_column(default=None)
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    spans: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    simhash: Mapped[str] = mapped_column(String(16))
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertHistory(Base):
    """One change of an alert: created, corroborated, or a status change, with who and when."""

    __tablename__ = "alert_history"
    __table_args__ = (Index("ix_alert_history_alert_id", "alert_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(128), default="system")
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), default=None)
    to_status: Mapped[str | None] = mapped_column(String(16), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Whose view of the alert a new post changed (the owner of its source); None for changes
    #: every viewer of the alert sees (status) and for posts of sources nobody owns.
    owner_id: Mapped[int | None] = mapped_column(Integer, default=None)


class AlertView(Base):
    """An alert as one user sees it: computed only from the evidence of that user's sources.

    The alert row itself is the whole story (what admins see); a user's view leaves out every
    post from sources the user cannot see, so its title, confidence, counts, first source and
    lead time never reveal another user's posts. ``created_at`` is when the story first reached
    this user: for them the alert is new then, whoever saw it before.
    """

    __tablename__ = "alert_views"
    __table_args__ = (Index("ix_alert_views_owner_alert", "owner_id", "alert_id"),)

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    confidence: Mapped[float] = mapped_column(Float)
    urgency: Mapped[str] = mapped_column(String(16))
    event_time: Mapped[datetime | None] = mapped_column(default=None)
    title: Mapped[str] = mapped_column(Text)
    trade: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    first_seen_at: Mapped[datetime] = mapped_column()
    last_evidence_at: Mapped[datetime] = mapped_column()
    first_source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), default=None
    )
    lead_time_s: Mapped[float | None] = mapped_column(Float, default=None)
    source_count: Mapped[int] = mapped_column(Integer, default=1)
    evidence_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RuleOverrideRow(Base):
    """The watchlist's override of one built-in event rule (see sigwatch.detect.watchlist)."""

    __tablename__ = "rule_overrides"

    event: Mapped[str] = mapped_column(String(32), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Channel(Base):
    """Where a user's notifications go: a webhook or an Apprise URL; secrets sealed at rest."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rate_limit_per_min: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Subscription(Base):
    """Which alerts a user wants, on which channels, how often, and when not."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    mode: Mapped[str] = mapped_column(String(16), default="instant")
    notify_on: Mapped[str] = mapped_column(String(16), default="new")
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    #: Also send the system alerts (a source silent, stale or failing) of the owner's sources.
    system_alerts: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Silence(Base):
    """A user's mute of an entity and/or event until a time."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    entity: Mapped[str | None] = mapped_column(String(200), default=None)
    event: Mapped[str | None] = mapped_column(String(32), default=None)
    until: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """One notification to send (the outbox), written with the alert change it announces."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_channel_sent", "channel_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), index=True, default=None
    )
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL"), default=None
    )
    #: Set instead of ``alert_id`` when the delivery announces a system alert.
    system_alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("system_alerts.id", ondelete="CASCADE"), index=True, default=None
    )
    #: new, updated, digest; system_opened or system_cleared for a system alert.
    kind: Mapped[str] = mapped_column(String(16), default="new")
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSubSubscription(Base):
    """A feed's WebSub subscription at its hub: one per source, with its lease and its pushes.

    ``callback_token`` (part of the callback URL) and ``secret`` (the HMAC key of pushes) are
    sealed at rest like every other secret. ``state`` is ``pending`` (asked, not yet verified),
    ``active``, ``denied`` (the hub refused), ``expired`` (the lease ran out unrenewed),
    ``unsubscribing`` (asked to end) or ``unsubscribed``.
    """

    __tablename__ = "websub_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), unique=True
    )
    hub_url: Mapped[str] = mapped_column(Text)
    topic_url: Mapped[str] = mapped_column(Text)
    callback_token: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    lease_s: Mapped[int | None] = mapped_column(Integer, default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    #: When the last subscribe or unsubscribe request went to the hub (retries are paced by it).
    requested_at: Mapped[datetime | None] = mapped_column(default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    last_push_at: Mapped[datetime | None] = mapped_column(default=None)
    pushes_accepted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pushes_refused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Why the hub refused or denied the subscription, or why the last request failed.
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SystemAlert(Base):
    """A source's freshness alarm (silent, stale or failing), open until the source recovers.

    At most one alarm per source and condition is open at a time (a partial unique index), so
    workers checking at once never raise it twice. ``owner_id`` is the source's owner when it
    was raised (None for shared sources, whose alarms reach admins).
    """

    __tablename__ = "system_alerts"
    __table_args__ = (
        Index(
            "uq_system_alerts_open",
            "source_id",
            "condition",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
        Index("ix_system_alerts_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    condition: Mapped[str] = mapped_column(String(16))  # silent, stale, failing
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, cleared
    #: Why it was raised, in words, with the numbers that decided it.
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The last check that found the condition still true.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Why it cleared (a new post, a success, the source disabled or removed …).
    clear_reason: Mapped[str | None] = mapped_column(Text, default=None)
