"""The engine area's texts: the same keys and placeholders in Chinese and English."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml

from bot.locales import _flatten

AREAS = ("engine", "balance", "buy", "redeem", "link", "smalltalk")
ROOT = Path(__file__).resolve().parents[2] / "bot" / "locales"


def _keys(lang: str, area: str) -> dict[str, str]:
    out: dict[str, str] = {}
    _flatten(yaml.safe_load((ROOT / lang / f"{area}.yml").read_text(encoding="utf-8")), "", out)
    return out


@pytest.mark.parametrize("area", AREAS)
def test_same_keys_and_placeholders_in_both_languages(area: str) -> None:
    zh, en = _keys("zh", area), _keys("en", area)
    assert set(zh) == set(en)
    assert all(k.startswith(f"{area}.") for k in zh)
    for key in zh:
        fields_zh = {f for _, f, _, _ in string.Formatter().parse(zh[key]) if f}
        fields_en = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
        assert fields_zh == fields_en, key


def test_every_stepup_action_has_a_label() -> None:
    from bot.security.stepup import POLICY

    zh = _keys("zh", "engine")
    assert all(f"engine.action.{a}" in zh for a in POLICY)
