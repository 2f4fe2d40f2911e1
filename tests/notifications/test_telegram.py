"""Notices reach Telegram customers through the real PTB bot; a blocked chat stops getting them."""

from __future__ import annotations

import asyncio

from bot.app import DB
from bot.store import notifications as store
from tests.notifications.support import linked_chat, order_event, post_event
from tests.support.fake_telegram import FakeTelegram


async def test_notice_to_telegram_with_track_button_and_block_handling(bot_server) -> None:  # type: ignore[no-untyped-def]
    async with FakeTelegram() as fake:
        bot = await bot_server(telegram_token=fake.token, telegram_base_url=fake.base_url)
        await linked_chat(bot.app[DB], "telegram", "4242", "CUST-T", lang="en")
        status, _ = await post_event(bot.url, order_event("CUST-T", "settled"))
        assert status == 200
        [message] = await fake.wait_sent(4242, timeout=10)
        assert "have arrived" in message.text and "D2611250042" in message.text
        assert message.buttons and message.buttons[0]["text"] == "Track order"

        fake.block(4242)  # the customer blocks the bot
        status, _ = await post_event(bot.url, order_event("CUST-T", "confirmed", order_id="D2611250043"))
        assert status == 200
        for _ in range(100):
            async with bot.app[DB].begin() as session:
                counts = await store.counts(session)
            if counts.get("blocked"):
                break
            await asyncio.sleep(0.1)
        assert counts.get("blocked") == 1
        async with bot.app[DB].begin() as session:
            conv_id = await store.conversation_id_for(session, "telegram", "4242")
            assert conv_id is not None
            assert (await store.get_prefs(session, conv_id)).blocked
        # later notices for a blocked chat are not even queued
        status, body = await post_event(bot.url, order_event("CUST-T", "settled", order_id="D2611250043"))
        assert status == 200 and body["outcome"] == "muted"
