"""Bare answers understood without the NLU: amounts, shares, "all", corrections."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.dialogue.values import cn_number, parse_all, parse_number, strip_frame


@pytest.mark.parametrize(
    ("text", "value"),
    [("两千", 2000), ("一万五", 15000), ("两千五", 2500), ("三十", 30), ("十五", 15),
     ("一百零五", 105), ("五百", 500), ("两万", 20000), ("一万零五百", 10500)],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert cn_number(text) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [("5000", "5000", None), ("5,000元", "5000", "yuan"), ("改成两千", "2000", None),
     ("actually make it 5000", "5000", None), ("make it 3k instead", "3000", None),
     ("1000份", "1000", "shares"), ("500 shares", "500", "shares"), ("2万", "20000", None),
     ("换成1.5万吧", "15000.0", None), ("12.5", "12.5", None)],
)
def test_bare_numbers_and_corrections(text: str, value: str, kind: str | None) -> None:
    assert parse_number(text) == (Decimal(value), kind)


@pytest.mark.parametrize("text", ["买点短债", "what is the fee", "5000 or 6000", "", "D20261125000001"])
def test_sentences_are_not_bare_numbers(text: str) -> None:
    assert parse_number(text) is None


@given(st.integers(min_value=1, max_value=10**9))
def test_every_plain_integer_reads_back(n: int) -> None:
    assert parse_number(str(n)) == (Decimal(n), None)
    assert parse_number(f"{n:,}元") == (Decimal(n), "yuan")


def test_all_and_frames() -> None:
    assert parse_all("全部") and parse_all("all") and parse_all("全部赎回")
    assert not parse_all("全部产品有哪些")
    assert strip_frame("换成混合吧") == "混合"
