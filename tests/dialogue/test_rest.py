"""The engine behind the real bot app and its REST channel, against the real sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.dialogue.conftest import ORDER_ID, TRADING_MORNING
from tests.support.sandbox import running_sandbox

pytestmark = pytest.mark.timeout(90)


async def test_rest_purchase_double_tap_and_restart(bot_server: BotFactory, tmp_path: Path) -> None:
    async with running_sandbox(tmp_dir=tmp_path) as sb:
        await sb.set_clock(TRADING_MORNING)
        cust = await sb.create_customer(cash="30000.00")
        bot = await bot_server(backend_url=sb.base_url)
        replies = await bot.say("rest-buyer", cust["link_code"])
        assert "绑定成功" in replies[0]["text"]
        replies = await bot.say("rest-buyer", '/buy_product{"product": "BOND01", "amount": "1500"}')
        assert any(b["payload"] == "/confirm" for r in replies for b in r.get("buttons", []))
        taps = await asyncio.gather(bot.say("rest-buyer", "/confirm"), bot.say("rest-buyer", "/confirm"))
        assert len(await sb.sms(cust["phone"])) == 1 and all(taps)
        await bot.stop()  # the bot restarts between the code SMS and the customer's answer
        again = await bot_server(
            backend_url=sb.base_url, database_url=bot.settings.database_url, keys_file=bot.settings.keys_file
        )
        code = await sb.last_code(cust["phone"])
        replies = await again.say("rest-buyer", code)
        text = "\n".join(r["text"] for r in replies)
        assert ORDER_ID.search(text), text
        replies = await again.say("rest-buyer", code)  # the repeated code
        assert "已经提交" in replies[0]["text"]
        assert len(await sb.orders(cust["customer_id"])) == 1


async def test_rest_platform_down_answers_within_the_timeout(bot_server: BotFactory) -> None:
    import time

    bot = await bot_server()  # backend URL where nothing listens
    started = time.monotonic()
    replies = await bot.say("rest-down", "/check_balance")
    assert time.monotonic() - started < 2.5
    assert replies and "绑定码" in replies[0]["text"]  # unlinked: told how to link, no call needed
    replies = await bot.say("rest-down", "7KQ4M2XD")  # linking needs the platform: it is down
    assert time.monotonic() - started < 5
    assert "稍后再试" in replies[0]["text"]
