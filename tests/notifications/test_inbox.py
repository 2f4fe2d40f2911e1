"""Signed platform events become exactly one message per linked chat, in its language."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.app import DB
from tests.notifications.support import linked_chat, order_event, post_event


async def _wait_pending(bot, sender: str, n: int = 1, timeout: float = 5.0) -> list[dict]:  # type: ignore[no-untyped-def]
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < n:
        got += await bot.pending(sender)
        if len(got) < n:
            await asyncio.sleep(0.1)
    return got


async def test_order_event_reaches_rest_customer_once_in_their_language(bot_server, db_url) -> None:  # type: ignore[no-untyped-def]
    bot = await bot_server(database_url=db_url)
    await linked_chat(bot.app[DB], "rest", "alice", "CUST-A", lang="zh")
    await linked_chat(bot.app[DB], "rest", "bob", "CUST-B", lang="en")
    event = order_event("CUST-A", "confirmed")
    status, body = await post_event(bot.url, event)
    assert status == 200, body
    got = await _wait_pending(bot, "alice")
    assert len(got) == 1
    assert "D2611250042" in got[0]["text"] and "已确认" in got[0]["text"]
    assert got[0]["buttons"][0]["payload"].startswith("/track_transaction")
    # the same event again is a replay: refused, and no second message
    status, body = await post_event(bot.url, event)
    assert status == 401 and body["error"]["code"] == "replayed"
    await asyncio.sleep(0.5)
    assert await bot.pending("alice") == []
    assert await bot.pending("bob") == []  # another customer's notice never leaks

    status, _ = await post_event(bot.url, order_event("CUST-B", "arrived", side="redeem"))
    assert status == 200
    got = await _wait_pending(bot, "bob")
    assert len(got) == 1 and "has arrived" in got[0]["text"] and "¥5,000.00" in got[0]["text"]


async def test_failed_order_says_why_and_what_next(bot_server) -> None:  # type: ignore[no-untyped-def]
    bot = await bot_server()
    await linked_chat(bot.app[DB], "rest", "carol", "CUST-C", lang="en")
    status, _ = await post_event(bot.url, order_event("CUST-C", "failed", reason="bank card declined"))
    assert status == 200
    got = await _wait_pending(bot, "carol")
    assert "failed" in got[0]["text"] and "bank card declined" in got[0]["text"]
    assert "Next step" in got[0]["text"]


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "wrong_secret", "stale", "future", "body_changed"],
)
async def test_bad_signatures_are_refused(bot_server, tamper: str) -> None:  # type: ignore[no-untyped-def]
    bot = await bot_server()
    await linked_chat(bot.app[DB], "rest", "dave", "CUST-D")
    event = order_event("CUST-D", "confirmed")
    if tamper == "unsigned":
        status, body = await post_event(bot.url, event, signed=False)
    elif tamper == "wrong_secret":
        status, body = await post_event(bot.url, event, secret="not-the-secret")
    elif tamper == "stale":
        status, body = await post_event(bot.url, event, timestamp=int(time.time()) - 301)
    elif tamper == "future":
        status, body = await post_event(bot.url, event, timestamp=int(time.time()) + 3600)
    else:
        import json

        from bot.security.webhooks import sign_platform_body
        from tests.conftest import PLATFORM_SECRET

        ts = int(time.time())
        good = json.dumps(event).encode()
        forged = good.replace(b"confirmed", b"settled")
        import aiohttp

        async with aiohttp.ClientSession() as http, http.post(
            f"{bot.url}/platform/events", data=forged,
            headers={"X-Platform-Timestamp": str(ts),
                     "X-Platform-Signature": sign_platform_body(PLATFORM_SECRET, ts, good)},
        ) as resp:
            status, body = resp.status, await resp.json()
    assert status == 401, body
    await asyncio.sleep(0.3)
    assert await bot.pending("dave") == []


async def test_unknown_customer_or_type_is_acknowledged(bot_server) -> None:  # type: ignore[no-untyped-def]
    bot = await bot_server()
    status, body = await post_event(bot.url, order_event("NOBODY", "confirmed"))
    assert status == 200 and body["outcome"] == "no_conversation"
    await linked_chat(bot.app[DB], "rest", "erin", "CUST-E")
    event = order_event("CUST-E", "confirmed")
    event["type"] = "account.frozen_for_fun"
    status, body = await post_event(bot.url, event)
    assert status == 200 and body["outcome"] == "unknown_type"
    assert await bot.pending("erin") == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event_id": 5}', b"{" * 5000 + b"}" * 5000])
async def test_malformed_events_get_400(bot_server, body: bytes) -> None:  # type: ignore[no-untyped-def]
    bot = await bot_server()
    status, answer = await post_event(bot.url, body)
    assert status == 400 and answer["error"]["code"] == "bad_event"


async def test_muted_category_is_not_sent_but_risk_warnings_always_are(bot_server) -> None:  # type: ignore[no-untyped-def]
    from bot.store import notifications as store

    bot = await bot_server()
    conv_id = await linked_chat(bot.app[DB], "rest", "fay", "CUST-F", lang="en")
    async with bot.app[DB].begin() as session:
        await store.set_prefs(session, conv_id, categories={"orders": False, "risk": False})
    status, body = await post_event(bot.url, order_event("CUST-F", "confirmed"))
    assert status == 200 and body["outcome"] == "muted"
    warning = {"event_id": "risk-1", "type": "risk.warning", "customer_id": "CUST-F",
               "occurred_at": "2026-11-25T10:00:00+08:00",
               "payload": {"code": "concentration", "detail": "80% of your assets are in one fund."}}
    status, _ = await post_event(bot.url, warning)
    assert status == 200
    got = await _wait_pending(bot, "fay")
    assert len(got) == 1 and "Risk warning" in got[0]["text"]
