"""Background work: the status advancer and the signed delivery of outbox events to the bot."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select

from sandbox.db import EventRow, as_utc
from sandbox.service import Platform

log = logging.getLogger("sandbox.events")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """hex HMAC-SHA256 of `timestamp + "." + body` (ARCHITECTURE.md, Platform events)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def event_body(e: EventRow, platform: Platform) -> bytes:
    doc = {"event_id": e.event_id, "type": e.type, "customer_id": e.customer_id,
           "occurred_at": platform.iso(e.occurred_at), "payload": e.payload}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


async def advancer(platform: Platform, interval: float) -> None:
    """Every `interval` seconds, move due orders and complaints along (by the platform clock)."""
    while True:
        try:
            await platform.advance()
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the loop alive; a bad row must not stop every order
            log.exception("status advance failed")
        await asyncio.sleep(interval)


def _delivered(status: int, raw: bytes) -> bool:
    if 200 <= status < 300:
        return True
    if status == 401:  # the bot saw this event_id already: it is delivered
        try:
            data: Any = json.loads(raw)
            return isinstance(data, dict) and (data.get("error") or {}).get("code") == "replayed"
        except ValueError:
            return False
    return False


async def deliver_once(platform: Platform, session: aiohttp.ClientSession, url: str) -> int:
    """Post due, undelivered events once, oldest first; returns how many were delivered.

    A customer's events go out in order: while one waits for a retry, the later ones of the
    same customer wait too (a "settled" must not overtake its "confirmed")."""
    st = platform.settings
    real_now = datetime.now(UTC)
    async with platform.db.read() as s:
        pending = list((await s.execute(select(EventRow).where(EventRow.delivered_at.is_(None))
                                        .order_by(EventRow.id).limit(200))).scalars())
    blocked: set[str] = set()
    delivered = 0
    for e in pending:
        if e.customer_id in blocked:
            continue
        if as_utc(e.next_attempt_at) > real_now:  # type: ignore[operator]
            blocked.add(e.customer_id)
            continue
        body = event_body(e, platform)
        ts = str(int(time.time()))  # real time: the bot checks freshness against its own clock
        headers = {"Content-Type": "application/json", "X-Platform-Timestamp": ts,
                   "X-Platform-Signature": sign(st.platform_secret, ts, body)}
        error: str | None = None
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                raw = await resp.read()
                ok = _delivered(resp.status, raw)
                if not ok:
                    error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, error = False, type(exc).__name__
        async with platform.db.write() as s:
            row = await s.get(EventRow, e.id)
            if row is None:
                continue
            row.attempts += 1
            if ok:
                row.delivered_at = datetime.now(UTC)
                row.last_error = None
                delivered += 1
            else:
                backoff = min(st.delivery_backoff_max_s, 0.5 * 2 ** min(row.attempts - 1, 10))
                row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=backoff)
                row.last_error = error
                blocked.add(e.customer_id)
    return delivered


async def deliverer(platform: Platform, interval: float) -> None:
    """Deliver events to the bot until cancelled, retrying with backoff until a 2xx."""
    url = platform.settings.resolved_events_url()
    timeout = aiohttp.ClientTimeout(total=platform.settings.delivery_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            try:
                await deliver_once(platform, session, url)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event delivery failed")
            await asyncio.sleep(interval)
