"""backend_client against the real sandbox over HTTP: every operation and its error paths."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from aiohttp import web

from backend_client import (
    AccountNotVerified,
    ChallengeFailed,
    Conflict,
    InsufficientFunds,
    InvalidRequest,
    LinkCodeInvalid,
    NotFound,
    OutsideLimits,
    PlatformClient,
    PlatformUnavailable,
    RiskMismatch,
)
from tests.support.sandbox import SandboxServer, free_port, running_sandbox

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def env(sandbox_db_url: str) -> AsyncIterator[tuple[SandboxServer, PlatformClient]]:
    async with running_sandbox(sandbox_db_url) as sb, PlatformClient(sb.base_url) as client:
        await sb.set_clock("2026-11-25T10:00:00+08:00")
        yield sb, client


async def _order(sb: SandboxServer, client: PlatformClient, c: dict, side: str, product: str,
                 **qty: Decimal | bool) -> object:
    key = uuid.uuid4().hex
    ch = await client.create_challenge(c["customer_id"], side, key, product=product, **qty)
    await client.verify_challenge(ch.challenge_id, await sb.last_code(c["phone"]))
    return await client.place_order(c["customer_id"], key, side, product, ch.challenge_id, **qty)


async def test_catalog_clock_customer_and_portfolio(env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    clock = await client.get_clock()
    assert clock.is_trading_time and clock.trade_date == date(2026, 11, 25)
    assert clock.now.utcoffset() is not None
    products = await client.list_products()
    assert [p.code for p in products] == ["MMF01", "BOND01", "MIX01", "IDX300", "QDII01"]
    bond = await client.get_product("bond01")
    assert (bond.risk, bond.settlement_days, bond.min_amount, bond.name("en")) == (
        "R2", 1, Decimal("100.00"), "Short-term Bond")
    assert [t.rate for t in bond.redemption_fee_tiers] == [Decimal("0.0150"), Decimal("0.0050"),
                                                           Decimal("0")]
    with pytest.raises(NotFound):
        await client.get_product("NOPE")
    c = await sb.create_customer(risk_tolerance="C4", cash="1234.56",
                                 holdings=[{"product": "IDX300", "shares": "100"}])
    linked = await client.redeem_link_code(c["link_code"])
    assert linked.customer_id == c["customer_id"]
    with pytest.raises(LinkCodeInvalid) as exc:
        await client.redeem_link_code(c["link_code"])
    assert exc.value.code == "link_code_used"
    cust = await client.get_customer(c["customer_id"])
    assert cust.risk_tolerance == "C4" and "****" in cust.phone_masked
    pf = await client.get_portfolio(c["customer_id"])
    assert pf.cash == Decimal("1234.56") and pf.holdings[0].market_value == Decimal("234.10")
    assert pf.holdings[0].holding_days == 365 and pf.total == Decimal("1468.66")
    with pytest.raises(NotFound):
        await client.get_customer("cus_nobody")


async def test_buy_flow_and_duplicate_key_returns_original(
        env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    c = await sb.create_customer(cash="10000.00")
    cid = c["customer_id"]
    q = await client.quote(cid, "subscribe", "BOND01", amount=Decimal("5000"))
    assert (q.suitability.ok, q.fee, q.estimated_shares, q.scheduled) == (
        True, Decimal("15.00"), Decimal("4594.47"), False)
    key = uuid.uuid4().hex
    ch = await client.create_challenge(cid, "subscribe", key, product="BOND01",
                                       amount=Decimal("5000"))
    assert ch.expires_at.isoformat() == "2026-11-25T10:05:00+08:00"
    sms = (await sb.sms(c["phone"]))[-1]["text"]
    assert "安心短债 ¥5,000.00" in sms
    with pytest.raises(ChallengeFailed) as exc:
        await client.verify_challenge(ch.challenge_id, "000000" if "000000" not in sms else "1")
    assert exc.value.code == "wrong_code" and exc.value.details["attempts_left"] == 4
    ok = await client.verify_challenge(ch.challenge_id, await sb.last_code(c["phone"]))
    assert ok.verified
    order = await client.place_order(cid, key, "subscribe", "BOND01", ch.challenge_id,
                                     amount=Decimal("5000"))
    again = await client.place_order(cid, key, "subscribe", "BOND01", ch.challenge_id,
                                     amount=Decimal("5000"))
    assert again.order_id == order.order_id and again.created_at == order.created_at
    assert len(await sb.orders(cid)) == 1
    with pytest.raises(Conflict):
        await client.place_order(cid, key, "subscribe", "BOND01", ch.challenge_id,
                                 amount=Decimal("6000"))
    got = await client.get_order(cid, order.order_id)
    assert got.status == "submitted" and got.next_step is not None
    assert got.next_step.status == "confirmed" and not got.is_final
    page = await client.list_orders(cid, product_type="bond", date_from=date(2026, 11, 25))
    assert page.total == 1 and page.items[0].order_id == order.order_id
    with pytest.raises(NotFound):
        await client.get_order(cid, "D20261125999999")


async def test_refusals_are_typed(env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    c = await sb.create_customer(risk_tolerance="C2", cash="500.00",
                                 holdings=[{"product": "BOND01", "shares": "10"}])
    cid = c["customer_id"]
    q = await client.quote(cid, "subscribe", "MIX01", amount=Decimal("100"))
    assert not q.suitability.ok and q.suitability.product_risk == "R3"
    with pytest.raises(RiskMismatch):
        await _order(sb, client, c, "subscribe", "MIX01", amount=Decimal("100"))
    with pytest.raises(OutsideLimits) as limit:
        await client.quote(cid, "subscribe", "BOND01", amount=Decimal("99"))
    assert limit.value.code == "below_minimum" and limit.value.details["minimum"] == "100.00"
    with pytest.raises(InsufficientFunds) as funds:
        await client.quote(cid, "redeem", "BOND01", shares=Decimal("11"))
    assert funds.value.code == "insufficient_shares" and funds.value.details["available"] == \
        "10.00"
    with pytest.raises(InsufficientFunds):
        await client.quote(cid, "subscribe", "BOND01", amount=Decimal("600"))
    with pytest.raises(InvalidRequest):
        await client.quote(cid, "redeem", "BOND01")
    with pytest.raises(ChallengeFailed) as ch:
        await client.place_order(cid, uuid.uuid4().hex, "redeem", "BOND01", "ch_forged",
                                 shares=Decimal("1"))
    assert ch.value.code == "challenge_not_found" and ch.value.status == 403


async def test_unverified_customer_cannot_trade(env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    c = await sb.create_customer(verified=False, holdings=[{"product": "MMF01", "shares": "10"}])
    assert not (await client.get_customer(c["customer_id"])).verified
    for side, qty in (("subscribe", {"amount": Decimal("100")}),
                      ("redeem", {"shares": Decimal("1")})):
        with pytest.raises(AccountNotVerified):
            await client.quote(c["customer_id"], side, "MMF01", **qty)  # type: ignore[arg-type]
        with pytest.raises(AccountNotVerified):
            await _order(sb, client, c, side, "MMF01", **qty)


async def test_outside_window_redeem_all_and_status_tracking(
        env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    await sb.set_clock("2026-11-25T18:30:00+08:00")
    c = await sb.create_customer(holdings=[{"product": "QDII01", "shares": "1000",
                                            "acquired_at": "2026-11-20"}])
    cid = c["customer_id"]
    q = await client.quote(cid, "redeem", "QDII01", all=True)
    assert q.scheduled and q.trade_date == date(2026, 11, 26)
    assert q.fee_rule == "holding_under_7_days" and q.holding_days == 6
    assert (q.amount, q.fee, q.estimated_amount) == (Decimal("1876.00"), Decimal("28.14"),
                                                     Decimal("1847.86"))
    order = await _order(sb, client, c, "redeem", "QDII01", all=True)
    assert order.status == "accepted" and order.arrival_date == date(2026, 11, 30)  # T+2
    await sb.set_clock("2026-11-30T09:00:00+08:00")
    done = await client.get_order(cid, order.order_id)
    assert [h.status for h in done.history] == ["accepted", "processed", "arrived"]
    assert (await client.get_portfolio(cid)).cash == Decimal("51847.86")


async def test_redeem_by_the_whole_value_does_not_fail_on_rounding(
        env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    c = await sb.create_customer(holdings=[{"product": "BOND01", "shares": "1000"}])
    q = await client.quote(c["customer_id"], "redeem", "BOND01", amount=Decimal("1085"))
    assert q.shares == Decimal("1000.00") and q.fee_rule == "holding_7_to_365_days"
    q = await client.quote(c["customer_id"], "redeem", "BOND01", amount=Decimal("100"))
    assert q.shares == Decimal("92.17") and q.amount == Decimal("100.00")  # 92.17 × 1.085
    with pytest.raises(InsufficientFunds):
        await client.quote(c["customer_id"], "redeem", "BOND01", amount=Decimal("1085.01"))


async def test_complaints_roundtrip(env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    c = await sb.create_customer(cash="1000.00")
    order = await _order(sb, client, c, "subscribe", "MMF01", amount=Decimal("10"))
    cp = await client.file_complaint(c["customer_id"], "product_use", "份额不对",
                                     order_id=order.order_id.lower())
    assert cp.order_id == order.order_id and cp.status == "submitted"
    await sb.answer_complaint(cp.complaint_id, "已核实")
    got = await client.get_complaint(c["customer_id"], cp.complaint_id)
    assert got.status == "answered" and got.result == "已核实"
    assert (await client.list_complaints(c["customer_id"])).total == 1
    with pytest.raises(NotFound):
        await client.get_complaint(c["customer_id"], "C20261125999999")
    with pytest.raises(InvalidRequest):
        await client.file_complaint(c["customer_id"], "weather", "x")


async def test_unreachable_platform_is_unavailable():
    async with PlatformClient(f"http://127.0.0.1:{free_port()}", timeout=0.5,
                              retries=1) as client:
        with pytest.raises(PlatformUnavailable):
            await client.get_clock()


async def test_gets_are_retried_but_sms_codes_are_not():
    hits = {"clock": 0, "challenge": 0}

    async def clock(request: web.Request) -> web.Response:
        hits["clock"] += 1
        if hits["clock"] < 3:
            return web.Response(status=503)
        return web.json_response({"now": "2026-11-25T10:00:00+08:00", "today": "2026-11-25",
                                  "trade_date": "2026-11-25", "is_trading_day": True,
                                  "is_trading_time": True, "timezone": "Asia/Shanghai",
                                  "next_trading_open": "2026-11-25T10:00:00+08:00"})

    async def challenge(request: web.Request) -> web.Response:
        hits["challenge"] += 1
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/api/v1/clock", clock)
    app.router.add_post("/api/v1/customers/{cid}/challenges", challenge)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with PlatformClient(f"http://127.0.0.1:{port}", retries=2) as client:
            assert (await client.get_clock()).trade_date == date(2026, 11, 25)
            with pytest.raises(PlatformUnavailable):
                await client.create_challenge("cus_x", "view", uuid.uuid4().hex)
        assert hits == {"clock": 3, "challenge": 1}
    finally:
        await runner.cleanup()


async def test_path_segments_from_chat_cannot_escape(env: tuple[SandboxServer, PlatformClient]):
    sb, client = env
    c = await sb.create_customer()
    with pytest.raises(NotFound):
        await client.get_order(c["customer_id"], "../../products")
    results = await asyncio.gather(*(client.get_clock() for _ in range(20)))
    assert len({r.now for r in results}) == 1  # frozen clock: the same instant for all
