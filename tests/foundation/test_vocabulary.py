"""Keyboard mashing is not understood as an intent; real (even misspelt) messages are left alone."""

from __future__ import annotations

import pytest

from bot.vocabulary import is_noise


@pytest.mark.parametrize("text", ["zzkq vvbnm tyui", "qwzx plmokn ujhy", "blorp", "asdf qwer"])
def test_noise(text: str) -> None:
    assert is_noise(text)


@pytest.mark.parametrize("text", [
    "what is my balance", "ballance pls", "redeem all", "thx", "hi", "D20261125000001",
    "买五千块短债", "7KQ4M2XD", "123456", "😀", "what is bitcoin price", "",
])
def test_not_noise(text: str) -> None:
    assert not is_noise(text)
