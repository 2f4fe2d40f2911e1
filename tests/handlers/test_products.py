"""The catalog from the real sandbox: filters, one product's details, disclaimers, buy buttons."""

from __future__ import annotations

import re

import pytest

from bot.handlers import greet, products
from tests.handlers.conftest import CtxFactory, payloads, turn
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(60)

CODES = ("MMF01", "BOND01", "MIX01", "IDX300", "QDII01")


def _listed(text: str) -> set[str]:
    return {c for c in CODES if f"{c}" in text}


async def test_full_catalog_in_chinese(make_ctx: CtxFactory) -> None:
    reply = await products.handle(turn("有哪些产品", "list_products"), make_ctx("zh"))
    text = reply[0].text
    assert _listed(text) == set(CODES)
    for words in (
        "R1 低风险",
        "R3 中风险",
        "R5 高风险",
        "T+0",
        "T+1",
        "T+2",
        "¥1.00起购",
        "¥1,000.00起购",
    ):
        assert words in text, words
    assert "理财非存款，产品有风险，投资须谨慎。" in text
    assert "1–3%" in text and "3–8%" in text and "8–15%" in text
    assert '/buy_product{"product":"BOND01"}' in payloads(reply)
    assert len(payloads(reply)) == 5


async def test_filter_by_risk_words_and_levels(make_ctx: CtxFactory) -> None:
    reply = await products.handle(turn("有低风险的产品吗", "list_products"), make_ctx("zh"))
    assert _listed(reply[0].text) == {"MMF01", "BOND01"}
    reply = await products.handle(
        turn("show me high risk funds", "list_products", "en", risk_level="high"), make_ctx("en")
    )
    assert _listed(reply[0].text) == {"IDX300", "QDII01"}
    assert "Investments are not deposits and carry risk." in reply[0].text
    reply = await products.handle(
        turn("products rated R3 or below", "list_products", "en", risk_level="R3"), make_ctx("en")
    )
    assert _listed(reply[0].text) == {"MMF01", "BOND01", "MIX01"}


async def test_filter_by_type(make_ctx: CtxFactory) -> None:
    reply = await products.handle(
        turn("do you have bond funds", "list_products", "en", product_type="bond"), make_ctx("en")
    )
    assert _listed(reply[0].text) == {"BOND01"}
    reply = await products.handle(turn("有QDII基金吗", "list_products"), make_ctx("zh"))
    assert _listed(reply[0].text) == {"QDII01"}


async def test_suitable_for_me_uses_the_linked_customers_tolerance(
    sandbox: SandboxServer, make_ctx: CtxFactory
) -> None:
    customer = await sandbox.create_customer(risk_tolerance="C2")
    ctx = make_ctx("zh", customer_id=customer["customer_id"])
    reply = await products.handle(turn("适合我的产品", "list_products"), ctx)
    assert _listed(reply[0].text) == {"MMF01", "BOND01"}
    assert "C2" in reply[0].text
    # The FAQ's "products for me" button carries the filter as an entity.
    reply = await products.handle(
        turn('/list_products{"risk_level":"mine"}', "list_products", risk_level="mine"), ctx
    )
    assert _listed(reply[0].text) == {"MMF01", "BOND01"}
    # Not linked: explain how to link instead of guessing.
    reply = await products.handle(turn("适合我的产品", "list_products"), make_ctx("zh"))
    assert "绑定" in reply[0].text and not _listed(reply[0].text)


async def test_one_product_in_detail(sandbox: SandboxServer, make_ctx: CtxFactory) -> None:
    reply = await products.handle(
        turn("tell me about the bond fund", "list_products", "en", product="BOND01"), make_ctx("en")
    )
    text = reply[0].text
    assert "Short-term Bond (BOND01)" in text
    assert "R2 (low risk)" in text and "T+1" in text and "¥100.00" in text
    assert "0.3%" in text  # subscription fee from the platform
    assert "1.5%" in text and "0.5%" in text  # redemption tiers from the platform
    assert "3–8%" in text and "not a forecast" in text
    assert "Investments are not deposits and carry risk." in text
    assert payloads(reply)[0] == '/buy_product{"product":"BOND01"}'

    customer = await sandbox.create_customer(risk_tolerance="C3")
    reply = await products.handle(
        turn("全球科技QDII怎么样", "list_products", product="QDII01"),
        make_ctx("zh", customer_id=customer["customer_id"]),
    )
    assert "R5" in reply[0].text and "C3" in reply[0].text and "暂不能购买" in reply[0].text


async def test_no_return_is_promised(make_ctx: CtxFactory) -> None:
    for lang in ("zh", "en"):
        reply = await products.handle(turn("products", "list_products", lang), make_ctx(lang))
        text = reply[0].text
        assert not re.search(
            r"保证收益|稳赚|保本保息(?!。)|guaranteed", text.replace("不保本保息", "")
        )


async def test_unknown_product_is_polite(make_ctx: CtxFactory) -> None:
    reply = await products.handle(turn("XYZ99", "list_products", product="XYZ99"), make_ctx("zh"))
    assert "没有找到" in reply[0].text and "/list_products" in payloads(reply)


async def test_greet_and_help_show_the_menu(make_ctx: CtxFactory) -> None:
    want = {
        "/check_balance",
        "/list_products",
        "/buy_product",
        "/redeem_product",
        "/track_transaction",
        "/transaction_history",
        "/file_complaint",
        "/faq",
        "/human_handoff",
    }
    zh = await greet.handle(turn("你好", "greet"), make_ctx("zh", customer_id="c1"))
    assert set(payloads(zh)) == want
    assert [b.title for b in zh[0].buttons][:2] == ["余额", "产品"]
    en = await greet.handle_help(turn("help", "help", "en"), make_ctx("en"))
    assert set(payloads(en)) == want
    assert "link" in en[0].text and "Balance" in [b.title for b in en[0].buttons]
