"""Unlink and forget-me behind a fresh code; "my data" as a file; nothing personal afterwards."""

from __future__ import annotations

import json

import pytest

from tests.dialogue.conftest import World, joined, payloads

pytestmark = pytest.mark.timeout(60)


async def test_unlink_needs_a_fresh_code_then_the_chat_sees_nothing(world: World) -> None:
    chat, cust = await world.linked_chat("unlinker-1", cash="7777.77")
    out = await chat.say("解绑")
    assert "/confirm" in payloads(out)
    sms_before = await world.sms_count(cust)
    await chat.say("/confirm")
    assert await world.sms_count(cust) == sms_before + 1
    assert "已解绑" not in joined(await chat.say("/check_balance"))  # still linked until the code
    assert "已解绑" in joined(await chat.say(await world.code(cust)))
    text = joined(await chat.say("/check_balance"))
    assert "绑定码" in text and "¥7,777.77" not in text


async def test_my_data_is_exported_and_forget_me_erases_the_chat(world: World) -> None:
    chat, cust = await world.linked_chat("forgetter-1")
    await chat.say("/list_products")
    out = await chat.say("我的数据")
    assert out[0].attachment is not None
    exported = json.loads(out[0].attachment.data)
    assert exported["conversation"]["linked"] is True and exported["transcripts"]
    out = await chat.say("forget me")
    assert "/confirm" in payloads(out) and out[0].text.isascii()
    await chat.say("/confirm")
    out = await chat.say(await world.code(cust))
    assert "erased" in joined(out)
    from sqlalchemy import select

    from bot.store.conversations import ConversationRow, TranscriptRow

    async with world.db.begin() as s:
        conv = (await s.execute(select(ConversationRow).where(ConversationRow.sender == "forgetter-1"))).scalar_one()
        lines = list((await s.execute(select(TranscriptRow).where(TranscriptRow.conversation_id == conv.id))).scalars())
    assert conv.customer_id is None
    assert [line.role for line in lines] == ["bot"]  # only the confirmation of the erasure
    assert "link code" in joined(await chat.say("/check_balance"))
