"""The application factory: one aiohttp app holding every resource in a typed AppKey."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.settings import Settings
from bot.store.db import Database
from bot.types import Outgoing

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)

Pusher = Callable[[str, Outgoing], Awaitable[None]]
"""Sends a message later (agent reply, notification) to one sender of one channel."""


class Delivery:
    """Channel name → pusher. Channels register themselves; notifications and handoff use it."""

    def __init__(self) -> None:
        self._pushers: dict[str, Pusher] = {}

    def register(self, channel: str, pusher: Pusher) -> None:
        self._pushers[channel] = pusher

    def channels(self) -> list[str]:
        return sorted(self._pushers)

    async def push(self, channel: str, sender: str, message: Outgoing) -> None:
        try:
            pusher = self._pushers[channel]
        except KeyError:
            raise LookupError(f"no pusher for channel {channel!r}") from None
        await pusher(sender, message)


DELIVERY = web.AppKey("delivery", Delivery)


def create_app(settings: Settings) -> web.Application:
    """Build the bot's web application. Nothing connects until the app starts."""
    from bot import health
    from bot.channels import rest, telegram, webchat
    from bot.dialogue import wiring as dialogue_wiring
    from bot.handoff import wiring as handoff_wiring
    from bot.notifications import wiring as notifications_wiring

    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[DELIVERY] = Delivery()
    app.cleanup_ctx.append(_database)
    # Order matters: the engine needs the database; channels need the engine.
    dialogue_wiring.setup(app)
    handoff_wiring.setup(app)
    notifications_wiring.setup(app)
    rest.setup(app)
    webchat.setup(app)
    telegram.setup(app)
    health.setup(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    from bot.crypto import KeyRing, install_keyring

    install_keyring(KeyRing.load_or_create(app[SETTINGS].keys_file))
    db = Database(app[SETTINGS].resolved_database_url())
    app[DB] = db
    yield
    await db.close()
