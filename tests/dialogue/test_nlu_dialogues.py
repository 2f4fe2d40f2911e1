"""Conversations in free text through the real Rasa NLU server (zh and en)."""

from __future__ import annotations

import pytest

from tests.dialogue.conftest import ORDER_ID, World, joined, payloads

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(180)]


async def test_chinese_purchase_in_free_text_with_a_faq_in_the_middle(nlu_world: World) -> None:
    chat, cust = await nlu_world.linked_chat("nlu-zh-1")
    out = await chat.say("我想买安心短债")
    assert "多少" in joined(out), joined(out)
    out = await chat.say("交易时间是几点？")
    assert "09:00" in joined(out) and "/resume" in payloads(out), joined(out)
    text = joined(await chat.say("五千"))
    assert "¥5,000.00" in text and "理财非存款" in text, text
    text = joined(await chat.say("改成两千"))
    assert "¥2,000.00" in text
    await chat.say("确认")
    done = joined(await chat.say(await nlu_world.code(cust)))
    assert ORDER_ID.search(done), done
    assert [o["amount"] for o in await nlu_world.sandbox.orders(cust["customer_id"])] == ["2000.00"]


async def test_english_balance_and_redeem_all(nlu_world: World) -> None:
    chat, _ = await nlu_world.linked_chat(
        "nlu-en-1", cash="1000.00", holdings=[{"product": "MMF01", "shares": "500"}]
    )
    text = joined(await chat.say("what's my balance?"))
    assert "Available cash: ¥1,000.00" in text, text
    text = joined(await chat.say("I want to redeem all of my money market fund"))
    assert "500.00 shares × NAV" in text or "How much" in text, text


async def test_two_misunderstandings_offer_a_human_without_forcing_it(nlu_world: World) -> None:
    chat = nlu_world.chat("nlu-lost-1")
    first = await chat.say("qwzx plmokn ujhy")
    assert "/human_handoff" not in payloads(first)
    second = await chat.say("zzkq vvbnm tyui")
    assert "/human_handoff" in payloads(second), joined(second)
    from sqlalchemy import text

    async with nlu_world.db.begin() as s:
        tickets = list(await s.execute(text("SELECT id FROM handoff_tickets")))
    assert tickets == []  # offered, not forced
