"""The web chat in headless Chromium on a phone-sized screen: type, click a button, download, pushes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from bot.app import DELIVERY
from bot.types import Outgoing
from tests.channels.conftest import ChannelBotFactory, channel_bot  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

PHONE = {"width": 390, "height": 844}


async def test_a_customer_chats_clicks_a_button_downloads_and_sees_a_live_push(
    channel_bot: ChannelBotFactory, new_context: Any, reports_dir: Path  # noqa: F811
) -> None:
    bot = await channel_bot()
    ctx = await new_context(locale="zh-CN", accept_downloads=True)
    page = await ctx.new_page()
    await page.set_viewport_size(PHONE)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    await page.goto(bot.url + "/")
    await expect(page.locator("#title")).to_have_text("基金平台在线客服")
    await expect(page.locator("#send")).to_have_text("发送")
    await expect(page.locator("#status")).to_be_hidden()  # the WebSocket is up

    await page.fill("#input", "菜单")
    await page.press("#input", "Enter")
    await expect(page.locator(".msg.user").last).to_have_text("菜单")
    button = page.get_by_role("button", name="查余额 Balance")
    await expect(button).to_be_visible()
    await button.click()
    await expect(page.locator(".msg.user").last).to_have_text("查余额 Balance")  # the title, not the payload
    await expect(page.locator(".msg.bot").last).to_have_text("您的总资产 ¥50,000.00")
    await expect(button).to_be_disabled()  # a second press cannot happen
    assert bot.engine.seen[-1].text == "/check_balance"

    await page.fill("#input", "导出")
    await page.click("#send")
    link = page.locator("a.file").last
    await expect(link).to_have_text("历史记录.csv")
    async with page.expect_download() as caught:
        await link.click()
    download = await caught.value
    assert download.suggested_filename == "历史记录.csv"
    assert Path(await download.path()).read_bytes() == b"order,amount\nA1,100.00\n"

    sender = bot.engine.seen[-1].sender
    await bot.app[DELIVERY].push("webchat", sender, Outgoing(text="客服小王：您的问题已处理"))
    await expect(page.locator(".msg.pushed").last).to_have_text("客服小王：您的问题已处理")

    # No horizontal scrolling on a phone.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=str(reports_dir / "webchat.png"))

    await page.click("#lang")
    await expect(page.locator("#send")).to_have_text("Send")
    await expect(page.locator("#input")).to_have_attribute("placeholder", "Type a message…")
    assert errors == []


async def test_a_push_while_the_page_was_closed_shows_on_the_next_visit(
    channel_bot: ChannelBotFactory, new_context: Any  # noqa: F811
) -> None:
    bot = await channel_bot()
    ctx = await new_context(locale="en-US")
    page = await ctx.new_page()
    await page.goto(bot.url + "/")
    await expect(page.locator("#send")).to_have_text("Send")
    await page.fill("#input", "hello")
    await page.press("#input", "Enter")
    await expect(page.locator(".msg.bot").last).to_have_text("echo: hello")
    sender = bot.engine.seen[-1].sender
    await page.close()
    await bot.app[DELIVERY].push("webchat", sender, Outgoing(text="Your redemption has arrived"))
    page = await ctx.new_page()
    await page.goto(bot.url + "/")
    await expect(page.locator(".msg.pushed")).to_have_text("Your redemption has arrived")
