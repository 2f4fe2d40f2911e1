"""Tracking orders, history by period, exports, and the notices pushed when an order moves."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tests.acceptance.conftest import assert_en, assert_zh
from tests.e2e.harness import RestChat, Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(120)]

URL = re.compile(r"https?://\S+/files/\S+")


async def _bought(stack: Stack, chat: RestChat, cust: dict[str, object], text: str, code_word: str) -> str:
    await chat.say(text)
    await chat.say(code_word)
    done = await chat.say(await stack.code(cust))
    ids = done.order_ids()
    assert ids, done.text
    return ids[0]


async def test_track_by_id_and_my_latest_in_chinese(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    order_id = await _bought(stack, chat, cust, "买5000的短债", "确认")
    out = await chat.say(f"查一下订单{order_id}")
    assert_zh(out)
    assert order_id in out.text and "已提交" in out.text and "安心短债" in out.text, out.text
    out = await chat.say("我最新的订单到哪了")
    assert order_id in out.text and "已提交" in out.text, out.text


async def test_track_by_id_and_my_latest_in_english(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True)
    order_id = await _bought(stack, chat, cust, "buy 5000 of the bond fund", "confirm")
    out = await chat.say(f"where is order {order_id.lower()}")
    assert_en(out)
    assert order_id in out.text and "submitted" in out.text, out.text
    out = await chat.say("where is my latest order")
    assert order_id in out.text, out.text


async def test_history_by_period(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    order_id = await _bought(stack, chat, cust, "买5000的稳盈货币", "确认")
    out = await chat.say("上个月的交易记录")
    assert_zh(out)
    assert "2026年10月1日" in out.text and order_id not in out.text, out.text
    out = await chat.say("这个月的交易记录")
    assert order_id in out.text, out.text
    out = await chat.say("last week's transactions")
    assert_en(out)
    assert "2026-11-16" in out.text and order_id not in out.text, out.text


@pytest.mark.parametrize(("typed", "word", "ext"), [("导出CSV", "确认", "csv"), ("export as pdf", "confirm", "pdf")])
async def test_export_needs_a_code_and_gives_a_one_time_file(stack: Stack, typed: str, word: str, ext: str) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    order_id = await _bought(stack, chat, cust, "买5000的稳盈货币", "确认")
    out = await chat.say(typed)
    assert "/confirm" in out.payloads, out.text
    await chat.say(word)
    done = await chat.say(await stack.code(cust))
    links = URL.findall(done.text)
    assert links, done.text
    async with aiohttp.ClientSession() as http:
        async with http.get(links[0]) as resp:
            assert resp.status == 200
            body = await resp.read()
        async with http.get(links[0]) as again:
            assert again.status in (404, 410)  # one-time link
    if ext == "csv":
        assert order_id in body.decode("utf-8-sig"), body[:300]
    else:
        assert body.startswith(b"%PDF"), body[:20]


async def test_order_confirmation_and_failure_are_pushed(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True)
    order_id = await _bought(stack, chat, cust, "buy 5000 of the money market fund", "confirm")
    await stack.sandbox.set_clock("2026-11-26T10:00:00+08:00")
    pushed = await chat.wait_pushed(rf"{order_id}.*confirmed")
    assert_en(pushed)
    await stack.sandbox.fail_order(order_id, "bank card declined")
    pushed = await chat.wait_pushed(r"failed")
    assert order_id in pushed.text and "bank card declined" in pushed.text, pushed.text


async def test_order_updates_turned_off_are_not_pushed_but_risk_warnings_are(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat, english=True)
    out = await chat.say("turn off order updates")
    assert "Order updates: off" in out.text, out.text
    order_id = await _bought(stack, chat, cust, "buy 100 of the money market fund", "confirm")
    await stack.sandbox.set_clock("2026-11-26T10:00:00+08:00")  # the order is confirmed
    await stack.sandbox.risk_warning(str(cust["customer_id"]), "LARGE_OUTFLOW", "unusual redemption")
    pushed = await chat.wait_pushed("unusual redemption")
    await asyncio.sleep(3)  # events are posted within 2 s of the status change
    pushed.extend(await chat.pending())
    assert order_id not in pushed.text, pushed.text


async def test_an_order_outside_the_trading_window_says_when_it_is_processed(stack: Stack) -> None:
    await stack.sandbox.set_clock("2026-11-27T20:00:00+08:00")  # Friday evening
    chat = stack.chat()
    cust = await stack.linked(chat)
    out = await chat.say("买5000的短债")
    assert "2026年11月30日" in out.text and "交易时间" in out.text, out.text  # next Monday
    await chat.say("确认")
    done = await chat.say(await stack.code(cust))
    assert done.order_ids(), done.text


async def test_quiet_hours_follow_the_platforms_clock(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    out = await chat.say("打开免打扰")
    assert "免打扰（22:00-08:00，风险与安全提醒除外）：开" in out.text, out.text
    day_order = await _bought(stack, chat, cust, "买100的稳盈货币", "确认")
    night_order = await _bought(stack, chat, cust, "买200的稳盈货币", "确认")
    # 10:00 on the platform: a notice goes out at once, whatever the bot's own clock says.
    await stack.sandbox.fail_order(day_order, "银行卡余额不足")
    pushed = await chat.wait_pushed("银行卡余额不足")
    assert day_order in pushed.text, pushed.text
    assert "银行卡余额不足" in pushed.text, pushed.text
    # 23:00 on the platform: the failure waits for the morning, a risk warning does not.
    await stack.sandbox.set_clock("2026-11-25T23:00:00+08:00")
    await stack.sandbox.fail_order(night_order, "银行卡状态异常")
    await stack.sandbox.risk_warning(str(cust["customer_id"]), "LOGIN", "异地登录提醒")
    pushed = await chat.wait_pushed("异地登录提醒")
    await asyncio.sleep(2.5)
    pushed.extend(await chat.pending())
    assert night_order not in pushed.text, pushed.text


async def test_another_customers_order_stays_hidden(stack: Stack) -> None:
    owner = stack.chat()
    cust = await stack.linked(owner)
    order_id = await _bought(stack, owner, cust, "买5000的短债", "确认")
    stranger = stack.chat()
    await stack.linked(stranger, english=True)
    out = await stranger.say(f"where is order {order_id}")
    assert_en(out)
    assert "Short-term Bond" not in out.text and "5,000" not in out.text and "find" in out.text, out.text
