"""Installs the handoff area into the app: console and dashboard routes, the live hub."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.app import DB, DELIVERY, SETTINGS
from bot.handoff import console, dashboard, service
from bot.handoff.console import STATIC
from bot.handoff.schedule import StaffedHours

RUNTIME = web.AppKey("handoff_runtime", service.Runtime)


def setup(app: web.Application) -> None:
    """Routes under /agent; the runtime is bound to the database once it is open."""
    app.router.add_routes(console.routes)
    app.router.add_routes(dashboard.routes)
    app.router.add_static("/agent/static", STATIC, show_index=False)
    app.cleanup_ctx.append(_runtime)


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    # A malformed FINBOT_STAFFED_HOURS stops the start with a clear message, not a customer's turn.
    StaffedHours.parse(app[SETTINGS].staffed_hours)
    app[RUNTIME] = service.install(app[DB], app[SETTINGS], app[DELIVERY], wake_outbox=lambda: _wake(app))
    yield


def _wake(app: web.Application) -> None:
    # The outbox sender starts after us (its cleanup_ctx comes later): look it up when needed.
    from bot.notifications.sender import SENDER

    sender = app.get(SENDER)
    if sender is not None:
        sender.wake()
