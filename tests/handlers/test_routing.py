"""The engine reaches every information handler through its registered intent (payloads)."""

from __future__ import annotations

import pytest

from backend_client.client import PlatformClient
from tests.handlers.conftest import Chat, ChatFactory, payloads, place_order, texts
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(60)


async def test_menu_faq_products_track_history_and_complaints_are_routed(
    sandbox: SandboxServer, backend: PlatformClient, linked_chat: ChatFactory, engine: object
) -> None:
    await sandbox.set_clock("2026-11-25T10:00:00+08:00")
    c = await sandbox.create_customer()
    order_id = await place_order(sandbox, backend, c, "subscribe", "MMF01", amount="100")
    chat = await linked_chat(c)

    menu = await chat.say("/greet")
    assert "/transaction_history" in payloads(menu) and "/faq" in payloads(menu)
    helped = await chat.say("/help")
    assert "投诉" in texts(helped) and "/human_handoff" in payloads(helped)
    faq_menu = await chat.say("/faq")
    assert "/faq/trading_hours" in payloads(faq_menu)
    answer = await chat.say("/faq/trading_hours")
    assert "09:00" in texts(answer) and "17:00" in texts(answer)
    catalog = await chat.say('/list_products{"risk_level":"low"}')
    assert "MMF01" in texts(catalog) and "QDII01" not in texts(catalog)
    tracked = await chat.say(f'/track_transaction{{"order_id":"{order_id}"}}')
    assert order_id in texts(tracked) and "已提交" in texts(tracked)
    hist = await chat.say("/transaction_history")
    assert order_id in texts(hist)
    status = await chat.say("/complaint_status")
    assert "没有投诉记录" in texts(status)


async def test_unlinked_chat_is_told_how_to_link(engine: object) -> None:
    chat = Chat(engine, "unlinked-1")
    for payload in ("/transaction_history", "/track_transaction", "/complaint_status"):
        reply = await chat.say(payload)
        assert "绑定" in texts(reply), payload
    # The catalog and the FAQ need no account.
    assert "MMF01" in texts(await chat.say("/list_products"))
    assert "1.5%" in texts(await chat.say("/faq/redemption_fee"))
