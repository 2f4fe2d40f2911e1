"""Shared browser fixtures: Debian's Chromium driven by Playwright (async API), never downloaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for one test (a warm launch costs ~0.15 s). The async API runs in
    the test's own event loop, next to the bot server it drives."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def new_context(chromium: Browser) -> AsyncIterator[Any]:
    """``await new_context()`` → an isolated browser profile (own cookies), closed afterwards."""
    made: list[BrowserContext] = []

    async def make(**kwargs: Any) -> BrowserContext:
        ctx = await chromium.new_context(viewport={"width": 1280, "height": 860}, **kwargs)
        ctx.set_default_timeout(10_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        await ctx.close()
