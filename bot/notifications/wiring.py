"""Installs notifications: the events route and the outbox sender."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.notifications import inbox
from bot.notifications.sender import SENDER, OutboxSender


def setup(app: web.Application) -> None:
    app[inbox.ProductNames] = {}
    app.add_routes(inbox.routes)
    app.cleanup_ctx.append(_sender)
    # Stop sending before the channels close (cleanup runs after every on_shutdown hook).
    app.on_shutdown.append(_stop_sender)


async def _sender(app: web.Application) -> AsyncIterator[None]:
    from bot.app import DB, DELIVERY, SETTINGS

    sender = OutboxSender(app[SETTINGS], app[DB], app[DELIVERY])
    app[SENDER] = sender
    sender.start()
    yield
    await sender.stop()


async def _stop_sender(app: web.Application) -> None:
    if SENDER in app:
        await app[SENDER].stop()
