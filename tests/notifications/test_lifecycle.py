"""The real sandbox walks an order through its statuses; the customer hears each step once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import PLATFORM_SECRET, free_port
from tests.support.sandbox import running_sandbox


async def _collect(bot, sender: str, want: list[str], timeout: float = 15.0) -> list[str]:  # type: ignore[no-untyped-def]
    """Poll the REST channel until every word in ``want`` was seen (or time runs out)."""
    texts: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(any(w in t for t in texts) for w in want):
        texts += [m["text"] for m in await bot.pending(sender)]
        await asyncio.sleep(0.2)
    return texts


async def test_subscription_notices_arrive_once_each_as_the_clock_advances(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    async with running_sandbox(tmp_dir=tmp_path, events_url=f"http://127.0.0.1:{port}/platform/events",
                               platform_secret=PLATFORM_SECRET) as sandbox:
        # Wednesday 25 Nov 2026, 10:00 in Shanghai: inside the trading window.
        await sandbox.set_clock("2026-11-25T10:00:00+08:00")
        bot = await bot_server(port=port, backend_url=sandbox.base_url)
        customer = await sandbox.create_customer(name="李娜", risk_tolerance="C3", cash="50000.00")
        await bot.say("lina", f"绑定 {customer['link_code']}")
        replies = await bot.say("lina", '/buy_product{"product": "BOND01", "amount": "5000"}')
        confirm = next(b["payload"] for r in replies for b in r.get("buttons", []) if "confirm" in b["payload"])
        await bot.say("lina", confirm)
        done = await bot.say("lina", await sandbox.last_code(customer["phone"]))
        [order] = await sandbox.orders(customer["customer_id"])
        assert order["order_id"] in " ".join(r["text"] for r in done)

        await sandbox.set_clock("2026-11-26T10:00:00+08:00")  # next trading day: confirmed
        confirmed = await _collect(bot, "lina", ["已确认"])
        await sandbox.set_clock("2026-11-27T10:00:00+08:00")  # a day later: settled
        settled = await _collect(bot, "lina", ["已到账"])
        await asyncio.sleep(2.5)  # any duplicate delivery would arrive within 2 s
        later = [m["text"] for m in await bot.pending("lina")]

    notices = [t for t in confirmed + settled + later if order["order_id"] in t]
    assert sum("已确认" in t for t in notices) == 1, notices
    assert sum("已到账" in t for t in notices) == 1, notices
    assert all("¥5,000.00" in t or "份" in t for t in notices)
