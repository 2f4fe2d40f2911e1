"""End to end over the REST channel: a history export arrives as a one-time download link."""

from __future__ import annotations

import csv
import io
import re

import aiohttp
import pytest

from backend_client.client import PlatformClient
from tests.conftest import BotFactory
from tests.handlers.conftest import place_order
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(90)


async def test_csv_export_over_rest_downloads_once(
    sandbox: SandboxServer, backend: PlatformClient, bot_server: BotFactory
) -> None:
    await sandbox.set_clock("2026-11-25T10:00:00+08:00")
    c = await sandbox.create_customer()
    order_id = await place_order(sandbox, backend, c, "subscribe", "BOND01", amount="1000")
    bot = await bot_server(backend_url=sandbox.base_url)
    sender = "rest-export-1"
    await bot.say(sender, f"绑定 {c['link_code']}")
    summary = await bot.say(sender, '/export_history{"format":"csv"}')
    assert any(b["payload"] == "/confirm" for m in summary for b in m.get("buttons", []))
    await bot.say(sender, "/confirm")
    done = await bot.say(sender, await sandbox.last_code(c["phone"]))
    text = "\n".join(m["text"] for m in done)
    urls = re.findall(r"https?://[A-Za-z0-9:/._~%?=&-]+", text)
    assert urls, text
    async with aiohttp.ClientSession() as http:
        async with http.get(urls[0]) as resp:
            assert resp.status == 200
            data = await resp.read()
        async with http.get(urls[0]) as again:
            assert again.status in (404, 410)  # one-time link
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[1][1] == order_id and rows[1][2] == "安心短债 (BOND01)"
