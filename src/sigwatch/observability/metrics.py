"""Prometheus metrics of sigwatch, all named ``sigwatch_*``, declared once here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

POSTS_INGESTED = Counter(
    "sigwatch_posts_ingested",
    "Posts stored, by whether they were new or an update of a stored post.",
    ["source_kind", "change"],
    registry=REGISTRY,
)
POLLS = Counter(
    "sigwatch_polls",
    "Source polls by outcome (success, not_modified, error).",
    ["source_kind", "outcome"],
    registry=REGISTRY,
)
POLL_DURATION = Histogram(
    "sigwatch_poll_duration_seconds",
    "Duration of one source poll: fetch, parse and store.",
    ["source_kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "sigwatch_queue_depth",
    "Sources due for polling and not yet claimed, as last seen by the scheduler.",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "sigwatch_http_requests",
    "API requests by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "sigwatch_http_request_duration_seconds",
    "API request duration by route template.",
    ["route"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "sigwatch_deliveries",
    "Notifications by channel kind and outcome (sent, retry, dead).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "sigwatch_alerts",
    "Alert changes by event type and kind (created, corroborated).",
    ["event", "change"],
    registry=REGISTRY,
)
LIVE_CLIENTS = Gauge(
    "sigwatch_live_clients",
    "WebSocket and SSE clients connected to this process.",
    registry=REGISTRY,
)
LIVE_DROPPED = Gauge(
    "sigwatch_live_dropped",
    "Live clients this process dropped because they read too slowly, since it started.",
    registry=REGISTRY,
)
HOST_BREAKERS = Gauge(
    "sigwatch_host_breakers",
    "Hosts whose circuit breaker this process last saw open or half-open, by state; every "
    "other host is closed. Labelled by state only, so host names cannot grow the series.",
    ["state"],
    registry=REGISTRY,
)
HOST_REQUESTS_HELD = Counter(
    "sigwatch_host_requests_held",
    "Outbound requests sigwatch held back without sending, by reason (circuit_open, rate_limited).",
    ["reason"],
    registry=REGISTRY,
)
SYSTEM_ALERTS_OPEN = Gauge(
    "sigwatch_system_alerts_open",
    "Sources' freshness alarms open at this worker's last check, by condition.",
    ["condition"],
    registry=REGISTRY,
)
