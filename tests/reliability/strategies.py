"""Hypothesis strategies for hostile chat input: what a careless, curious or malicious sender types."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import strategies as st

__all__ = ["hostile_message", "raw_body"]

LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

INJECTIONS = (
    "'; DROP TABLE conversations; --",
    "1' OR '1'='1",
    "\" OR 1=1 --",
    "SELECT * FROM order_intents WHERE 1=1",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "{{7*7}}",
    "${7*7}",
    "{0.__class__.__mro__}",
    "{customer_id}",
    "{order_id} {amount} {name}",
    "%s%s%s%s%n",
    "{{config.items()}}",
    "__import__('os').system('id')",
    "../../../../etc/passwd",
    "\\x00\\x1b[31m",
    "\u202eRTL override\u202c",
    "\ufeffBOM",
    "null",
    "None",
    "NaN",
    "-1",
    "1e309",
    "99999999999999999999999999",
    "-5000",
    "0.001",
    "¥-100",
    "买 -5000 元",
    "买入 1e10 元 安心短债",
    "/confirm",
    "/cancel",
    "/resume",
    "/resend_code",
    "/rate{\"score\": 99}",
    "/rate{\"score\": \"<script>\"}",
    "/start ../../",
    "/check_balance{\"customer_id\": \"cus_other\"}",
    "/track_transaction{\"order_id\": \"../../admin\"}",
    "/buy_product{\"product\": \"BOND01\", \"amount\": \"-1\"}",
    "/buy_product{\"product\": \"NOPE\", \"amount\": \"NaN\"}",
    "/buy_product{\"product\": [1, 2], \"amount\": {\"a\": 1}}",
    "/redeem_product{\"shares\": \"1e999\", \"product\": \"MMF01\"}",
    "/redeem_product{\"all\": \"yes\", \"product\": \"BOND01\"}",
    "/inform{\"amount\": null}",
    "/faq/trading_hours",
    "/__class__",
    "/engine{\"x\": 1}",
    "转人工",
    "取消",
    "确认",
    "解绑",
    "删除我的数据",
    "我的数据",
)

BROKEN_PAYLOADS = (
    "/buy_product{",
    "/buy_product{\"product\": ",
    "/buy_product{\"product\": \"BOND01\"",
    "/buy_product{'product': 'BOND01'}",
    "/check_balance{}}",
    "/intent{\"a\": \"\\ud800\"}",
    "/intent{\"a\": 1,}",
    "/track_transaction[\"D20261125000001\"]",
    "/",
    "//",
    "/ 123",
    "/{\"a\":1}",
)

EMOJI = st.text(
    alphabet=st.sampled_from("😀😂🤣😍🙏👍🔥💰📈📉🏦💳🇨🇳👨‍👩‍👧‍👦🧑🏽‍💻❤️✨🎉"), min_size=1, max_size=30
)
CONTROL = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), min_size=1, max_size=40)
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)
CJK = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=40)
WORDS = st.lists(
    st.sampled_from(
        "我 想 买 卖 赎回 全部 余额 查 订单 投诉 人工 安心短债 稳盈货币A 均衡混合 沪深300 "
        "QDII 一万五 五千 两千块 份 元 万 的 了 吗 ？ ! buy sell redeem all balance order "
        "complaint agent bond money market shares yuan 5000 1,000 2.5 please help me".split()
    ),
    min_size=1,
    max_size=12,
).map(" ".join)


def _nested(depth: int) -> str:
    return "{\"a\": " * depth + "1" + "}" * depth


NESTED_JSON = st.integers(min_value=50, max_value=3000).map(
    lambda d: "/buy_product" + _nested(d)
)
DEEP_LIST = st.integers(min_value=50, max_value=3000).map(lambda d: "/inform" + "[" * d + "]" * d)


def fake_link_code() -> st.SearchStrategy[str]:
    code = st.text(alphabet=LINK_ALPHABET, min_size=8, max_size=8)
    return st.tuples(st.sampled_from(["", "绑定 ", "link ", "/start ", "綁定：", "LINK "]), code, st.booleans()).map(
        lambda t: t[0] + (t[1][:4] + "-" + t[1][4:] if t[2] else t[1])
    )


SIX_DIGITS = st.integers(min_value=0, max_value=999_999).map(lambda n: f"{n:06d}")
LONG = st.tuples(st.sampled_from("啊a1 😀<'"), st.integers(min_value=1990, max_value=5000)).map(
    lambda t: t[0] * t[1]
)


def hostile_message(foreign_order_ids: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """One message, drawn from every kind of hostile or odd input (plus ordinary requests)."""
    kinds: list[st.SearchStrategy[str]] = [
        st.just(""),
        st.sampled_from(["   ", "\n\n", "\t", "\u200b", "\u3000"]),
        LONG,
        CONTROL,
        EMOJI,
        ANY_TEXT,
        CJK,
        WORDS,
        st.sampled_from(INJECTIONS),
        st.sampled_from(BROKEN_PAYLOADS),
        NESTED_JSON,
        DEEP_LIST,
        fake_link_code(),
        SIX_DIGITS,
        st.tuples(st.sampled_from(INJECTIONS), ANY_TEXT).map(" ".join),
    ]
    if foreign_order_ids:
        oid = st.sampled_from(list(foreign_order_ids))
        kinds += [
            oid,
            oid.map(lambda o: f"查一下订单 {o}"),
            oid.map(lambda o: f"where is my order {o.lower()}?"),
            oid.map(lambda o: f"/track_transaction{{\"order_id\": \"{o}\"}}"),
            oid.map(lambda o: f"投诉订单 {o} 没到账"),
        ]
    return st.one_of(*kinds)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def raw_body() -> st.SearchStrategy[bytes]:
    """Whole request bodies, most of them not what the REST channel accepts."""
    return st.one_of(
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(["sender", "message", "metadata"]), JSON_VALUES, max_size=3).map(
            lambda d: json.dumps(d).encode()
        ),
        st.binary(max_size=200),
        st.just(b"{\"sender\": \"x\", \"message\": \"hi\""),
        st.just(("{\"sender\": \"x\", \"message\": " + "[" * 5000 + "]" * 5000 + "}").encode()),
        st.just(b"\xff\xfe\x00"),
    )
