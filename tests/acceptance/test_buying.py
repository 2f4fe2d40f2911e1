"""Buying as customers type it: amounts in words, missing slots, corrections, cancel, FAQ detours."""

from __future__ import annotations

import asyncio

import pytest

from tests.acceptance.conftest import assert_en, assert_zh
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(120)]


async def test_buy_with_the_amount_in_chinese_words_places_one_order(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    out = await chat.say("买一万五的稳盈货币")
    assert_zh(out)
    assert "¥15,000.00" in out.text and "稳盈货币A" in out.text, out.text
    assert "理财非存款" in out.text and "/confirm" in out.payloads, out.text
    await chat.say("确认")
    done = await chat.say(await stack.code(cust))
    assert done.order_ids(), done.text
    orders = await stack.orders(cust)
    assert [(o["product"], o["amount"], o["side"]) for o in orders] == [("MMF01", "15000.00", "subscribe")]
    assert orders[0]["order_id"] in done.text


async def test_buy_2k_of_the_bond_fund_in_english_then_make_it_3000(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True)
    out = await chat.say("buy 2k of the bond fund")
    assert_en(out)
    assert "Short-term Bond" in out.text and "¥2,000.00" in out.text, out.text
    out = await chat.say("make it 3000")
    assert "¥3,000.00" in out.text and "¥2,000.00" not in out.text, out.text
    await chat.say("confirm")
    done = await chat.say(await stack.code(cust))
    assert_en(done)
    assert [(o["product"], o["amount"]) for o in await stack.orders(cust)] == [("BOND01", "3000.00")]


async def test_missing_product_is_the_only_thing_asked(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat)
    out = await chat.say("买5000")
    assert "哪" in out.text and "多少" not in out.text, out.text
    assert any("MMF01" in p for p in out.payloads), out.payloads
    out = await chat.say("稳盈")
    assert "¥5,000.00" in out.text and "稳盈货币A" in out.text, out.text


async def test_missing_amount_is_the_only_thing_asked(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, english=True)
    out = await chat.say("i wanna buy the money market fund")
    assert_en(out)
    assert "how much" in out.text.lower() and "Steady Money Market A" in out.text, out.text
    out = await chat.say("5000")
    assert "¥5,000.00" in out.text and "/confirm" in out.payloads, out.text


async def test_correction_in_chinese_words_before_confirming(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    await chat.say("我想买均衡混合")
    await chat.say("3000")
    out = await chat.say("改成两千")
    assert "¥2,000.00" in out.text and "/confirm" in out.payloads, out.text
    await chat.say("确认")
    await chat.say(await stack.code(cust))
    assert [o["amount"] for o in await stack.orders(cust)] == ["2000.00"]


@pytest.mark.parametrize("step", ["product", "amount", "confirm", "code"])
async def test_cancel_at_every_step_places_no_order(stack: Stack, step: str) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    await chat.say("我要买基金")
    if step != "product":
        await chat.say("安心短债")
    if step in ("confirm", "code"):
        await chat.say("5000")
    if step == "code":
        await chat.say("确认")
    out = await chat.say("取消")
    assert_zh(out)
    assert "取消" in out.text, out.text
    if step == "code":  # the code that was texted no longer places anything
        late = await chat.say(await stack.code(cust))
        assert not late.order_ids(), late.text
    assert await stack.orders(cust) == []


async def test_cancel_in_english_places_no_order(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True)
    await chat.say("buy 5000 of the money market fund")
    await chat.say("confirm")
    out = await chat.say("never mind")
    assert_en(out)
    assert "cancel" in out.text.lower(), out.text
    assert await stack.orders(cust) == []


async def test_a_faq_in_the_middle_then_the_purchase_resumes(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    out = await chat.say("我想买安心短债")
    assert "多少" in out.text
    out = await chat.say("交易时间是几点")
    assert "09:00" in out.text and "17:00" in out.text, out.text
    assert "/resume" in out.payloads, out.payloads
    out = await chat.say("八千")
    assert "¥8,000.00" in out.text and "安心短债" in out.text, out.text
    await chat.say("确认")
    await chat.say(await stack.code(cust))
    assert [(o["product"], o["amount"]) for o in await stack.orders(cust)] == [("BOND01", "8000.00")]


async def test_english_faq_mid_purchase_and_ok_resumes(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, english=True)
    await chat.say("i want to buy the balanced hybrid")
    out = await chat.say("what are the fees")
    assert_en(out)
    assert "1.5%" in out.text and "/resume" in out.payloads, out.text
    out = await chat.say("ok")
    assert "Balanced Hybrid" in out.text and "how much" in out.text.lower(), out.text


async def test_double_tapped_confirm_and_code_make_one_order(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    await chat.say("买5000的稳盈货币")
    before = await stack.sms_count(cust)
    taps = await asyncio.gather(chat.say("/confirm"), chat.say("/confirm"))
    assert all(t.status == 200 for t in taps)
    assert await stack.sms_count(cust) == before + 1  # one code, not two
    code = await stack.code(cust)
    replies = await asyncio.gather(chat.say(code), chat.say(code))
    orders = await stack.orders(cust)
    assert len(orders) == 1, orders
    assert all(orders[0]["order_id"] in r.text for r in replies), [r.text for r in replies]


@pytest.mark.parametrize("typed", ["买5000的全球科技QDII", "买QDII01 5000"])
async def test_a_c1_customer_buying_qdii_is_refused_clearly(stack: Stack, typed: str) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, risk_tolerance="C1")
    out = await chat.say(typed)
    assert_zh(out)
    assert "R5" in out.text and "C1" in out.text and "风险测评" in out.text, out.text
    assert "/confirm" not in out.payloads
    assert await stack.sms_count(cust) == 0
    assert await stack.orders(cust) == []


async def test_a_c1_customer_buying_qdii_in_english_is_refused(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True, risk_tolerance="C1")
    out = await chat.say("buy 5000 of the global tech qdii")
    assert_en(out)
    assert "R5" in out.text and "C1" in out.text, out.text
    assert "/confirm" not in out.payloads
    assert await stack.orders(cust) == []
