"""Masking: numbers found inside free text are masked; ids, amounts and codes are not touched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.security.masking import mask_card, mask_id_number, mask_phone, mask_text


def test_single_values() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_id_number("11010519491231002x") == "**************002X"
    assert mask_card("6222 0212 3456 7890 123") == "**** **** **** 0123"
    assert mask_card("6222021234567890") == "**** **** **** 7890"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的手机13812345678，帮我查下", "我的手机138****5678，帮我查下"),
        ("手机号：+86 138 1234 5678。", "手机号：+86 138****5678。"),
        ("call me on 0086-139-1234-5678 please", "call me on 0086-139****5678 please"),
        ("8613912345678", "86139****5678"),
        ("tel13812345678", "tel138****5678"),
        ("ID11010519491231002X", "ID**************002X"),
        ("card6222021234567890", "card**** **** **** 7890"),
        ("号码１３８１２３４５６７８", "号码138****5678"),  # full-width digits
        ("身份证11010519491231002X", "身份证**************002X"),
        ("id 110105194912310021 ok", "id **************0021 ok"),
        ("身份证号 110105 19491231 002X", "身份证号 **************002X"),
        ("老身份证110105491231002", "老身份证***********1002"),
        ("卡号6222021234567890123，谢谢", "卡号**** **** **** 0123，谢谢"),
        ("card 6222 0212 3456 7890, thanks", "card **** **** **** 7890, thanks"),
        ("card 6222-0212-3456-7890-123", "card **** **** **** 0123"),
        (
            "手机13812345678和卡6222021234567890都给你",
            "手机138****5678和卡**** **** **** 7890都给你",
        ),
    ],
)
def test_masks_numbers_inside_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "订单D2026112500 的状态",
        "投诉单号C2026112512 进度",
        "order D1381234567 and complaint C1391234567",
        "订单 D20261202000001、投诉 C20261202000001",  # the platform's real id format
        "D2026120210000001 C202612021000000123",  # ids that outgrew 6 digits of sequence
        "验证码 123456",
        "我想买 50000 元 BOND01",
        "金额 ¥1,381,234,567.00",
        "赎回 13812345678.50 元",  # an amount, however phone-like its integer part
        "¥12,345,678,901.00",
        "2026-11-25 10:00:00+08:00",
        "20261125",
        "绑定 7KQ4-M2XD",
        "份额 10000.0000",
        "ts=1764590000123",  # 13-digit milliseconds
        "尾号1234的卡",
        "",
    ],
)
def test_leaves_ids_amounts_and_codes_alone(text: str) -> None:
    assert mask_text(text) == text


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.text(alphabet="我要买的订单号是 ,.:#（", max_size=8),
    digits=st.integers(min_value=0, max_value=10**20),
    kind=st.sampled_from(["D", "C"]),
    code=st.integers(min_value=0, max_value=999_999),
    yuan=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
)
def test_never_touches_order_ids_codes_or_amounts(
    prefix: str, digits: int, kind: str, code: int, yuan: object
) -> None:
    text = f"{prefix}{kind}{digits:010d} 验证码{code:06d} 金额{yuan}元 订单{kind}{digits}"
    assert mask_text(text) == text


@settings(max_examples=200, deadline=None)
@given(
    second=st.sampled_from("3456789"),
    rest=st.integers(min_value=0, max_value=999_999_999),
    around=st.sampled_from(["我的手机{}谢谢", "{}", "call {} now", "电话:{}。", "(+86){}"]),
)
def test_every_mobile_number_is_masked(second: str, rest: int, around: str) -> None:
    phone = f"1{second}{rest:09d}"
    masked = mask_text(around.format(phone))
    assert phone not in masked
    assert f"{phone[:3]}****{phone[-4:]}" in masked
