"""Status changes reach the bot as signed events within 2 s, retried until acknowledged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.sandbox.helpers import place
from tests.support.sandbox import free_port, running_sandbox

pytestmark = pytest.mark.timeout(60)
SECRET = "events-test-secret"


@dataclass
class Receiver:
    """Stands in for the bot's /platform/events: checks signatures like the contract says."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    fail_next: int = 0
    replay_answer: bool = False
    bad_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers.get("X-Platform-Timestamp", "")
        sig = request.headers.get("X-Platform-Signature", "")
        want = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, want) or abs(time.time() - int(ts)) > 300:
            self.bad_signatures += 1
            return web.json_response({"error": {"code": "bad_signature"}}, status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": {"code": "busy"}}, status=503)
        if self.replay_answer:
            return web.json_response({"error": {"code": "replayed"}}, status=401)
        self.events.append(json.loads(body))
        self.arrivals.append(time.monotonic())
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/platform/events", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.url = f"http://127.0.0.1:{port}/platform/events"
    yield rec
    await runner.cleanup()


async def _wait(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_status_change_arrives_signed_within_two_seconds(receiver: Receiver,
                                                               tmp_path: Path):
    async with running_sandbox(tmp_dir=tmp_path, events_url=receiver.url,
                               platform_secret=SECRET) as sb:
        await sb.set_clock("2026-11-25T10:00:00+08:00")
        c = await sb.create_customer()
        _, order = await place(sb, c, side="subscribe", product="MMF01", amount="100")
        changed = time.monotonic()
        await sb.set_clock("2026-11-26T09:00:00+08:00")
        await _wait(lambda: len(receiver.events) >= 1, 5)
        assert receiver.arrivals[0] - changed < 2.0
        ev = receiver.events[0]
        assert ev["type"] == "order.status_changed" and ev["customer_id"] == c["customer_id"]
        assert ev["occurred_at"] == "2026-11-26T09:00:00+08:00"
        assert ev["payload"] == {"order_id": order["order_id"], "side": "subscribe",
                                 "product": "MMF01", "status": "confirmed", "amount": "100.00",
                                 "shares": "100.00"}
        await sb.risk_warning(c["customer_id"], "large_outflow", "大额转出预警")
        await _wait(lambda: len(receiver.events) >= 2, 5)
        assert receiver.events[1]["type"] == "risk.warning"
        assert receiver.events[1]["payload"] == {"code": "large_outflow",
                                                 "detail": "大额转出预警"}
        assert receiver.bad_signatures == 0
        assert len({e["event_id"] for e in receiver.events}) == 2


async def test_delivery_retries_until_2xx_keeping_each_customers_order(receiver: Receiver,
                                                                          tmp_path: Path):
    receiver.fail_next = 2
    async with running_sandbox(tmp_dir=tmp_path, events_url=receiver.url,
                               platform_secret=SECRET) as sb:
        c = await sb.create_customer()
        for n in range(3):
            await sb.risk_warning(c["customer_id"], "login_anomaly", f"异地登录 {n}")
        await _wait(lambda: len(receiver.events) == 3, 10)
        assert [e["payload"]["detail"] for e in receiver.events] == [
            "异地登录 0", "异地登录 1", "异地登录 2"]
        evs = await sb.events()
        assert all(e["delivered"] for e in evs) and evs[0]["attempts"] == 3


async def test_replayed_answer_counts_as_delivered(receiver: Receiver, tmp_path: Path):
    receiver.replay_answer = True
    async with running_sandbox(tmp_dir=tmp_path, events_url=receiver.url,
                               platform_secret=SECRET) as sb:
        c = await sb.create_customer()
        await sb.risk_warning(c["customer_id"], "x", "y")
        events: list[dict[str, Any]] = []

        async def delivered() -> None:
            while not events or not events[0]["delivered"]:
                await asyncio.sleep(0.1)
                events[:] = await sb.events()

        await asyncio.wait_for(delivered(), 5)
        assert events[0]["attempts"] == 1


async def test_wrong_secret_is_refused_and_retried(receiver: Receiver, tmp_path: Path):
    async with running_sandbox(tmp_dir=tmp_path, events_url=receiver.url,
                               platform_secret="not-the-bots-secret") as sb:
        c = await sb.create_customer()
        await sb.risk_warning(c["customer_id"], "x", "y")
        await _wait(lambda: receiver.bad_signatures >= 1, 5)
        await asyncio.sleep(0.3)
        [ev] = await sb.events()
        assert ev["delivered"] is False and receiver.events == []
