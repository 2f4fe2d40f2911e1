"""Fixtures of the reliability tests: the real bot, sandbox and fault proxies on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.e2e.harness import Stack, finbot_stack


@pytest.fixture
async def stack(bot_server: BotFactory, tmp_path: Path) -> AsyncIterator[Stack]:
    """Sandbox → fault proxy → bot (SQLite), NLU unreachable (buttons and payloads only)."""
    async with finbot_stack(bot_server, tmp_path, backend_proxy=True) as s:
        yield s
