"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Placeholder."""
