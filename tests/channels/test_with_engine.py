"""The channels with the real engine and the real sandbox platform: link, confirm, step-up code.

NLU is not needed here: link codes, button payloads and one-time codes are understood by the
engine without it (the bot_server fixture points NLU at a port nobody listens on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.support.fake_telegram import FakeTelegram
from tests.support.sandbox import SandboxServer, running_sandbox

pytestmark = pytest.mark.timeout(60)

BUY = '/buy_product{"product": "MMF01", "amount": "1000"}'


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    async with running_sandbox(tmp_dir=tmp_path) as server:
        yield server


async def test_rest_link_buy_confirm_and_step_up(bot_server: BotFactory, platform: SandboxServer) -> None:
    customer = await platform.create_customer(cash="50000.00")
    bot = await bot_server(backend_url=platform.base_url)
    linked = await bot.say("r1", f"绑定 {customer['link_code']}")
    assert "绑定成功" in linked[0]["text"]
    assert {"title": "查询余额", "payload": "/check_balance"} in linked[0]["buttons"]
    summary = await bot.say("r1", BUY)
    assert "¥1,000.00" in summary[0]["text"]
    assert {"title": "确认", "payload": "/confirm"} in summary[-1]["buttons"]
    asked = await bot.say("r1", "/confirm")
    assert "验证码" in asked[0]["text"]
    done = await bot.say("r1", await platform.last_code(customer["phone"]))
    assert done and "验证码" not in done[0]["text"]
    orders = await platform.orders(customer["customer_id"])
    assert [(o["product"], o["amount"]) for o in orders] == [("MMF01", "1000.00")]


HOSTILE = ["", "   ", "\x00\x1b", "x" * 5000, "🙂", "'; DROP TABLE conversations; --", "<script>alert(1)</script>"]


async def test_hostile_input_through_the_real_engine_is_answered_politely(
    bot_server: BotFactory, platform: SandboxServer
) -> None:
    bot = await bot_server(backend_url=platform.base_url)
    for hostile in HOSTILE:
        replies = await bot.say("h1", hostile)  # asserts the 200
        assert replies and all(r["text"] for r in replies), hostile
        assert "Traceback" not in str(replies)


async def test_telegram_deep_link_buttons_and_the_code_message_deleted(
    bot_server: BotFactory, platform: SandboxServer
) -> None:
    customer = await platform.create_customer(cash="50000.00")
    async with FakeTelegram() as fake:
        fake.limits_enabled = False  # this test is about the conversation, not the pacing
        await bot_server(backend_url=platform.base_url, telegram_token=fake.token, telegram_base_url=fake.base_url)
        await fake.send_text(99, f"/start {customer['link_code']}")
        [linked] = await fake.wait_sent(99, 1, timeout=10)
        assert "绑定成功" in (linked.text or "")
        await fake.send_text(99, "/check_balance")  # a command from the bot's menu
        balance = (await fake.wait_sent(99, 2, timeout=10))[-1]
        assert "¥50,000.00" in (balance.text or "")
        await fake.send_text(99, BUY)
        sent = await fake.wait_sent(99, 4, timeout=10)
        confirm = sent[-1]
        assert [b["callback_data"] for b in confirm.buttons] == ["/confirm", "/cancel"]
        await fake.press(99, confirm.message_id, "/confirm")
        asked = (await fake.wait_sent(99, 5, timeout=10))[-1]
        assert "验证码" in (asked.text or "")
        assert confirm.edits and confirm.edits[-1].endswith("› 确认")
        code_update = await fake.send_text(99, await platform.last_code(customer["phone"]))
        # Both credentials leave the chat: the /start link code, then the one-time code.
        start_delete, delete = await fake.wait_calls("deleteMessage", 2, timeout=10)
        assert int(start_delete.params["chat_id"]) == int(delete.params["chat_id"]) == 99
        assert int(start_delete.params["message_id"]) == 1  # the "/start <code>" message
        assert int(delete.params["message_id"]) == code_update["message"]["message_id"]
        assert len(await platform.orders(customer["customer_id"])) == 1
