"""Fixtures of the end-to-end scenarios: real NLU server, real sandbox posting events, the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.e2e.harness import Stack, finbot_stack


@pytest.fixture
async def e2e(bot_server: BotFactory, tmp_path: Path, nlu_url: str) -> AsyncIterator[Stack]:
    """Sandbox (events → bot) and the bot with the real Rasa NLU; SQLite."""
    async with finbot_stack(bot_server, tmp_path, nlu_url=nlu_url) as s:
        yield s
