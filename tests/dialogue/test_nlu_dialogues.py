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
    assert "Shares: 500.00 × NAV" in text and "Estimated proceeds" in text, text


async def test_two_misunderstandings_offer_a_human_without_forcing_it(nlu_world: World) -> None:
    chat = nlu_world.chat("nlu-lost-1")
    first = await chat.say("blorp")  # nlu_fallback
    assert "still" not in joined(first), joined(first)
    second = await chat.say("zzkq vvbnm tyui")  # nlu_fallback again
    assert "still didn't get that" in joined(second), joined(second)
    assert "/human_handoff" in payloads(second)
    from sqlalchemy import text

    async with nlu_world.db.begin() as s:
        tickets = list(await s.execute(text("SELECT id FROM handoff_tickets")))
    assert tickets == []  # offered, not forced


async def test_yes_after_the_reminder_resumes_with_the_summary_not_a_code(nlu_world: World) -> None:
    chat, cust = await nlu_world.linked_chat("nlu-zh-2")
    await chat.say("买一万五的均衡混合")
    out = await chat.say("手续费怎么算")
    assert "赎回费" in joined(out) and "/resume" in payloads(out)
    sms = await nlu_world.sms_count(cust)
    out = await chat.say("好的")
    assert "申购确认" in joined(out) and "/confirm" in payloads(out)
    assert await nlu_world.sms_count(cust) == sms  # no code before the customer confirms


async def test_asking_to_check_orders_is_answered_about_orders(nlu_world: World) -> None:
    """Earlier models put 帮我查一下订单 just inside out_of_scope; whatever the model says, the
    customer must get an answer about their orders (or a choice of order views), not a refusal."""
    chat, _ = await nlu_world.linked_chat("nlu-zh-3")
    out = await chat.say("帮我查一下订单")
    offered = {"/transaction_history", "/track_transaction"} & set(payloads(out))
    assert offered or "订单" in joined(out), joined(out)
    assert "帮不上忙" not in joined(out), joined(out)


async def test_a_bare_amount_with_nothing_asked_offers_choices_keeping_it(nlu_world: World) -> None:
    chat, _ = await nlu_world.linked_chat("nlu-zh-4")
    out = await chat.say("五千块")
    assert "买入还是赎回" in joined(out), joined(out)
    buy = next(p for p in payloads(out) if p.startswith("/buy_product"))
    assert "5000" in buy
    out = await chat.say(buy)
    assert "买哪只" in joined(out)  # the amount is kept: only the product is asked
