"""Human handoff in a real browser: a customer asks for a person, an agent answers in the console."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from bot.app import DB
from bot.handoff import auth
from bot.store import handoff as store
from tests.conftest import BotServer
from tests.support.fake_telegram import FakeTelegram
from tests.support.sandbox import running_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PASSWORD = "s3cret-console-pass"


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.15)


async def _login(page: Page, server: BotServer, username: str) -> None:
    await page.goto(f"{server.url}/agent")
    await expect(page).to_have_url(f"{server.url}/agent/login")  # no session → login page
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-button")
    await expect(page).to_have_url(f"{server.url}/agent")
    await expect(page.locator("#live-state")).to_have_text("live")


async def _open_ticket_ids(server: BotServer) -> list[store.Ticket]:
    async with server.app[DB].begin() as s:
        return await store.open_tickets(s)


async def _console_flow(
    *,
    server: BotServer,
    new_context: Any,
    reports: Path | None,
    customer_says: Callable[[str, bool], Awaitable[list[str]]],
    customer_inbox: Callable[[], Awaitable[list[dict[str, Any]]]],
    customer_rates: Callable[[dict[str, Any], int], Awaitable[None]],
) -> None:
    """The scenario shared by every channel; ``customer_*`` speak the channel's language."""
    db = server.app[DB]
    await auth.add_agent(db, "alice", "agent", PASSWORD)
    await auth.add_agent(db, "sue", "supervisor", PASSWORD)

    ctx = await new_context()
    page = await ctx.new_page()
    # A wrong password is refused on the page (the API answered 401).
    await page.goto(f"{server.url}/agent/login")
    await page.fill("#username", "alice")
    await page.fill("#password", "not-the-password")
    async with page.expect_response("**/agent/api/login") as refused:
        await page.click("#login-button")
    assert (await refused.value).status == 401
    await expect(page.locator("#login-error")).to_have_text("Wrong username or password")
    await _login(page, server, "alice")

    # The customer asks for a person; the bot says where they are in the queue.
    replies = await customer_says("转人工", True)
    assert any("第 1 位" in r for r in replies), replies
    tickets = await _eventually(lambda: _open_ticket_ids(server))
    assert len(tickets) == 1
    tid = tickets[0].id
    # While waiting the bot still answers; the agent will see this in the transcript.
    assert await customer_says("我想问赎回的事", True)

    # The live queue shows the ticket without a page reload.
    row = page.locator(f'#queue tr[data-ticket="{tid}"]')
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("waiting")
    if reports is not None:
        await page.screenshot(path=str(reports / "handoff_queue.png"), full_page=True)

    await row.locator("button.open").click()
    await expect(page.locator("#transcript")).to_contain_text("转人工")
    await expect(page.locator("#transcript")).to_contain_text("我想问赎回的事")
    await page.click("#claim")
    await expect(page.locator("#ticket-meta")).to_contain_text("assigned")
    await page.fill("#reply-text", "您好，我是人工客服小李，请问有什么可以帮您？")
    await page.click("#send-reply")
    await expect(page.locator("#messages")).to_contain_text("我是人工客服小李")

    async def agent_text_arrived() -> bool:
        got = await customer_inbox()
        return any("我是人工客服小李" in (m.get("text") or "") for m in got)

    assert await _eventually(agent_text_arrived), "the agent's reply never reached the customer"

    # While the agent owns the conversation the bot stays silent; the message shows live.
    replies = await customer_says("我的赎回款什么时候到账？", False)
    assert replies == [], replies
    await expect(page.locator("#messages")).to_contain_text("我的赎回款什么时候到账")

    # An internal note stays in the console.
    await page.fill("#reply-text", "客户询问赎回到账时间")
    await page.click("#send-note")
    await expect(page.locator("#messages li.note")).to_contain_text("客户询问赎回到账时间")
    if reports is not None:
        await page.screenshot(path=str(reports / "handoff_ticket.png"), full_page=True)

    await page.click("#resolve")
    await expect(page.locator("#ticket-meta")).to_contain_text("resolved")
    seen: list[dict[str, Any]] = []

    async def rating_asked() -> bool:
        seen.extend(await customer_inbox())
        return any("1–5" in (m.get("text") or "") for m in seen)

    assert await _eventually(rating_asked), seen
    assert not any("客户询问赎回到账时间" in (m.get("text") or "") for m in seen)
    rating = next(m for m in seen if "1–5" in (m.get("text") or ""))
    assert rating["buttons"][4] == '/rate{"score": 5}'
    await customer_rates(rating, 5)

    async def rated() -> bool:
        async with db.begin() as s:
            return (await store.get_ticket(s, tid)).rating == 5  # type: ignore[union-attr]

    assert await _eventually(rated)

    # After resolution the bot answers again.
    assert await customer_says("转人工", True)

    # The agent may not open the dashboard; the supervisor may.
    resp = await page.goto(f"{server.url}/agent/dashboard")
    assert resp is not None and resp.status == 403
    sup = await (await new_context()).new_page()
    await _login(sup, server, "sue")
    await sup.goto(f"{server.url}/agent/dashboard")
    await expect(sup.locator('[data-metric="csat"] .v')).to_have_text("100.0%")
    await expect(sup.locator("svg.chart").first).to_be_visible()
    if reports is not None:
        await sup.screenshot(path=str(reports / "dashboard.png"), full_page=True)


async def test_rest_customer_reaches_an_agent(bot_server, new_context, reports_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as platform:
        server: BotServer = await bot_server(backend_url=platform.base_url, staffed_hours="00:00-00:00")

        async def says(text: str, expect_reply: bool) -> list[str]:
            return [m.get("text") or "" for m in await server.say("rest-cust-1", text)]

        async def inbox() -> list[dict[str, Any]]:
            got = await server.pending("rest-cust-1")
            return [{"text": m.get("text"), "buttons": [b["payload"] for b in m.get("buttons", [])]} for m in got]

        async def rates(message: dict[str, Any], score: int) -> None:
            # A Rasa widget sends the clicked button's payload as the message.
            assert await says(message["buttons"][score - 1], True)

        await _console_flow(server=server, new_context=new_context, reports=reports_dir,
                            customer_says=says, customer_inbox=inbox, customer_rates=rates)


async def test_telegram_customer_reaches_an_agent(bot_server, new_context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chat = 777001
    async with running_sandbox(tmp_dir=tmp_path) as platform, FakeTelegram() as telegram:
        server: BotServer = await bot_server(
            backend_url=platform.base_url, staffed_hours="00:00-00:00",
            telegram_token=telegram.token, telegram_base_url=telegram.base_url,
        )
        read = {"n": 0}

        def new_messages() -> list[dict[str, Any]]:
            sent = telegram.sent(chat)
            fresh, read["n"] = sent[read["n"]:], len(sent)
            return [
                {"text": m.text, "buttons": [b.get("callback_data") for b in m.buttons], "message_id": m.message_id}
                for m in fresh
            ]

        async def says(text: str, expect_reply: bool) -> list[str]:
            before = len(telegram.sent(chat))
            await telegram.send_text(chat, text)
            if expect_reply:
                await telegram.wait_sent(chat, count=before + 1, timeout=8)
            else:
                await asyncio.sleep(1.0)  # long enough for a reply the bot should not send
            return [m["text"] or "" for m in new_messages()]

        async def inbox() -> list[dict[str, Any]]:
            return new_messages()

        async def rates(message: dict[str, Any], score: int) -> None:
            before = len(telegram.sent(chat))
            await telegram.press(chat, message["message_id"], message["buttons"][score - 1])
            await telegram.wait_sent(chat, count=before + 1, timeout=8)
            new_messages()

        await _console_flow(server=server, new_context=new_context, reports=None,
                            customer_says=says, customer_inbox=inbox, customer_rates=rates)
