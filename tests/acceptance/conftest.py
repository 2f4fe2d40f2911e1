"""Acceptance fixtures: the real bot over REST, the real sandbox (events on) and the real Rasa NLU."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.e2e.harness import Replies, Stack, finbot_stack, looks_broken

__all__ = ["CJK", "assert_en", "assert_zh", "no_personal_data"]

CJK = re.compile(r"[\u4e00-\u9fff]")
_MONEY = re.compile(r"¥\s?\d")
_CARD = re.compile(r"\*{2,}\s?\d{4}")


def assert_zh(out: Replies) -> None:
    """A customer who wrote Chinese reads Chinese, and nothing broken."""
    assert out.text.strip(), "no reply"
    assert CJK.search(out.text), f"expected a Chinese reply: {out.text!r}"
    assert looks_broken(out.text) is None, out.text


def assert_en(out: Replies) -> None:
    """A customer who wrote English reads English (product names may stay as they are)."""
    assert out.text.strip(), "no reply"
    # The bank's name on a card line is the only Chinese an English customer may see.
    stripped = re.sub(r"\S*银行\S*", "", out.text)
    assert not CJK.search(stripped), f"expected an English reply: {out.text!r}"
    assert looks_broken(out.text) is None, out.text


def no_personal_data(out: Replies) -> None:
    """Nothing of an account: no amounts, no masked card."""
    assert not _MONEY.search(out.text), out.text
    assert not _CARD.search(out.text), out.text


@pytest.fixture
async def stack(bot_server: BotFactory, tmp_path: Path, nlu_url: str) -> AsyncIterator[Stack]:
    """Sandbox (clock frozen on a trading morning, events posted to the bot) → bot → real NLU."""
    async with finbot_stack(bot_server, tmp_path, nlu_url=nlu_url) as s:
        yield s
