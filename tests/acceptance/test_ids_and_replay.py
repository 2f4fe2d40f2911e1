"""Platform ids typed bare, in either language; a view code replays what the customer asked."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import assert_en, assert_zh
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


async def _order(stack: Stack, chat, cust, text: str, word: str) -> str:  # type: ignore[no-untyped-def]
    await chat.say(text)
    await chat.say(word)
    done = await chat.say(await stack.code(cust))
    return done.order_ids()[0]


async def test_a_bare_order_id_tracks_the_order_in_the_chats_language(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    order_id = await _order(stack, chat, cust, "买5000的短债", "确认")
    out = await chat.say(order_id)
    assert_zh(out)
    assert order_id in out.text and "已提交" in out.text, out.text
    out = await chat.say(order_id.lower())
    assert_zh(out)
    assert order_id in out.text, out.text


async def test_a_bare_complaint_id_shows_the_complaint(stack: Stack) -> None:
    chat = stack.chat()
    await stack.linked(chat, english=True)
    await chat.say("i want to file a complaint")
    await chat.say("your agent was rude to me on the phone")
    done = await chat.say("confirm")
    import re

    complaint_id = re.search(r"\bC\d{14}\b", done.text)
    assert complaint_id, done.text
    out = await chat.say(complaint_id.group(0))
    assert_en(out)
    assert complaint_id.group(0) in out.text and "service attitude" in out.text.lower(), out.text


async def test_a_bare_order_id_in_an_unlinked_chat_asks_to_link(stack: Stack) -> None:
    out = await stack.chat().say("D20261125000001")
    assert_zh(out)
    assert "绑定" in out.text, out.text


async def test_an_export_asked_before_a_view_code_is_what_runs_after_it(stack: Stack) -> None:
    chat = stack.chat()
    cust = await stack.linked(chat)
    await _order(stack, chat, cust, "买100的稳盈货币", "确认")
    await stack.sandbox.set_clock("2026-11-25T13:00:00+08:00")  # the link-time verification is old
    out = await chat.say("导出本月交易记录为PDF")
    if "验证码" in out.text:
        out = await chat.say(await stack.code(cust))
    assert "PDF" in out.text and "/confirm" in out.payloads, out.text


def test_finbot_nlu_parse_keeps_platform_ids(nlu_url: str) -> None:
    env = {**os.environ, "FINBOT_NLU_URL": nlu_url}
    lines = ["查一下订单D20261125000123", "where is order d20261125000123", "投诉单C20261125000007进度"]
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "finbot"), "nlu", "parse"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    zh, en, complaint = (json.loads(line) for line in done.stdout.splitlines())
    assert zh["intent"] == "track_transaction" and {"entity": "order_id", "value": "D20261125000123"} in zh["entities"]
    assert {"entity": "order_id", "value": "D20261125000123"} in en["entities"], en
    assert complaint["intent"] == "complaint_status"
    assert {"entity": "complaint_id", "value": "C20261125000007"} in complaint["entities"], complaint
