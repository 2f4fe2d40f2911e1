"""Installs the dialogue area: the platform client, the NLU client and the engine, as AppKeys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from backend_client.client import PlatformClient
from bot.dialogue.engine import Engine

ENGINE = web.AppKey("engine", Engine)
BACKEND = web.AppKey("backend", PlatformClient)
NLU = web.AppKey("nlu", object)  # bot.nlu_client.NLUClient (typed loosely: no import cycle)


def setup(app: web.Application) -> None:
    """Opens the clients and the engine after the database (the foundation's cleanup_ctx)."""
    app.cleanup_ctx.append(_engine)


async def _engine(app: web.Application) -> AsyncIterator[None]:
    from bot.app import DB, DELIVERY, SETTINGS
    from bot.nlu_client import NLUClient

    settings = app[SETTINGS]
    backend = PlatformClient(
        settings.resolved_backend_url(),
        timeout=settings.backend_timeout_s,
        retries=settings.backend_retries,
    )
    await backend.start()
    nlu: Any = NLUClient(settings)
    start = getattr(nlu, "start", None)
    if start is not None:
        await start()
    app[BACKEND] = backend
    app[NLU] = nlu
    app[ENGINE] = Engine(settings, app[DB], backend, nlu, app[DELIVERY])
    try:
        yield
    finally:
        close = getattr(nlu, "close", None)
        if close is not None:
            await close()
        await backend.close()
