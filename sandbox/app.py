"""The sandbox platform's aiohttp application: /api/v1 (the contract) and /sandbox hooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from sandbox import events
from sandbox.clock import Clock
from sandbox.db import SandboxDB
from sandbox.rules import RuleError
from sandbox.service import Platform
from sandbox.settings import SandboxSettings

log = logging.getLogger("sandbox")

SETTINGS = web.AppKey("sandbox_settings", SandboxSettings)
CLOCK = web.AppKey("sandbox_clock", Clock)
DB = web.AppKey("sandbox_db", SandboxDB)
PLATFORM = web.AppKey("sandbox_platform", Platform)

api = web.RouteTableDef()
hooks = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str, **details: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **details}},
                             status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error with a code; never a traceback."""
    try:
        return await handler(request)
    except RuleError as exc:
        return _error(exc.status, exc.code, exc.message, **exc.details)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "body_too_large", "the request body is too large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return _error(exc.status, code, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal_error", "internal error")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise RuleError("invalid_json", "the body is not valid JSON", 400) from None
    if not isinstance(data, dict):
        raise RuleError("validation_error", "the body must be a JSON object", 400)
    return data


def _p(request: web.Request) -> Platform:
    return request.app[PLATFORM]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


# ---------------------------------------------------------------- platform API
@api.get("/api/v1/clock")
async def get_clock(request: web.Request) -> web.StreamResponse:
    return _json(_p(request).clock_json())


@api.get("/api/v1/products")
async def list_products(request: web.Request) -> web.StreamResponse:
    return _json({"items": _p(request).products_json()})


@api.get("/api/v1/products/{code}")
async def get_product(request: web.Request) -> web.StreamResponse:
    p = _p(request)
    spec = p.catalog.get(request.match_info["code"].strip().upper())
    if spec is None:
        raise RuleError("not_found", "no such product", 404)
    return _json(p.product_json(spec))


@api.post("/api/v1/link-codes/redeem")
async def redeem_link_code(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).redeem_link_code(body.get("code")))


@api.get("/api/v1/customers/{customer_id}")
async def get_customer(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).customer_json(request.match_info["customer_id"]))


@api.get("/api/v1/customers/{customer_id}/portfolio")
async def get_portfolio(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).portfolio(request.match_info["customer_id"]))


@api.post("/api/v1/customers/{customer_id}/quotes")
async def quote(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).quote(request.match_info["customer_id"], body))


@api.post("/api/v1/customers/{customer_id}/challenges")
async def create_challenge(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    out = await _p(request).create_challenge(request.match_info["customer_id"], body)
    return _json(out, 201)


@api.post("/api/v1/challenges/{challenge_id}/verify")
async def verify_challenge(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).verify_challenge(request.match_info["challenge_id"], body))


@api.post("/api/v1/customers/{customer_id}/orders")
async def place_order(request: web.Request) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    body = await _body(request)
    status, out = await _p(request).place_order(request.match_info["customer_id"], key, body)
    return _json(out, status)


@api.get("/api/v1/customers/{customer_id}/orders")
async def list_orders(request: web.Request) -> web.StreamResponse:
    q = {k: v for k, v in request.query.items()}
    return _json(await _p(request).list_orders(request.match_info["customer_id"], q))


@api.get("/api/v1/customers/{customer_id}/orders/{order_id}")
async def get_order(request: web.Request) -> web.StreamResponse:
    mi = request.match_info
    return _json(await _p(request).get_order(mi["customer_id"], mi["order_id"]))


@api.post("/api/v1/customers/{customer_id}/complaints")
async def file_complaint(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).file_complaint(request.match_info["customer_id"], body), 201)


@api.get("/api/v1/customers/{customer_id}/complaints")
async def list_complaints(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).list_complaints(request.match_info["customer_id"]))


@api.get("/api/v1/customers/{customer_id}/complaints/{complaint_id}")
async def get_complaint(request: web.Request) -> web.StreamResponse:
    mi = request.match_info
    return _json(await _p(request).get_complaint(mi["customer_id"], mi["complaint_id"]))


# ---------------------------------------------------------------- sandbox-only hooks
@hooks.post("/sandbox/customers")
async def sb_create_customer(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).create_customer(await _body(request)), 201)


@hooks.post("/sandbox/customers/{customer_id}/link-code")
async def sb_link_code(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).issue_link_code(request.match_info["customer_id"]), 201)


@hooks.get("/sandbox/customers/{customer_id}/orders")
async def sb_orders(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).sandbox_orders(request.match_info["customer_id"]))


@hooks.post("/sandbox/customers/{customer_id}/risk-warning")
async def sb_risk_warning(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).risk_warning(request.match_info["customer_id"], body), 202)


@hooks.get("/sandbox/sms")
async def sb_sms(request: web.Request) -> web.StreamResponse:
    phone = request.query.get("phone")
    if not phone:
        raise RuleError("validation_error", "phone is required", 400, field="phone")
    return _json(await _p(request).sms_outbox(phone))


@hooks.get("/sandbox/products")
async def sb_products(request: web.Request) -> web.StreamResponse:
    keep = ("code", "name_zh", "name_en", "risk", "nav", "settlement_days", "min_amount")
    return _json([{k: p[k] for k in keep} for p in _p(request).products_json()])


@hooks.get("/sandbox/clock")
async def sb_get_clock(request: web.Request) -> web.StreamResponse:
    p = _p(request)
    return _json({"now": p.iso(p.now()), "frozen": p.clock.frozen})


@hooks.post("/sandbox/clock")
async def sb_set_clock(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    if "now" not in body:
        raise RuleError("validation_error", "now is required (an ISO instant or null)", 400,
                        field="now")
    raw = body["now"]
    if raw is None:
        request.app[CLOCK].freeze(None)
    else:
        try:
            instant = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise RuleError("validation_error", "now is an ISO 8601 instant", 400,
                            field="now") from None
        if instant.tzinfo is None:
            raise RuleError("validation_error", "now needs an offset (+08:00)", 400, field="now")
        request.app[CLOCK].freeze(instant)
    p = _p(request)
    await p.advance()  # statuses due at the new instant move at once, not 0.5 s later
    return _json({"now": p.iso(p.now()), "frozen": p.clock.frozen})


@hooks.post("/sandbox/orders/{order_id}/fail")
async def sb_fail_order(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).fail_order(request.match_info["order_id"], body))


@hooks.post("/sandbox/complaints/{complaint_id}/answer")
async def sb_answer_complaint(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    return _json(await _p(request).answer_complaint(request.match_info["complaint_id"], body))


@hooks.get("/sandbox/events")
async def sb_events(request: web.Request) -> web.StreamResponse:
    return _json(await _p(request).events())


@hooks.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    return _json({"status": "ok"})


# ---------------------------------------------------------------- factory
async def _platform_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = SandboxDB(settings.resolved_database_url())
    await db.create_all()
    platform = Platform(settings, db, app[CLOCK])
    await platform.seed_catalog()
    app[DB] = db
    app[PLATFORM] = platform
    tasks = [asyncio.create_task(events.advancer(platform, settings.advance_interval_s))]
    if settings.event_delivery:
        tasks.append(asyncio.create_task(events.deliverer(platform,
                                                          settings.delivery_interval_s)))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await db.close()


def create_app(settings: SandboxSettings, clock: Clock | None = None) -> web.Application:
    """Build the sandbox app. The database opens (and tables appear) when the app starts."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[errors_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app.router.add_routes(api)
    app.router.add_routes(hooks)
    app.cleanup_ctx.append(_platform_ctx)
    return app


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Logs method, path, status and time, never the query string (/sandbox/sms?phone=…)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status,
                         time * 1000)


SHARED_FIELDS = ("sandbox_port", "sandbox_database_url", "platform_secret", "port", "log_level")


def run(settings: Any = None) -> None:
    """Serve the sandbox on settings.sandbox_port until interrupted (`finbot sandbox serve`).

    Accepts SandboxSettings, or the bot's Settings (its shared fields are carried over and
    the rest comes from the environment), or nothing (environment only)."""
    if not isinstance(settings, SandboxSettings):
        carried = {f: getattr(settings, f) for f in SHARED_FIELDS
                   if settings is not None and getattr(settings, f, None) is not None}
        settings = SandboxSettings(**{k: v for k, v in carried.items() if k != "log_level"})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    web.run_app(create_app(settings), host=settings.sandbox_host, port=settings.sandbox_port,
                access_log_class=PathOnlyAccessLogger,
                print=lambda _msg: log.info("sandbox platform on http://%s:%s",
                                            settings.sandbox_host, settings.sandbox_port))
