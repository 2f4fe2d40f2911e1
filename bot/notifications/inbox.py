"""`POST /platform/events`: verify, deduplicate, and enqueue the customer's messages atomically."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import DB, SETTINGS
from bot.metrics import EVENTS
from bot.notifications.outbox import enqueue
from bot.notifications.render import KNOWN_TYPES, UnknownEvent, render
from bot.notifications.sender import SENDER
from bot.security.webhooks import SignatureError, verify_platform_signature
from bot.settings import Settings
from bot.store import notifications as store
from bot.store.conversations import conversations_of_customer
from bot.store.db import utcnow

log = logging.getLogger("finbot.events")
SHANGHAI = ZoneInfo("Asia/Shanghai")
routes = web.RouteTableDef()
ProductNames = web.AppKey("product_names", dict)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _parse(body: bytes) -> dict[str, Any]:
    """The event's fields, or ValueError naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    for field in ("event_id", "type", "customer_id", "occurred_at"):
        if not isinstance(data.get(field), str) or not data[field].strip():
            raise ValueError(f"{field} must be a non-empty string")
    if len(data["event_id"]) > 128 or len(data["customer_id"]) > 64:
        raise ValueError("event_id or customer_id too long")
    try:
        occurred = datetime.fromisoformat(data["occurred_at"].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("occurred_at must be an ISO 8601 time") from None
    if occurred.tzinfo is None:
        raise ValueError("occurred_at needs a time zone")
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        raise ValueError("payload must be an object")
    data["occurred_at"] = occurred
    data["payload"] = payload
    return data


def quiet_until(settings: Settings, now: datetime) -> datetime | None:
    """End of the quiet window when ``now`` (Asia/Shanghai wall clock) is inside it."""
    try:
        start_s, end_s = settings.quiet_hours.split("-")
        start = datetime.strptime(start_s.strip(), "%H:%M").time()
        end = datetime.strptime(end_s.strip(), "%H:%M").time()
    except ValueError:
        return None
    local = now.astimezone(SHANGHAI)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    end_dt = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_dt <= local:
        end_dt += timedelta(days=1)
    return end_dt


async def _platform_now(app: web.Application) -> datetime:
    """The platform's "now" (quiet hours follow it, as trading rules do); ours if it is silent."""
    try:
        from bot.dialogue.wiring import BACKEND

        clock = await asyncio.wait_for(app[BACKEND].get_clock(), timeout=1.5)
        return clock.now
    except Exception:  # noqa: BLE001 — a late clock must not lose the event
        return datetime.now(SHANGHAI)


def quiet_delay(settings: Settings, platform_now: datetime) -> timedelta | None:
    """How long a non-urgent message waits: until the quiet window ends on the platform's clock."""
    end = quiet_until(settings, platform_now)
    return None if end is None else end - platform_now


async def _product_names(app: web.Application, lang: str) -> dict[str, str]:
    """Catalog names for messages; a failure only means we show the product code."""
    cache: dict[str, Any] = app[ProductNames]
    if cache.get("expires", 0) < time.monotonic():
        try:
            from bot.dialogue.wiring import BACKEND

            products = await app[BACKEND].list_products()
            cache["zh"] = {p.code: p.name_zh for p in products}
            cache["en"] = {p.code: p.name_en for p in products}
            cache["expires"] = time.monotonic() + 600
        except Exception:  # noqa: BLE001 — names are cosmetic; the event must still go through
            cache["expires"] = time.monotonic() + 5
    return dict(cache.get(lang, {}))


@routes.post("/platform/events")
async def receive_event(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too_large", "event body too large")
    try:
        verify_platform_signature(
            settings.platform_secret,
            request.headers.get("X-Platform-Timestamp"),
            body,
            request.headers.get("X-Platform-Signature"),
            now=time.time(),
            max_age_s=settings.event_max_age_s,
        )
    except SignatureError as exc:
        EVENTS.labels("unknown", f"rejected_{exc.reason}").inc()
        return _error(401, exc.reason, "event signature check failed")
    try:
        event = _parse(body)
    except ValueError as exc:
        EVENTS.labels("unknown", "bad_request").inc()
        return _error(400, "bad_event", str(exc))

    names = {lang: await _product_names(request.app, lang) for lang in ("zh", "en")}
    db = request.app[DB]
    enqueued = 0
    platform_now: datetime | None = None
    async with db.begin() as session:
        conversations = [c for c in await conversations_of_customer(session, event["customer_id"])]
        if event["type"] not in KNOWN_TYPES:
            outcome = "unknown_type"
        elif not conversations:
            outcome = "no_conversation"
        else:
            outcome = "enqueued"
        fresh = await store.record_event(
            session, event_id=event["event_id"], type=event["type"][:64],
            customer_id=event["customer_id"], occurred_at=event["occurred_at"],
            payload=event["payload"], outcome=outcome,
        )
        if not fresh:
            EVENTS.labels(event["type"][:64], "replayed").inc()
            return _error(401, "replayed", "this event was already received")
        if outcome == "enqueued":
            for conv in conversations:
                try:
                    rendered = render(event["type"], event["payload"], conv.lang, names[conv.lang])
                except UnknownEvent as exc:
                    outcome = "unknown_type"
                    log.info("event %s not rendered: %s", event["event_id"], exc)
                    break
                prefs = await store.get_prefs(session, conv.id)
                if prefs.blocked or not prefs.wants(rendered.category):
                    continue
                not_before = None
                if prefs.quiet_hours and rendered.category not in store.ALWAYS_ON:
                    # The window is judged on the platform's clock; the outbox waits in real time.
                    if platform_now is None:
                        platform_now = await _platform_now(request.app)
                    delay = quiet_delay(settings, platform_now)
                    not_before = utcnow() + delay if delay else None
                if await enqueue(session, channel=conv.channel, sender=conv.sender,
                                 message=rendered.message, category=rendered.category,
                                 dedupe_key=f"{event['event_id']}:{conv.id}", not_before=not_before):
                    enqueued += 1
            if enqueued == 0 and outcome == "enqueued":
                outcome = "muted"
            await store.set_event_outcome(session, event["event_id"], outcome)
    EVENTS.labels(event["type"][:64], outcome).inc()
    if outcome in ("unknown_type", "no_conversation"):
        log.info("event %s acknowledged without a message (%s)", event["event_id"], outcome)
    wake = request.app.get(SENDER)
    if wake is not None and enqueued:
        wake.wake()
    return web.json_response({"status": "accepted", "outcome": outcome, "messages": enqueued})

