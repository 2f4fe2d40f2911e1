"""Installs the handoff area into the app (routes, background tasks, AppKeys)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Placeholder until the handoff area lands."""
