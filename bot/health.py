"""Health (`/healthz`), readiness (`/readyz`: database, NLU, platform) and `/metrics`."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.app import DB, SETTINGS
from bot.metrics import REGISTRY

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def _check_db(request: web.Request) -> bool:
    try:
        async with request.app[DB].engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 — any failure means "not ready"
        return False


async def _check_http(url: str) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=1.5)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    db_ok, nlu_ok, backend_ok = await asyncio.gather(
        _check_db(request),
        _check_http(f"{settings.resolved_nlu_url()}/status"),
        _check_http(f"{settings.resolved_backend_url()}/api/v1/clock"),
    )
    checks = {"database": db_ok, "nlu": nlu_ok, "backend": backend_ok}
    ready = all(checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    app.add_routes(routes)
