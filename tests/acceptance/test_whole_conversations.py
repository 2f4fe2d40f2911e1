"""Two whole conversations, one in each language, the way a customer actually goes through them."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import assert_en, assert_zh, no_personal_data
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(240)]


async def test_a_chinese_customer_from_hello_to_goodbye(stack: Stack) -> None:
    cust = await stack.customer(cash="30000.00", holdings=[{"product": "MMF01", "shares": "5000"}])
    chat = stack.chat()
    hello = await chat.say("你好")
    assert_zh(hello)
    before = await chat.say("我有多少钱")
    assert "绑定" in before.text
    no_personal_data(before)
    code = cust["link_code"]
    linked = await chat.say(f"绑定 {code[:4]}-{code[4:]}")
    assert "绑定成功" in linked.text, linked.text
    balance = await chat.say("查下余额")
    assert "¥30,000.00" in balance.text and "稳盈货币A" in balance.text, balance.text
    detail = await chat.say("短债怎么样")
    assert "安心短债" in detail.text and "R2" in detail.text and "T+1" in detail.text, detail.text
    ask = await chat.say("我想买短债")
    assert "多少" in ask.text, ask.text
    faq = await chat.say("赎回费怎么收")
    assert "1.5%" in faq.text and "/resume" in faq.payloads, faq.text
    summary = await chat.say("一万二")
    assert "¥12,000.00" in summary.text and "理财非存款" in summary.text, summary.text
    changed = await chat.say("改成一万")
    assert "¥10,000.00" in changed.text, changed.text
    await chat.say("确认")
    done = await chat.say(await stack.code(cust))
    order_id = done.order_ids()[0]
    tracked = await chat.say(f"订单{order_id}到哪了")
    assert order_id in tracked.text and "已提交" in tracked.text, tracked.text
    await stack.sandbox.set_clock("2026-11-26T10:00:00+08:00")
    pushed = await chat.wait_pushed(rf"{order_id}")
    assert_zh(pushed)
    history = await chat.say("这个月的交易记录")
    if "验证码" in history.text:  # a new day: viewing history asks for a fresh code
        history = await chat.say(await stack.code(cust))
    assert order_id in history.text, history.text
    bye = await chat.say("好的谢谢 拜拜")
    assert_zh(bye)
    assert [(o["product"], o["amount"]) for o in await stack.orders(cust)] == [("BOND01", "10000.00")]


async def test_an_english_customer_from_hello_to_a_person(stack: Stack) -> None:
    cust = await stack.customer(risk_tolerance="C2", holdings=[{"product": "BOND01", "shares": "2000"}])
    chat = stack.chat()
    assert_en(await chat.say("hey"))
    linked = await chat.say(f"link {cust['link_code'].lower()}")
    assert_en(linked)
    products = await chat.say("what funds do you have")
    assert_en(products)
    assert "QDII01" in products.text, products.text
    refused = await chat.say("buy 3000 of the hybrid fund")
    assert_en(refused)
    assert "R3" in refused.text and "C2" in refused.text and "/confirm" not in refused.payloads, refused.text
    redeem = await chat.say("redeem 500 shares of the bond fund")
    assert "500.00" in redeem.text and "/confirm" in redeem.payloads, redeem.text
    cancelled = await chat.say("cancel")
    assert "cancel" in cancelled.text.lower(), cancelled.text
    person = await chat.say("i want to talk to a real person")
    assert_en(person)
    assert "agent" in person.text.lower(), person.text
    assert await stack.orders(cust) == []
