"""Every message exists in both languages, with the same placeholders, and parses as text."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.locales import HERE, catalog

PLACEHOLDER = re.compile(r"{(\w*)")


def test_same_keys_in_zh_and_en() -> None:
    zh, en = catalog("zh"), catalog("en")
    assert sorted(set(zh) ^ set(en)) == []


def test_same_placeholders_in_both_languages() -> None:
    zh, en = catalog("zh"), catalog("en")
    differ = {k: (zh[k], en[k]) for k in zh
              if set(PLACEHOLDER.findall(zh[k])) != set(PLACEHOLDER.findall(en.get(k, "")))}
    assert differ == {}


def test_no_yaml_booleans_or_numbers_as_keys() -> None:
    """YAML 1.1 reads keys like on/off/yes/no as booleans: the key then silently vanishes."""
    bad: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    bad.append(f"{where}: {key!r}")
                walk(value, f"{where}.{key}")

    for path in sorted(Path(HERE).glob("*/*.yml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)
    assert bad == []
