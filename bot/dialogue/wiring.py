"""Installs the dialogue area: the platform client, the NLU client and the engine, as AppKeys."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from backend_client.client import PlatformClient
from bot.dialogue.engine import Engine
from bot.nlu_client import NLUClient

ENGINE = web.AppKey("engine", Engine)
BACKEND = web.AppKey("backend", PlatformClient)
NLU = web.AppKey("nlu", NLUClient)


def setup(app: web.Application) -> None:
    """Opens the clients and the engine after the database (the foundation's cleanup_ctx)."""
    app.cleanup_ctx.append(_engine)


async def _engine(app: web.Application) -> AsyncIterator[None]:
    from bot.app import DB, DELIVERY, SETTINGS

    settings = app[SETTINGS]
    backend = PlatformClient(
        settings.resolved_backend_url(),
        timeout=settings.backend_timeout_s,
        retries=settings.backend_retries,
    )
    await backend.start()
    nlu = NLUClient(
        settings.resolved_nlu_url(),
        timeout=settings.nlu_timeout_s,
        breaker_failures=settings.nlu_breaker_failures,
        breaker_reset_s=settings.nlu_breaker_reset_s,
    )
    await nlu.start()
    app[BACKEND] = backend
    app[NLU] = nlu
    app[ENGINE] = Engine(settings, app[DB], backend, nlu, app[DELIVERY])
    try:
        yield
    finally:
        await nlu.close()
        await backend.close()
