"""The rest channel."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Placeholder until the rest channel lands."""
