"""The NLU server down or slow: a degraded reply with the menu, buttons still work; back → normal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.e2e.harness import Replies, RestChat, Stack, finbot_stack, looks_broken

pytestmark = pytest.mark.timeout(120)

DEGRADED = {"zh": "暂时无法理解", "en": "can't understand"}
MENU = {"/check_balance", "/buy_product", "/redeem_product", "/human_handoff"}


def _degraded(out: Replies, lang: str) -> None:
    assert DEGRADED[lang] in out.text, out.text
    assert MENU <= set(out.payloads), out.payloads
    assert looks_broken(out.text) is None, out.text


async def _balance_by_button(chat: RestChat, out: Replies, amount: str) -> None:
    """The customer taps the balance button of the degraded menu: it still works."""
    shown = await chat.say(out.payloads[out.payloads.index("/check_balance")])
    assert amount in shown.text, shown.text


@pytest.fixture
async def nlu_stack(bot_server: BotFactory, tmp_path: Path, nlu_url: str) -> AsyncIterator[Stack]:
    """The real Rasa server behind a fault proxy; the breaker retries after 1 s."""
    async with finbot_stack(
        bot_server, tmp_path, nlu_url=nlu_url, nlu_proxy=True, nlu_breaker_reset_s=1.0
    ) as s:
        yield s


async def test_nlu_port_closed_gives_the_menu_and_buttons_work(stack: Stack) -> None:
    zh = stack.chat("nlu-closed-zh")
    await stack.linked(zh, cash="8888.00")
    out = await zh.say("我想看看我账户里还有多少钱")
    _degraded(out, "zh")
    await _balance_by_button(zh, out, "8,888.00")

    en = stack.chat("nlu-closed-en")
    await stack.linked(en, english=True, cash="777.00")
    out = await en.say("how much money is in my account?")
    _degraded(out, "en")
    await _balance_by_button(en, out, "777.00")


@pytest.mark.nlu
@pytest.mark.parametrize("fault", ["refuse", "delay", "error"])
async def test_nlu_outage_then_recovery(nlu_stack: Stack, fault: str) -> None:
    s, proxy = nlu_stack, nlu_stack.nlu_proxy
    assert proxy is not None
    chat = s.chat(f"nlu-{fault}")
    await s.linked(chat, cash="31415.92")
    normal = await chat.say("我想查一下我的余额")
    assert "31,415.92" in normal.text, normal.text

    if fault == "refuse":
        await proxy.refuse()
    elif fault == "delay":
        await proxy.delay(5.0)
    else:
        await proxy.error(500)
    out = await chat.say("帮我查一下余额")
    _degraded(out, "zh")
    assert out.elapsed_s < 2.5, out.elapsed_s
    await _balance_by_button(chat, out, "31,415.92")
    en = await chat.say("what is my balance please")
    _degraded(en, "en")

    await proxy.passthrough()
    await asyncio.sleep(1.2)  # the breaker's reset time
    back = await chat.say("我想查一下我的余额")
    assert "31,415.92" in back.text and DEGRADED["zh"] not in back.text, back.text
    en = await chat.say("what is my balance please")
    assert "31,415.92" in en.text and DEGRADED["en"] not in en.text, en.text
