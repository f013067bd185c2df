"""Outbound HTTP for every source: one client with timeouts, size caps and the SSRF guard."""

from sigwatch.net.client import FetchedResponse, OutboundClient, redact_url

__all__ = ["FetchedResponse", "OutboundClient", "redact_url"]
