"""Redeeming by shares, amount and "all"; wrong and expired one-time codes."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import assert_en, assert_zh
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(120)]

HOLDINGS = [
    {"product": "MMF01", "shares": "10000", "acquired_at": "2026-01-05"},
    {"product": "BOND01", "shares": "3000", "acquired_at": "2026-11-22"},  # 3 days: 1.5 % fee
]


async def test_redeem_by_shares_shows_fee_and_places_one_redemption(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, holdings=HOLDINGS)
    out = await chat.say("赎回1000份短债")
    assert_zh(out)
    assert "1,000.00 份" in out.text and "1.5%" in out.text and "/confirm" in out.payloads, out.text
    await chat.say("确认")
    done = await chat.say(await stack.code(cust))
    assert done.order_ids(), done.text
    orders = await stack.orders(cust)
    assert [(o["side"], o["product"], o["shares"]) for o in orders] == [("redeem", "BOND01", "1000.00")]


async def test_redeem_by_amount_in_chinese_words(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, holdings=HOLDINGS)
    out = await chat.say("赎回两千块的货币基金")
    assert "稳盈货币A" in out.text and "¥2,000.00" in out.text and "/confirm" in out.payloads, out.text


async def test_redeem_by_amount_in_english(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, english=True, holdings=HOLDINGS)
    out = await chat.say("redeem 300 yuan of steady money market")
    assert_en(out)
    assert "¥300.00" in out.text and "/confirm" in out.payloads, out.text


async def test_redeem_all_asks_which_product_then_takes_every_share(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, holdings=HOLDINGS)
    out = await chat.say("全部赎回")
    assert "哪" in out.text and len(out.payloads) >= 2, out.text
    out = await chat.say("稳盈货币")
    assert "10,000.00" in out.text and "/confirm" in out.payloads, out.text
    await chat.say("确认")
    await chat.say(await stack.code(cust))
    orders = await stack.orders(cust)
    assert [(o["product"], o["shares"]) for o in orders] == [("MMF01", "10000.00")]


async def test_sell_everything_in_english(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, english=True, holdings=HOLDINGS)
    out = await chat.say("sell everything in the bond fund")
    assert_en(out)
    assert "3,000.00" in out.text and "Short-term Bond" in out.text, out.text


async def test_five_wrong_codes_lock_and_offer_a_person(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    await chat.say("买5000的短债")
    await chat.say("确认")
    real = await stack.code(cust)
    wrong = [c for c in ("111111", "222222", "333333", "444444", "555555", "666666") if c != real][:5]
    for attempt in wrong[:4]:
        out = await chat.say(attempt)
        assert "不正确" in out.text or "错误" in out.text, out.text
    out = await chat.say(wrong[4])
    assert_zh(out)
    assert "锁定" in out.text, out.text
    assert any(p.startswith("/human_handoff") for p in out.payloads), out.payloads
    late = await chat.say(real)  # the right code after the lock places nothing
    assert not late.order_ids(), late.text
    assert await stack.orders(cust) == []


async def test_five_wrong_codes_in_english(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True)
    await chat.say("buy 500 of the money market fund")
    await chat.say("confirm")
    real = await stack.code(cust)
    wrong = [c for c in ("111111", "222222", "333333", "444444", "555555", "666666") if c != real][:5]
    for attempt in wrong:
        out = await chat.say(attempt)
    assert_en(out)
    assert "lock" in out.text.lower(), out.text
    assert any(p.startswith("/human_handoff") for p in out.payloads), out.payloads
    assert await stack.orders(cust) == []


async def test_an_expired_code_is_refused_and_a_new_one_completes(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    await chat.say("买5000的短债")
    await chat.say("确认")
    old = await stack.code(cust)
    await stack.sandbox.set_clock("2026-11-25T10:06:00+08:00")  # past the 5 minutes
    out = await chat.say(old)
    assert "过期" in out.text and "/resend_code" in out.payloads, out.text
    assert await stack.orders(cust) == []
    sent = await stack.sms_count(cust)
    await chat.say("/resend_code")
    done = await chat.say(await stack.code(cust, after=sent))
    assert done.order_ids(), done.text
    assert len(await stack.orders(cust)) == 1
