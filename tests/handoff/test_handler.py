"""Customers asking for a person over the REST channel: queue replies, reasons, hours, summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import DB
from bot.store import handoff as store
from tests.conftest import BotServer
from tests.support.sandbox import running_sandbox

pytestmark = pytest.mark.timeout(90)


async def _open(server: BotServer) -> list[store.Ticket]:
    async with server.app[DB].begin() as s:
        return await store.open_tickets(s)


async def test_requests_reasons_and_queue_places(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as platform:
        server: BotServer = await bot_server(backend_url=platform.base_url, staffed_hours="00:00-00:00")
        first = await server.say("c1", "转人工")
        assert "第 1 位" in first[0]["text"] and "分钟" in first[0]["text"]
        again = await server.say("c1", "转人工")
        assert "已在人工客服队列中" in again[0]["text"]  # one ticket, the same place
        english = await server.say("c2", "human agent")
        assert "number 2 in the queue" in english[0]["text"]
        # A step-up lockout (the engine's button) jumps the queue.
        locked = await server.say("c3", '/human_handoff{"reason": "lockout"}')
        assert "第 1 位" in locked[0]["text"]
        tickets = await _open(server)
        assert [(t.sender, t.reason, t.lang) for t in tickets] == [
            ("c3", "lockout", "zh"), ("c1", "customer_request", "zh"), ("c2", "customer_request", "en"),
        ]
        assert tickets[1].transcript[-1]["text"] == "转人工"


async def test_outside_staffed_hours_by_the_platform_clock(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as platform:
        await platform.set_clock("2026-11-25T23:30:00+08:00")
        server: BotServer = await bot_server(backend_url=platform.base_url, staffed_hours="09:00-21:00")
        reply = await server.say("night", "talk to a human")
        text = reply[0]["text"]
        assert "within 24 hours" in text and "2026-11-26 09:00" in text
        [ticket] = await _open(server)
        assert ticket.state == "waiting" and not ticket.staffed  # kept for the morning shift


async def test_linked_customer_summary_is_masked(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as platform:
        customer = await platform.create_customer(name="王小明", phone="13912345678")
        server: BotServer = await bot_server(backend_url=platform.base_url, staffed_hours="00:00-00:00")
        linked = await server.say("lk", f"绑定 {customer['link_code']}")
        assert linked, linked
        await server.say("lk", "我的手机号是13912345678，转人工")
        await server.say("lk", "转人工")
        [ticket] = await _open(server)
        assert ticket.customer_id == customer["customer_id"]
        summary = ticket.summary or {}
        assert summary["name"] == "王**" and summary["phone"].endswith("5678")
        everything = repr((ticket.summary, ticket.transcript, ticket.entities))
        assert "13912345678" not in everything and "小明" not in everything


async def test_accepting_the_offer_after_two_misunderstandings(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bot.store import conversations

    async with running_sandbox(tmp_dir=tmp_path) as platform:
        server: BotServer = await bot_server(backend_url=platform.base_url, staffed_hours="00:00-00:00")
        await server.say("mm", "你好")
        # The engine counts misunderstandings in the state and offers the human button at two.
        async with server.app[DB].begin() as s:
            conv = await conversations.get_or_create(s, "rest", "mm", "zh")
            await conversations.save(
                s, conv.id, expected_version=conv.state_version, state={**conv.state, "misunderstood": 2},
                lang="zh", customer_id=None, verified_at=None,
            )
        reply = await server.say("mm", "/human_handoff")
        assert "第 1 位" in reply[0]["text"]
        [ticket] = await _open(server)
        assert ticket.reason == "misunderstanding"


async def test_a_complaint_in_progress_goes_first(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bot.store import conversations

    async with running_sandbox(tmp_dir=tmp_path) as platform:
        server: BotServer = await bot_server(backend_url=platform.base_url, staffed_hours="00:00-00:00")
        await server.say("early", "转人工")
        await server.say("cmp", "你好")
        async with server.app[DB].begin() as s:  # the customer is in the complaint form
            conv = await conversations.get_or_create(s, "rest", "cmp", "zh")
            task = {"name": "file_complaint", "stage": "collect", "asking": "detail", "slots": {"category": "system_fault"}}
            state = {**conv.state, "task": task}
            await conversations.save(
                s, conv.id, expected_version=conv.state_version, state=state, lang="zh", customer_id=None, verified_at=None,
            )
        reply = await server.say("cmp", "/human_handoff")
        assert "第 1 位" in reply[0]["text"]
        tickets = await _open(server)
        assert [(t.sender, t.reason) for t in tickets] == [("cmp", "complaint"), ("early", "customer_request")]
        # The agent sees what the customer was doing: the task and what they had filled in.
        assert tickets[0].intent == "file_complaint" and tickets[0].entities == {"category": "system_fault"}
