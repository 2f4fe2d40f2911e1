"""Linking a chat as customers type it; an unlinked chat never sees account data."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import assert_en, assert_zh, no_personal_data
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(120)]


async def test_unlinked_chat_asking_for_balance_is_asked_to_link_and_sees_nothing(stack: Stack) -> None:
    await stack.customer(cash="88888.00", holdings=[{"product": "MMF01", "shares": "777"}])
    chat = stack.chat()
    for message in ("我的余额多少", "查下我的持仓", "上个月的交易记录"):
        out = await chat.say(message)
        assert_zh(out)
        assert "绑定" in out.text, out.text
        no_personal_data(out)
    for message in ("what's my balance", "show my holdings pls"):
        out = await chat.say(message)
        assert_en(out)
        assert "link" in out.text.lower(), out.text
        no_personal_data(out)


async def test_unlinked_buy_is_not_started(stack: Stack) -> None:
    chat = stack.chat()
    out = await chat.say("买一万的短债")
    assert "绑定" in out.text and "/confirm" not in out.payloads, out.text


async def test_link_with_chinese_prefix_then_balance(stack: Stack) -> None:
    cust = await stack.customer(cash="12345.00")
    chat = stack.chat()
    out = await chat.say(f"绑定 {cust['link_code']}")
    assert "绑定成功" in out.text, out.text
    out = await chat.say("余额")
    assert_zh(out)
    assert "¥12,345.00" in out.text, out.text


async def test_link_in_english_answers_in_english(stack: Stack) -> None:
    cust = await stack.customer(cash="2000.00")
    chat = stack.chat()
    out = await chat.say(f"link {cust['link_code']}")
    assert_en(out)
    assert "link" in out.text.lower(), out.text
    out = await chat.say("balance pls")
    assert_en(out)
    assert "¥2,000.00" in out.text, out.text


@pytest.mark.parametrize("shape", ["bare", "dashed-lower", "chinese-no-space-dashed"])
async def test_link_code_typed_in_other_shapes(stack: Stack, shape: str) -> None:
    cust = await stack.customer()
    code = cust["link_code"]
    typed = {
        "bare": code,
        "dashed-lower": f"{code[:4]}-{code[4:]}".lower(),
        "chinese-no-space-dashed": f"绑定{code[:4]}-{code[4:]}",
    }[shape]
    out = await stack.chat().say(typed)
    assert ("绑定成功" in out.text) or ("Linked" in out.text), out.text


async def test_wrong_link_code_is_refused_politely_and_links_nothing(stack: Stack) -> None:
    chat = stack.chat()
    out = await chat.say("绑定 ABCDEFGH")
    assert_zh(out)
    assert "绑定成功" not in out.text and "无效" in out.text, out.text
    out = await chat.say("余额")
    assert "绑定" in out.text, out.text
    no_personal_data(out)
    out = await chat.say("link ZZZZ-ZZZZ")
    assert_en(out)
    assert "Linked" not in out.text, out.text
