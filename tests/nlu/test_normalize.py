"""Normalisation of amounts, shares, periods, products, risk levels and product types."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.normalize import (
    find_amounts,
    find_products,
    find_shares,
    format_decimal,
    normalise_entity,
    parse_amount,
    parse_period,
    parse_shares,
    product_code,
    product_type,
    risk_level,
    share_fraction,
)

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一万五", "15000"),
        ("1.5万", "15000"),
        ("两千", "2000"),
        ("三千块", "3000"),
        ("2千5", "2500"),
        ("一千二百五十", "1250"),
        ("5k", "5000"),
        ("5K", "5000"),
        ("¥5,000", "5000"),
        ("￥5000", "5000"),
        ("5,000.50元", "5000.50"),
        ("十万", "100000"),
        ("1w", "10000"),
        ("1w5", "15000"),
        ("半万", "5000"),
        ("一万半", "15000"),
        ("两百五", "250"),
        ("三万五千", "35000"),
        ("十五", "15"),
        ("一万零五", "10005"),
        ("两万块钱", "20000"),
        ("一百块钱", "100"),
        ("5000元整", "5000"),
        ("大概五万", "50000"),
        ("five thousand", "5000"),
        ("fifteen thousand", "15000"),
        ("10 grand", "10000"),
        ("2.5k", "2500"),
        ("RMB 800", "800"),
        ("3000 yuan", "3000"),
    ],
)
def test_amounts_become_exact_decimals(text: str, expected: str) -> None:
    value = parse_amount(text)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert format_decimal(value) == expected


@pytest.mark.parametrize("text", ["", "abc", "0", "千", "五五", "5000.505", "几千", "一些", None])
def test_unclear_amounts_are_none(text: str | None) -> None:
    assert parse_amount(text) is None


@given(st.integers(min_value=1, max_value=10**9))
def test_plain_integers_round_trip(n: int) -> None:
    assert parse_amount(str(n)) == Decimal(n)
    assert parse_amount(f"{n:,}") == Decimal(n)


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999"), places=2))
def test_two_place_amounts_are_never_floats(d: Decimal) -> None:
    value = parse_amount(f"{d}元")
    assert value == d and isinstance(value, Decimal)


def test_shares_and_fractions() -> None:
    assert parse_shares("1000份") == Decimal(1000)
    assert parse_shares("五百") == Decimal(500)
    assert parse_shares("200 units") == Decimal(200)
    assert share_fraction("全部") == Decimal(1)
    assert share_fraction("一半") == Decimal("0.5")
    assert share_fraction("half") == Decimal("0.5")
    assert share_fraction("一些") is None


def test_amounts_in_free_text_only_when_they_are_money() -> None:
    assert [v for *_, v in find_amounts("我想买一万五的短债")] == [Decimal(15000)]
    assert [v for *_, v in find_amounts("三千块买稳盈")] == [Decimal(3000)]
    assert [v for *_, v in find_amounts("invest ¥3,000 in mmf")] == [Decimal(3000)]
    assert [v for *_, v in find_amounts("赎回2千5")] == [Decimal(2500)]
    # not money: share counts, ids, one-time codes, periods, "一下"
    assert find_amounts("赎回1000份") == []
    assert find_amounts("查D2611250042") == []
    assert find_amounts("验证码 123456") == []
    assert find_amounts("最近三个月的记录") == []
    assert find_amounts("帮我赎回一下") == []
    assert [v for *_, v in find_shares("赎回1000份短债")] == [Decimal(1000)]
    # a money verb elsewhere in the sentence is enough for an arabic number
    assert [v for *_, v in find_amounts("the 10000 i redeemed still hasn't come back")] == [
        Decimal(10000)
    ]
    assert [v for *_, v in find_amounts("top up my money market fund with 500")] == [Decimal(500)]
    assert find_amounts("2026年买的基金") == [] and find_amounts("最近30天买的") == []
    assert find_amounts("赎回1000份沪深300") == [] and find_amounts("买点沪深300") == []


def test_product_names_map_to_catalog_codes() -> None:
    assert product_code("短债") == "BOND01"
    assert product_code("余额宝那种") == "MMF01"
    assert product_code("稳盈的") == "MMF01"
    assert product_code("沪深300") == "IDX300"
    assert product_code("全球科技QDII") == "QDII01"
    assert product_code("money market fund") == "MMF01"
    assert product_code("Balanced Hybrid") == "MIX01"
    assert product_code("比特币") is None
    assert [c for *_, c in find_products("买5k沪深300和一点稳盈")] == ["IDX300", "MMF01"]
    assert find_products("bonding time") == []


def test_risk_levels_and_product_types() -> None:
    assert risk_level("低风险") == "low"
    assert risk_level("稳健") == "low"
    assert risk_level("中风险的") == "medium"
    assert risk_level("high risk") == "high"
    assert risk_level("R3") == "R3"
    assert risk_level("r5") == "R5"
    assert product_type("债券类") == "bond"
    assert product_type("货币类") == "money_market"
    assert product_type("指数型") == "equity_index"
    assert product_type("QDII类") == "qdii"
    assert product_type("混合型") == "hybrid"
    assert product_type("overseas") == "qdii"


TODAY = date(2026, 12, 1)  # a Tuesday


def _range(text: str) -> tuple[datetime, datetime]:
    p = parse_period(text, TODAY)
    assert p is not None, text
    assert p.start.tzinfo is not None and p.end.tzinfo is not None
    return p.start, p.end


def d(y: int, m: int, day: int) -> datetime:
    return datetime(y, m, day, tzinfo=SH)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("上个月", d(2026, 11, 1), d(2026, 12, 1)),
        ("last month", d(2026, 11, 1), d(2026, 12, 1)),
        ("这个月", d(2026, 12, 1), d(2026, 12, 2)),
        ("最近三个月", d(2026, 9, 1), d(2026, 12, 2)),
        ("last 3 months", d(2026, 9, 1), d(2026, 12, 2)),
        ("今年", d(2026, 1, 1), d(2026, 12, 2)),
        ("this year", d(2026, 1, 1), d(2026, 12, 2)),
        ("去年", d(2025, 1, 1), d(2026, 1, 1)),
        ("last week", d(2026, 11, 23), d(2026, 11, 30)),
        ("上周", d(2026, 11, 23), d(2026, 11, 30)),
        ("本周", d(2026, 11, 30), d(2026, 12, 2)),
        ("past 30 days", d(2026, 11, 2), d(2026, 12, 2)),
        ("近7天", d(2026, 11, 25), d(2026, 12, 2)),
        ("最近一周", d(2026, 11, 25), d(2026, 12, 2)),
        ("最近半年", d(2026, 6, 1), d(2026, 12, 2)),
        ("昨天", d(2026, 11, 30), d(2026, 12, 1)),
        ("today", d(2026, 12, 1), d(2026, 12, 2)),
        ("11月", d(2026, 11, 1), d(2026, 12, 1)),
        ("12月", d(2026, 12, 1), d(2026, 12, 2)),
        ("十月份", d(2026, 10, 1), d(2026, 11, 1)),
        ("march", d(2026, 3, 1), d(2026, 4, 1)),
    ],
)
def test_periods_are_aware_ranges_relative_to_today(
    text: str, start: datetime, end: datetime
) -> None:
    assert _range(text) == (start, end)


def test_period_month_ends_and_year_boundaries() -> None:
    p = parse_period("上个月", date(2026, 1, 15))
    assert p is not None and (p.start, p.end) == (d(2025, 12, 1), d(2026, 1, 1))
    p = parse_period("最近一个月", date(2026, 3, 31))
    assert p is not None and p.start == d(2026, 2, 28)
    # "today" given as an aware instant late in the evening UTC is already the next day in Shanghai
    p = parse_period("今天", datetime(2026, 11, 30, 20, 0, tzinfo=ZoneInfo("UTC")))
    assert p is not None and p.start == d(2026, 12, 1)
    assert parse_period("下辈子", TODAY) is None
    assert parse_period("最近0天", TODAY) is None


def test_entities_normalise_by_type() -> None:
    assert normalise_entity("amount", "一万五") == "15000"
    assert normalise_entity("amount", "1.5万") == "15000"
    assert normalise_entity("shares", "1000") == "1000"
    assert normalise_entity("product", "短债", "BOND01") == "BOND01"
    assert normalise_entity("product", "稳盈", "稳盈") == "MMF01"
    assert normalise_entity("product", "月球基金") is None
    assert normalise_entity("all", "全部", "true") == "true"
    assert normalise_entity("order_id", "d2611250042") == "D2611250042"
    assert normalise_entity("order_id", "D26112500") is None
    assert normalise_entity("complaint_id", "C2611250007") == "C2611250007"
    assert normalise_entity("risk_level", "低风险", "low") == "low"
    assert normalise_entity("product_type", "债券类", "bond") == "bond"
    assert normalise_entity("period", " 上个月 ") == "上个月"


def test_negative_amounts_and_shares_are_not_read_as_positive() -> None:
    from bot.normalize import parse_amount as _amount
    from bot.normalize import parse_shares as _shares

    assert _amount("-5000") is None and _amount("负五千") is None and _shares("-5份") is None
    assert _amount("5000") == 5000
    from bot.normalize import find_amounts as _find

    assert _find("买-5000元短债") == [] and _find("买5000元短债")[0][2] == 5000


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("ok i choose global tech, 8000", "8000"),  # a product named beside the number
        ("thieves. where did my 5000 go", "5000"),  # the customer's own money
        ("an auto debit i never set up took 1000 again", "1000"),  # money taken
        ("5000 pls", "5000"),  # a bare answer with chat filler
        ("嗯 3000吧", "3000"),
        ("扣了我200", "200"),
    ],
)
def test_amounts_the_customer_clearly_means_as_money(text: str, amount: str) -> None:
    from bot.normalize import find_amounts as _find

    assert [str(v) for _, _, v in _find(text)][:1] == [amount]


@pytest.mark.parametrize(
    "text",
    ["my code is 123456", "482913 pls", "我的验证码 482913", "give me 5 minutes", "top 10 funds",
     "安心短债 7天", "i have 3 kids", "买沪深300"],
)
def test_numbers_that_are_not_money_stay_out(text: str) -> None:
    from bot.normalize import find_amounts as _find

    assert _find(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("买0元短债", True), ("-5000", True), ("负五千", True), ("¥0", True), ("－5000", True),
     ("买5000", False), ("2026-11-25", False), ("covid-19", False), ("10元", False)],
)
def test_zero_and_negative_amounts_are_recognised_to_say_why(text: str, expected: bool) -> None:
    from bot.normalize import names_non_positive_amount

    assert names_non_positive_amount(text) is expected
