"""The HTTP API under /api/v1: one router per resource, errors mapped in one place."""

from sigwatch.api.app import create_app

__all__ = ["create_app"]
