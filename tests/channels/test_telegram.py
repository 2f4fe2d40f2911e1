"""The Telegram channel with the real PTB Application against the fake Bot API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.app import DELIVERY
from bot.channels.errors import ChannelBlocked, ChannelRateLimited, UnknownRecipient
from bot.types import Outgoing
from tests.channels.conftest import EXPORT, ChannelBotFactory, free_port
from tests.support.fake_telegram import FakeTelegram

pytestmark = pytest.mark.timeout(40)

CHAT = 4242


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


async def polling_bot(channel_bot: ChannelBotFactory, fake: FakeTelegram):  # type: ignore[no-untyped-def]
    return await channel_bot(telegram_token=fake.token, telegram_base_url=fake.base_url)


async def test_start_with_a_deep_link_code_reaches_the_engine_and_the_reply_comes_back(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    bot = await polling_bot(channel_bot, fake)
    assert fake.calls_to("getMe") and fake.calls_to("deleteWebhook")
    menu = {c["command"]: c["description"] for c in fake.commands["zh"]}  # the command menu, in Chinese
    assert menu["check_balance"] == "查询余额" and {"start", "help", "human"} <= set(menu)
    assert {c["command"] for c in fake.commands[""]} == set(menu)  # and the default (English) one
    await fake.send_text(CHAT, "/start 7KQ4M2XD")
    [reply] = await fake.wait_sent(CHAT)
    seen = bot.engine.seen[-1]
    assert seen.channel == "telegram" and seen.sender == str(CHAT)
    assert seen.text == "/start 7KQ4M2XD" and seen.meta["start_param"] == "7KQ4M2XD"
    assert seen.meta["language_code"] == "zh"
    assert reply.text == "echo: /start 7KQ4M2XD"


async def test_inline_buttons_are_pressed_answered_and_their_payload_is_the_message(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    bot = await polling_bot(channel_bot, fake)
    await fake.send_text(CHAT, "菜单")
    [menu] = await fake.wait_sent(CHAT)
    assert [b["text"] for b in menu.buttons] == ["查余额 Balance", "评价 Rate"]
    short, long = (b["callback_data"] for b in menu.buttons)
    assert short == "/check_balance"
    assert len(long.encode()) <= 64  # the long payload travels under a short key
    await fake.press(CHAT, menu.message_id, short)
    _, answer = await fake.wait_sent(CHAT, 2)
    assert answer.text == "您的总资产 ¥50,000.00"
    assert fake.calls_to("answerCallbackQuery")
    assert menu.edits[-1].endswith("› 查余额 Balance") and menu.buttons == []  # keyboard gone
    assert bot.engine.seen[-1].text == "/check_balance"
    await fake.press(CHAT, menu.message_id, long)
    await fake.wait_sent(CHAT, 3, timeout=8)
    assert bot.engine.seen[-1].text.startswith('/rate{"score": 4')
    await fake.press(CHAT, menu.message_id, "k:unknown-key")
    expired = (await fake.wait_sent(CHAT, 4, timeout=8))[-1]
    assert "失效" in (expired.text or "")


async def test_an_attachment_is_sent_as_a_document(channel_bot: ChannelBotFactory, fake: FakeTelegram) -> None:
    await polling_bot(channel_bot, fake)
    await fake.send_text(CHAT, "导出")
    [doc] = await fake.wait_sent(CHAT)
    assert doc.document == EXPORT.data and doc.file_name == EXPORT.filename
    assert doc.caption == "您的交易记录："


async def test_a_one_time_code_message_is_deleted_from_the_chat(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    bot = await polling_bot(channel_bot, fake)
    update = await fake.send_text(CHAT, "123456")
    await fake.wait_sent(CHAT)
    [delete] = await fake.wait_calls("deleteMessage")
    assert int(delete.params["message_id"]) == update["message"]["message_id"]
    assert int(delete.params["chat_id"]) == CHAT
    assert bot.engine.seen[-1].message_id == str(update["message"]["message_id"])


async def test_group_chats_are_ignored_and_non_text_gets_a_polite_answer(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    bot = await polling_bot(channel_bot, fake)
    await fake.send_text(-100, "我的余额")
    sticker = fake.text_update(CHAT, "x")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {
        "file_id": "s", "file_unique_id": "s", "width": 1, "height": 1, "is_animated": False,
        "is_video": False, "type": "regular",
    }
    await fake.deliver(sticker)
    [reply] = await fake.wait_sent(CHAT)
    assert "文字" in (reply.text or "")
    assert fake.sent(-100) == [] and bot.engine.seen == []


async def test_webhook_mode_checks_the_secret_header(channel_bot: ChannelBotFactory, fake: FakeTelegram) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/webhook"
    bot = await channel_bot(
        port=port, telegram_token=fake.token, telegram_base_url=fake.base_url,
        telegram_webhook_url=hook, telegram_secret="hook-secret_1",
    )
    assert fake.webhook == {"url": hook, "secret_token": "hook-secret_1", "allowed_updates": ["message", "callback_query"]}
    assert not fake.calls_to("getUpdates")
    update = fake.text_update(CHAT, "hello")
    async with aiohttp.ClientSession() as http:
        async with http.post(hook, json=update) as resp:
            assert resp.status == 403
        async with http.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
            assert resp.status == 403
        async with http.post(hook, data=b"{", headers={"X-Telegram-Bot-Api-Secret-Token": "hook-secret_1"}) as resp:
            assert resp.status == 400
    assert bot.engine.seen == []
    assert await fake.deliver(update) == 200  # the fake sends the secret like Telegram does
    [reply] = await fake.wait_sent(CHAT)
    assert reply.text == "echo: hello"


async def test_without_a_configured_secret_every_process_uses_the_same_derived_one(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    secrets = []
    for _ in range(2):
        port = free_port()
        hook = f"http://127.0.0.1:{port}/telegram/webhook"
        await channel_bot(port=port, telegram_token=fake.token, telegram_base_url=fake.base_url, telegram_webhook_url=hook)
        assert fake.webhook is not None
        secrets.append(fake.webhook["secret_token"])
    assert secrets[0] == secrets[1] and len(secrets[0]) >= 32 and fake.token not in secrets[0]
    bot_reply = await fake.deliver(fake.text_update(CHAT, "hi"))  # posted to the second process
    assert bot_reply == 200
    assert (await fake.wait_sent(CHAT))[0].text == "echo: hi"


async def test_the_pusher_sends_and_raises_typed_errors(channel_bot: ChannelBotFactory, fake: FakeTelegram) -> None:
    bot = await polling_bot(channel_bot, fake)
    delivery = bot.app[DELIVERY]
    await delivery.push("telegram", str(CHAT), Outgoing(text="您的赎回款已到账"))
    assert (await fake.wait_sent(CHAT))[0].text == "您的赎回款已到账"
    fake.block(777)
    with pytest.raises(ChannelBlocked):
        await delivery.push("telegram", "777", Outgoing(text="x"))
    with pytest.raises(UnknownRecipient):
        await delivery.push("telegram", "not-a-chat", Outgoing(text="x"))


async def test_messages_to_one_chat_are_spaced_to_telegrams_one_per_second(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    bot = await polling_bot(channel_bot, fake)
    delivery = bot.app[DELIVERY]
    for text in ("one", "two", "three"):
        await delivery.push("telegram", str(CHAT), Outgoing(text=text))
    assert [m.text for m in fake.sent(CHAT)] == ["one", "two", "three"]
    assert [c.status for c in fake.calls_to("sendMessage")] == [200, 200, 200]  # no 429 needed
    gaps = [b - a for a, b in zip(fake.sent_times, fake.sent_times[1:], strict=False)]
    assert min(gaps) >= 0.95


async def test_a_429_is_waited_out_and_retried_not_lost(channel_bot: ChannelBotFactory, fake: FakeTelegram) -> None:
    bot = await polling_bot(channel_bot, fake)
    fake.window_s = 2.5  # stricter than our spacing: the second send gets a 429 (retry after 2)
    delivery = bot.app[DELIVERY]
    await delivery.push("telegram", str(CHAT), Outgoing(text="one"))
    await delivery.push("telegram", str(CHAT), Outgoing(text="two"))
    assert [m.text for m in fake.sent(CHAT)] == ["one", "two"]
    assert [c.status for c in fake.calls_to("sendMessage")] == [200, 429, 200]
    assert fake.sent_times[1] - fake.sent_times[0] >= 2.4


async def test_a_chat_still_limited_after_the_retries_is_channel_rate_limited(
    channel_bot: ChannelBotFactory, fake: FakeTelegram
) -> None:
    bot = await polling_bot(channel_bot, fake)
    fake.per_chat_limit = 0
    with pytest.raises(ChannelRateLimited) as caught:
        await bot.app[DELIVERY].push("telegram", str(CHAT), Outgoing(text="x"))
    assert caught.value.retry_after == 1
    assert len(fake.calls_to("sendMessage")) == 3  # the first try and max_retries=2


async def test_without_a_token_the_pusher_says_unavailable(channel_bot: ChannelBotFactory) -> None:
    from bot.channels.errors import ChannelUnavailable

    bot = await channel_bot()
    with pytest.raises(ChannelUnavailable):
        await bot.app[DELIVERY].push("telegram", "1", Outgoing(text="x"))
    await asyncio.sleep(0)
