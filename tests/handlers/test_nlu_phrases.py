"""Customers' own words through the real Rasa NLU server and engine to these handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend_client.client import PlatformClient
from bot.dialogue.engine import Engine
from bot.nlu_client import NLUClient
from bot.settings import Settings
from bot.store.db import Database
from tests.handlers.conftest import Chat, place_order, texts
from tests.support.sandbox import SandboxServer

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(120)]


@pytest.fixture
async def nlu_engine(
    settings: Settings, bot_db: Database, backend: PlatformClient, nlu_url: str
) -> AsyncIterator[Engine]:
    nlu = NLUClient(nlu_url, timeout=5.0)
    await nlu.start()
    try:
        yield Engine(settings.model_copy(update={"nlu_timeout_s": 5.0}), bot_db, backend, nlu)
    finally:
        await nlu.close()


async def _linked(engine: Engine, customer: dict[str, Any], sender: str) -> Chat:
    chat = Chat(engine, sender)
    await chat.say(f"绑定 {customer['link_code']}")
    return chat


async def test_chinese_phrases(
    sandbox: SandboxServer, backend: PlatformClient, nlu_engine: Engine
) -> None:
    await sandbox.set_clock("2026-10-20T10:00:00+08:00")
    c = await sandbox.create_customer(risk_tolerance="C2")
    chat = await _linked(nlu_engine, c, "nlu-zh")
    await place_order(sandbox, backend, c, "subscribe", "BOND01", amount="1000")
    await sandbox.set_clock("2026-11-25T10:00:00+08:00")
    await place_order(sandbox, backend, c, "subscribe", "MMF01", amount="100")

    # A month after linking, viewing history asks for a code first, then answers the request.
    asked = texts(await chat.say("上个月的交易记录"))
    assert "验证码" in asked
    last_month = texts(await chat.say(await sandbox.last_code(c["phone"])))
    assert "共1笔" in last_month and "安心短债" in last_month and "稳盈货币A" not in last_month
    mine = texts(await chat.say("适合我的产品"))
    assert "C2" in mine and "MMF01" in mine and "QDII01" not in mine
    hours = texts(await chat.say("交易时间是几点"))
    assert "09:00" in hours and "17:00" in hours
    export = texts(await chat.say("导出CSV"))
    assert "共2笔" in export and "CSV" in export
    await chat.say("/cancel")
    unhappy = texts(await chat.say("我对投诉的处理结果不满意"))
    assert "调解" in unhappy and "法院" in unhappy


async def test_english_phrases(
    sandbox: SandboxServer, backend: PlatformClient, nlu_engine: Engine
) -> None:
    await sandbox.set_clock("2026-11-25T10:00:00+08:00")
    c = await sandbox.create_customer()
    order_id = await place_order(sandbox, backend, c, "subscribe", "MIX01", amount="500")
    chat = await _linked(nlu_engine, c, "nlu-en")
    tracked = texts(await chat.say(f"where is my order {order_id}"))
    assert order_id in tracked and "submitted" in tracked
    pdf = texts(await chat.say("export as pdf"))
    assert "1 record(s) as PDF" in pdf
    await chat.say("/cancel")
    safe = texts(await chat.say("is my money safe"))
    assert "custodian" in safe and "not deposits" in safe
