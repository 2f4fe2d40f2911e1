"""Helpers for notification tests: link a chat in the bot's DB, post signed events."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp

from bot.security.webhooks import sign_platform_body
from bot.store import conversations as conv_store
from bot.store.db import Database
from tests.conftest import PLATFORM_SECRET


async def linked_chat(db: Database, channel: str, sender: str, customer_id: str, lang: str = "zh") -> int:
    """A conversation already linked to ``customer_id`` (as the link flow leaves it)."""
    async with db.begin() as session:
        conv = await conv_store.get_or_create(session, channel, sender, lang)  # type: ignore[arg-type]
        await conv_store.save(session, conv.id, expected_version=conv.state_version, state={},
                              lang=lang, customer_id=customer_id, verified_at=None)  # type: ignore[arg-type]
        return conv.id


def order_event(customer_id: str, status: str, *, side: str = "subscribe", order_id: str = "D2611250042",
                event_id: str | None = None, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "type": "order.status_changed",
        "customer_id": customer_id,
        "occurred_at": "2026-11-25T10:00:00+08:00",
        "payload": {"order_id": order_id, "side": side, "product": "BOND01", "status": status,
                    "amount": "5000.00", "shares": "4985.04", **payload},
    }


async def post_event(bot_url: str, event: dict[str, Any] | bytes, *, secret: str = PLATFORM_SECRET,
                     timestamp: int | None = None, signed: bool = True) -> tuple[int, dict[str, Any]]:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Platform-Timestamp"] = ts
        headers["X-Platform-Signature"] = sign_platform_body(secret, ts, body)
    async with aiohttp.ClientSession() as http, http.post(
        f"{bot_url}/platform/events", data=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()
