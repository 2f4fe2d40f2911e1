"""Buying through the engine against the real sandbox: one order per confirmation, no matter what."""

from __future__ import annotations

import asyncio

import pytest

from tests.dialogue.conftest import ORDER_ID, World, joined, payloads

pytestmark = pytest.mark.timeout(60)


async def test_buy_with_double_tapped_confirm_and_repeated_code_makes_one_order(any_world: World) -> None:
    w = any_world
    chat, cust = await w.linked_chat("buyer-1", cash="50000.00")
    out = await chat.say('/buy_product{"product": "BOND01"}')
    assert "多少" in joined(out)  # only the missing amount is asked
    out = await chat.say("5000")
    text = joined(out)
    assert "安心短债" in text and "¥5,000.00" in text
    assert "R2" in text and "申购费" in text and "预计份额" in text
    assert "理财非存款，产品有风险，投资须谨慎。" in text
    assert "/confirm" in payloads(out) and "/cancel" in payloads(out)

    sms_before = await w.sms_count(cust)
    first, second = await asyncio.gather(chat.say("/confirm"), chat.say("/confirm"))
    assert await w.sms_count(cust) == sms_before + 1  # the double tap sent one code only
    assert any("验证码" in joined(o) for o in (first, second))
    code = await w.code(cust)
    assert "申购" in (await w.sandbox.sms(cust["phone"]))[-1]["text"]

    done = await chat.say(code)
    assert done[0].delete_message_id is not None  # Telegram deletes the code message
    order_ids = ORDER_ID.findall(joined(done))
    assert order_ids, joined(done)
    again = await chat.say(code)
    assert "已经提交" in joined(again) and order_ids[0] in joined(again)
    tap = await chat.say("/confirm")
    assert order_ids[0] in joined(tap)

    orders = await w.sandbox.orders(cust["customer_id"])
    assert len(orders) == 1
    assert orders[0]["order_id"] == order_ids[0]
    assert orders[0]["amount"] == "5000.00" and orders[0]["side"] == "subscribe"


async def test_risk_mismatch_explains_levels_and_places_no_order(world: World) -> None:
    chat, cust = await world.linked_chat("cautious-1", risk_tolerance="C2")
    out = await chat.say('/buy_product{"product": "IDX300", "amount": "1000"}')
    text = joined(out)
    assert "R4" in text and "C2" in text and "风险测评" in text
    assert "/confirm" not in payloads(out)
    assert await world.sandbox.orders(cust["customer_id"]) == []
    # The task is over: a confirm now has nothing to confirm.
    assert "没有需要确认" in joined(await chat.say("/confirm"))


async def test_outside_trading_hours_names_the_next_trading_day(world: World) -> None:
    chat, _cust = await world.linked_chat("evening-1")
    await world.sandbox.set_clock("2026-11-27T20:00:00+08:00")  # Friday evening
    out = await chat.say('/buy_product{"product": "MMF01", "amount": "200"}')
    text = joined(out)
    assert "下一交易日" in text and "2026年11月30日" in text, text


async def test_english_customer_gets_english_summary(world: World) -> None:
    chat, cust = await world.linked_chat("en-buyer")
    out = await chat.say("I want to buy something")  # English, NLU down: menu in English
    assert "buttons below" in joined(out)
    out = await chat.say('/buy_product{"product": "BOND01", "amount": "2000"}')
    text = joined(out)
    assert "Short-term Bond" in text and "¥2,000.00" in text
    assert "Investments are not deposits and carry risk." in text


async def test_two_bot_processes_racing_on_one_code_make_one_order(any_world: World) -> None:
    w = any_world
    chat, cust = await w.linked_chat("racer-1")
    await chat.say('/buy_product{"product": "MMF01", "amount": "300"}')
    await chat.say("/confirm")
    code = await w.code(cust)
    one, two = w.chat("racer-1", engine=w.engine()), w.chat("racer-1", engine=w.engine())
    a, b = await asyncio.gather(one.say(code), two.say(code))
    orders = await w.sandbox.orders(cust["customer_id"])
    assert len(orders) == 1
    assert orders[0]["order_id"] in joined(a) + joined(b)
