"""Message catalogs: bot/locales/<lang>/*.yml merged per language; money and date formats."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.types import Lang

HERE = Path(__file__).resolve().parent
LANGS: tuple[Lang, ...] = ("zh", "en")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@cache
def catalog(lang: Lang) -> dict[str, str]:
    """All keys of one language, flattened ("buy.confirm": "...")."""
    merged: dict[str, str] = {}
    for path in sorted((HERE / lang).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        _flatten(data, "", merged)
    return merged


def _flatten(node: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = str(node)


def has(lang: Lang, key: str) -> bool:
    return key in catalog(lang)


def translate(lang: Lang, key: str, /, **kwargs: Any) -> str:
    """The text for ``key`` in ``lang``, formatted with ``kwargs``. A missing key is a bug:
    it raises KeyError so tests catch it (every key exists in both languages)."""
    text = catalog(lang)[key]
    return text.format(**kwargs) if kwargs else text


def translator(lang: Lang):  # type: ignore[no-untyped-def]
    """A ``t(key, **kw)`` bound to one language."""

    def t(key: str, /, **kwargs: Any) -> str:
        return translate(lang, key, **kwargs)

    return t


def money(amount: Decimal, lang: Lang = "zh") -> str:
    """¥50,000.00 in both languages (CNY, 2 places, half up)."""
    q = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    return f"{sign}¥{abs(q):,.2f}"


def shares(value: Decimal) -> str:
    """Fund shares with up to 2 decimals, thousands separated."""
    q = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{q:,.2f}"


def date(value: datetime, lang: Lang = "zh", with_time: bool = False) -> str:
    """A date (and time) in Asia/Shanghai: 2026年11月25日 / 2026-11-25."""
    local = value.astimezone(SHANGHAI)
    if lang == "zh":
        text = f"{local.year}年{local.month}月{local.day}日"
        return f"{text} {local:%H:%M}" if with_time else text
    return f"{local:%Y-%m-%d %H:%M}" if with_time else f"{local:%Y-%m-%d}"
