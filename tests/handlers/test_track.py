"""Order tracking against the real sandbox: status words, times, next step, failures, privacy."""

from __future__ import annotations

import pytest

from backend_client.client import PlatformClient
from bot.handlers import track
from tests.handlers.conftest import CtxFactory, payloads, place_order, turn
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(60)

WED_10 = "2026-11-25T10:00:00+08:00"  # a trading day, inside the window


async def test_subscription_progress_in_plain_words(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer(risk_tolerance="C3")
    order_id = await place_order(sandbox, backend, c, "subscribe", "BOND01", amount="1000")
    ctx = make_ctx("zh", customer_id=c["customer_id"])

    reply = await track.handle(
        turn(f"查一下订单{order_id}", "track_transaction", order_id=order_id), ctx
    )
    text = reply[0].text
    assert order_id in text and "安心短债" in text and "¥1,000.00" in text
    assert "当前状态：已提交" in text
    assert "2026年11月25日 10:00" in text  # submitted at, Asia/Shanghai
    assert "下一步：预计 2026年11月26日" in text and "已确认" in text

    await sandbox.set_clock("2026-11-26T10:00:00+08:00")
    reply = await track.handle(turn(order_id.lower(), "track_transaction"), ctx)  # id from the text
    text = reply[0].text
    assert "当前状态：已确认" in text and "已提交" in text
    assert "已到账" in text and "2026年11月27日" in text

    await sandbox.set_clock("2026-11-30T10:00:00+08:00")
    en = make_ctx("en", customer_id=c["customer_id"])
    reply = await track.handle(turn(f"where is {order_id}", "track_transaction", "en"), en)
    assert "Status: settled" in reply[0].text and "complete" in reply[0].text


async def test_latest_order_and_redemption_words(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer(
        risk_tolerance="C3",
        holdings=[{"product": "MMF01", "shares": "5000", "acquired_at": "2026-01-05"}],
    )
    await place_order(sandbox, backend, c, "subscribe", "BOND01", amount="500")
    redeem_id = await place_order(sandbox, backend, c, "redeem", "MMF01", shares="1000")
    ctx = make_ctx("en", customer_id=c["customer_id"])
    reply = await track.handle(turn("where is my latest order", "track_transaction", "en"), ctx)
    text = reply[0].text
    assert "latest" in text and redeem_id in text
    assert "Redemption of Steady Money Market A, 1,000.00 shares" in text
    assert "Status: accepted" in text and "Next: processed" in text


async def test_failed_order_says_why_and_what_next(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer(risk_tolerance="C3")
    order_id = await place_order(sandbox, backend, c, "subscribe", "MIX01", amount="2000")
    await sandbox.fail_order(order_id, "银行扣款失败")
    reply = await track.handle(
        turn(order_id, "track_transaction", order_id=order_id),
        make_ctx("zh", customer_id=c["customer_id"]),
    )
    text = reply[0].text
    assert "交易失败" in text and "银行扣款失败" in text and "下一步" in text
    assert f'/file_complaint{{"order_id":"{order_id}"}}' in payloads(reply)
    assert '/buy_product{"product":"MIX01"}' in payloads(reply)


async def test_another_customers_order_is_not_found(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    await sandbox.set_clock(WED_10)
    owner = await sandbox.create_customer()
    other = await sandbox.create_customer()
    order_id = await place_order(sandbox, backend, owner, "subscribe", "MMF01", amount="100")
    for lang in ("zh", "en"):
        ctx = make_ctx(lang, customer_id=other["customer_id"])
        theirs = await track.handle(
            turn(order_id, "track_transaction", lang, order_id=order_id), ctx
        )
        unknown = await track.handle(
            turn("D20261125999999", "track_transaction", lang, order_id="D20261125999999"), ctx
        )
        assert theirs[0].text == unknown[0].text.replace("D20261125999999", order_id)
        assert "¥" not in theirs[0].text and "MMF01" not in theirs[0].text
        low = theirs[0].text.lower()
        assert "forbidden" not in low and "权限" not in low
        assert ("couldn't find" in low) if lang == "en" else ("没有找到" in low)


async def test_no_orders_and_not_linked(sandbox: SandboxServer, make_ctx: CtxFactory) -> None:
    c = await sandbox.create_customer()
    reply = await track.handle(
        turn("我的订单", "track_transaction"), make_ctx("zh", customer_id=c["customer_id"])
    )
    assert "还没有订单" in reply[0].text
    reply = await track.handle(turn("my order", "track_transaction", "en"), make_ctx("en"))
    assert "link" in reply[0].text
