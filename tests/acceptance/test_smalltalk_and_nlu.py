"""Greeting, help, goodbye, out of scope, mixed and hostile input, language following; `finbot nlu parse`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import assert_en, assert_zh
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


async def test_greeting_and_help_menu_in_both_languages(stack: Stack) -> None:
    chat = stack.chat()
    out = await chat.say("你好")
    assert_zh(out)
    assert {"/check_balance", "/list_products", "/human_handoff"} <= set(out.payloads), out.payloads
    out = await chat.say("hi there")
    assert_en(out)
    assert "/buy_product" in out.payloads, out.payloads
    out = await chat.say("what can you do")
    assert_en(out)
    assert "balance" in out.text.lower() and "/human_handoff" in out.payloads, out.text


@pytest.mark.parametrize(
    ("typed", "lang", "word"),
    [("谢谢", "zh", "不客气"), ("thx", "en", "welcome"), ("拜拜", "zh", "再见"), ("ok bye", "en", "bye")],
)
async def test_thanks_and_goodbye(stack: Stack, typed: str, lang: str, word: str) -> None:
    out = await stack.chat().say(typed)
    (assert_zh if lang == "zh" else assert_en)(out)
    assert word.lower() in out.text.lower(), out.text


@pytest.mark.parametrize(("typed", "lang"), [("推荐只股票", "zh"), ("what's bitcoin price", "en"), ("今天天气怎么样", "zh")])
async def test_out_of_scope_is_declined_with_what_finbot_can_do(stack: Stack, typed: str, lang: str) -> None:
    out = await stack.chat().say(typed)
    (assert_zh if lang == "zh" else assert_en)(out)
    assert "/human_handoff" in out.payloads, out.payloads
    assert ("帮不上" in out.text) if lang == "zh" else ("can't help" in out.text), out.text


async def test_the_reply_language_follows_each_message(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat)
    assert_zh(await chat.say("余额多少"))
    assert_en(await chat.say("and my balance in english pls"))
    assert_zh(await chat.say("有什么产品"))
    assert_en(await chat.say("show me ur products"))


async def test_mixed_chinese_and_english_is_understood(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, cash="4321.00")
    out = await chat.say("帮我check一下balance")
    assert_zh(out)
    assert "¥4,321.00" in out.text, out.text
    out = await chat.say("我想buy一些bond fund")
    assert "安心短债" in out.text and "多少" in out.text, out.text


@pytest.mark.parametrize(
    "typed",
    ["asdfghjkl", "？？？", "😀😀", "fuck you", "你们是骗子吧 垃圾平台", "'; DROP TABLE users; --",
     "<script>alert(1)</script>", "/nonsense", "/buy_product{bad json", "x" * 5000, "   "],
)
async def test_gibberish_and_hostile_input_get_a_polite_reply(stack: Stack, typed: str) -> None:
    chat = stack.chat()
    await stack.linked(chat)
    out = await chat.say(typed)
    assert out.text.strip(), "no reply"
    from tests.e2e.harness import looks_broken

    assert looks_broken(out.text) is None, out.text
    assert "<script>" not in out.text
    after = await chat.say("余额")  # the chat still works
    assert "¥" in after.text, after.text


async def test_button_payloads_act_as_clicks(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, english=True)
    out = await chat.say('/buy_product{"product":"MMF01"}')
    assert_en(out)
    assert "Steady Money Market A" in out.text and "how much" in out.text.lower(), out.text
    out = await chat.say("/cancel")
    assert "cancel" in out.text.lower(), out.text
    out = await chat.say('/list_products{"risk_level":"mine"}')
    assert "MIX01" in out.text and "IDX300" not in out.text, out.text


def _parse(lines: list[str], nlu_url: str) -> list[dict[str, object]]:
    env = {**os.environ, "FINBOT_NLU_URL": nlu_url}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "finbot"), "nlu", "parse"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(lines), done.stdout
    for row, line in zip(rows, lines, strict=True):
        assert set(row) == {"text", "intent", "confidence", "entities"} and row["text"] == line, row
    return rows


def _ents(row: dict[str, object]) -> dict[str, object]:
    return {str(e["entity"]): e["value"] for e in row["entities"]}  # type: ignore[attr-defined, index]


def test_finbot_nlu_parse_as_architecture_specifies(nlu_url: str) -> None:
    rows = _parse(
        ["买一万五的稳盈货币", "buy 2k of the bond fund", "赎回500份均衡混合", "全部赎回", "交易时间是几点",
         "how do i reset my password", "转人工", "asdfghjkl"],
        nlu_url,
    )  # fmt: skip
    buy_zh, buy_en, redeem, redeem_all, faq_zh, faq_en, human, junk = rows
    assert buy_zh["intent"] == "buy_product" and _ents(buy_zh) == {"amount": "15000", "product": "MMF01"}
    assert buy_en["intent"] == "buy_product" and _ents(buy_en) == {"amount": "2000", "product": "BOND01"}
    assert redeem["intent"] == "redeem_product"
    assert _ents(redeem) == {"shares": "500", "product": "MIX01"}, redeem
    assert redeem_all["intent"] == "redeem_product" and _ents(redeem_all).get("all") in (True, "true")
    assert faq_zh["intent"] == "faq/trading_hours" and faq_en["intent"] == "faq/reset_password"
    assert human["intent"] == "human_handoff"
    assert junk["intent"] in ("nlu_fallback", "out_of_scope"), junk
