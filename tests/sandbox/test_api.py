"""The sandbox platform over HTTP: lifecycle, step-up, idempotency, bad input (SQLite and PG)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.sandbox.helpers import call, place, verified_challenge
from tests.support.sandbox import SandboxServer, running_sandbox

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def sb(sandbox_db_url: str) -> AsyncIterator[SandboxServer]:
    async with running_sandbox(sandbox_db_url) as server:
        await server.set_clock("2026-11-25T10:00:00+08:00")  # a Wednesday, inside the window
        yield server


async def test_subscription_moves_cash_then_shares_through_its_lifecycle(sb: SandboxServer):
    c = await sb.create_customer(cash="50000.00")
    cid = c["customer_id"]
    status, order = await place(sb, c, side="subscribe", product="BOND01", amount="5000")
    assert status == 201, order
    assert order["order_id"].startswith("D20261125") and len(order["order_id"]) == 15
    assert (order["status"], order["amount"], order["fee"], order["shares"]) == (
        "submitted", "5000.00", "15.00", "4594.47")
    assert order["next_step"] == {"status": "confirmed",
                                  "expected_at": "2026-11-26T09:00:00+08:00"}
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert (pf["cash"], pf["holdings"], pf["in_transit"], pf["total"]) == (
        "45000.00", [], "5000.00", "50000.00")

    await sb.set_clock("2026-11-26T09:30:00+08:00")
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert pf["holdings"][0]["shares"] == "4594.47" and pf["holdings"][0]["acquired_at"] == \
        "2026-11-26"
    await sb.set_clock("2026-11-27T09:00:00+08:00")
    _, got = await call(sb, "GET", f"/api/v1/customers/{cid}/orders/{order['order_id']}")
    assert [(h["status"], h["at"]) for h in got["history"]] == [
        ("submitted", "2026-11-25T10:00:00+08:00"), ("confirmed", "2026-11-26T09:00:00+08:00"),
        ("settled", "2026-11-27T09:00:00+08:00")]
    assert got["next_step"] is None
    statuses = [e["payload"]["status"] for e in await sb.events()
                if e["type"] == "order.status_changed"]
    assert statuses == ["confirmed", "settled"]
    listed = await sb.orders(cid)
    assert listed[0]["order_id"] == order["order_id"] and listed[0]["status"] == "settled"


async def test_redemption_fifo_fee_and_arrival(sb: SandboxServer):
    c = await sb.create_customer(cash="0", holdings=[
        {"product": "MIX01", "shares": "1000", "acquired_at": "2025-01-02"},
        {"product": "MIX01", "shares": "500", "acquired_at": "2026-11-21"}])
    cid = c["customer_id"]
    status, q = await call(sb, "POST", f"/api/v1/customers/{cid}/quotes",
                           {"side": "redeem", "product": "MIX01", "shares": "1200"})
    assert status == 200, q
    # 1000 shares held > 1 year: no fee; 200 held 4 days: 200 × 1.523 × 1.5 % = 4.569 → 4.57
    assert (q["amount"], q["fee"], q["estimated_amount"], q["fee_rule"]) == (
        "1827.60", "4.57", "1823.03", "mixed")
    assert (q["confirm_date"], q["arrival_date"]) == ("2026-11-26", "2026-11-27")
    status, order = await place(sb, c, side="redeem", product="MIX01", shares="1200")
    assert status == 201 and order["status"] == "accepted" and order["amount"] == "1823.03"
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert pf["holdings"][0]["shares"] == "300.00"
    await sb.set_clock("2026-11-26T12:00:00+08:00")
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert pf["cash"] == "0.00" and pf["in_transit"] == "1823.03"
    await sb.set_clock("2026-11-27T09:00:01+08:00")
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert pf["cash"] == "1823.03" and pf["in_transit"] == "0.00"
    _, got = await call(sb, "GET", f"/api/v1/customers/{cid}/orders/{order['order_id']}")
    assert [h["status"] for h in got["history"]] == ["accepted", "processed", "arrived"]


async def test_one_idempotency_key_under_concurrency_makes_one_order(sb: SandboxServer):
    c = await sb.create_customer(cash="10000.00")
    cid = c["customer_id"]
    key = uuid.uuid4().hex
    body = {"side": "subscribe", "product": "MMF01", "amount": "1000"}
    ch = await verified_challenge(sb, c, key, **body)

    async def post() -> tuple[int, str]:
        status, out = await call(sb, "POST", f"/api/v1/customers/{cid}/orders",
                                 {**body, "challenge_id": ch}, {"Idempotency-Key": key})
        return status, out.get("order_id", out)

    results = await asyncio.gather(*(post() for _ in range(100)))
    assert sorted({s for s, _ in results}) == [200, 201]
    assert [s for s, _ in results].count(201) == 1
    assert len({oid for _, oid in results}) == 1
    assert len(await sb.orders(cid)) == 1
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert pf["cash"] == "9000.00"
    # Same key, different order → conflict, never a silent second order.
    status, out = await call(sb, "POST", f"/api/v1/customers/{cid}/orders",
                             {**body, "amount": "2000", "challenge_id": ch},
                             {"Idempotency-Key": key})
    assert (status, out["error"]["code"]) == (409, "idempotency_conflict")


async def test_order_needs_a_verified_challenge_bound_to_it(sb: SandboxServer):
    c = await sb.create_customer()
    cid = c["customer_id"]
    order = {"side": "subscribe", "product": "BOND01", "amount": "1000"}
    key = uuid.uuid4().hex
    status, ch = await call(sb, "POST", f"/api/v1/customers/{cid}/challenges",
                            {"action": "subscribe", "idempotency_key": key, **{
                                k: v for k, v in order.items() if k != "side"}})
    sms = (await sb.sms(c["phone"]))[-1]["text"]
    assert "申购 安心短债 ¥1,000.00" in sms and "5分钟内有效" in sms
    path = f"/api/v1/customers/{cid}/orders"
    status, out = await call(sb, "POST", path, {**order, "challenge_id": ch["challenge_id"]},
                             {"Idempotency-Key": key})
    assert (status, out["error"]["code"]) == (403, "challenge_not_verified")
    status, out = await call(sb, "POST", path, order, {"Idempotency-Key": key})
    assert status == 400  # challenge_id missing
    status, out = await call(sb, "POST", path, {**order, "challenge_id": ch["challenge_id"]})
    assert (status, out["error"]["code"]) == (400, "idempotency_key_required")
    code = await sb.last_code(c["phone"])
    await call(sb, "POST", f"/api/v1/challenges/{ch['challenge_id']}/verify", {"code": code})
    for changed in ({"amount": "1001"}, {"product": "MMF01"}):
        status, out = await call(sb, "POST", path, {**order, **changed,
                                                    "challenge_id": ch["challenge_id"]},
                                 {"Idempotency-Key": key})
        assert (status, out["error"]["code"]) == (403, "challenge_mismatch")
    status, out = await call(sb, "POST", path, {**order, "challenge_id": ch["challenge_id"]},
                             {"Idempotency-Key": uuid.uuid4().hex})
    assert (status, out["error"]["code"]) == (403, "challenge_mismatch")  # bound to its key
    status, first = await call(sb, "POST", path, {**order, "challenge_id": ch["challenge_id"]},
                               {"Idempotency-Key": key})
    assert status == 201
    # The used challenge cannot authorise another order (different key → a new order attempt).
    other = uuid.uuid4().hex
    status, out = await call(sb, "POST", path, {**order, "challenge_id": ch["challenge_id"]},
                             {"Idempotency-Key": other})
    assert (status, out["error"]["code"]) == (403, "challenge_used")


async def test_codes_expire_after_five_minutes(sb: SandboxServer):
    c = await sb.create_customer()
    key = uuid.uuid4().hex
    _, ch = await call(sb, "POST", f"/api/v1/customers/{c['customer_id']}/challenges",
                       {"action": "view", "idempotency_key": key})
    code = await sb.last_code(c["phone"])
    await sb.set_clock("2026-11-25T10:05:00+08:00")
    status, out = await call(sb, "POST", f"/api/v1/challenges/{ch['challenge_id']}/verify",
                             {"code": code})
    assert (status, out["error"]["code"]) == (410, "expired")


async def test_five_wrong_codes_lock_verification_for_thirty_minutes(sb: SandboxServer):
    c = await sb.create_customer()
    cid = c["customer_id"]
    _, ch = await call(sb, "POST", f"/api/v1/customers/{cid}/challenges",
                       {"action": "view", "idempotency_key": uuid.uuid4().hex})
    real = await sb.last_code(c["phone"])
    wrong = "000000" if real != "000000" else "111111"
    lefts = []
    for _ in range(4):
        status, out = await call(sb, "POST", f"/api/v1/challenges/{ch['challenge_id']}/verify",
                                 {"code": wrong})
        assert (status, out["error"]["code"]) == (422, "wrong_code")
        lefts.append(out["error"]["attempts_left"])
    assert lefts == [4, 3, 2, 1]
    status, out = await call(sb, "POST", f"/api/v1/challenges/{ch['challenge_id']}/verify",
                             {"code": wrong})
    assert (status, out["error"]["code"]) == (423, "locked")
    assert out["error"]["locked_until"] == "2026-11-25T10:30:00+08:00"
    status, out = await call(sb, "POST", f"/api/v1/challenges/{ch['challenge_id']}/verify",
                             {"code": real})
    assert status == 423  # even the right code waits out the lock
    status, out = await call(sb, "POST", f"/api/v1/customers/{cid}/challenges",
                             {"action": "view", "idempotency_key": uuid.uuid4().hex})
    assert (status, out["error"]["code"]) == (423, "locked")
    await sb.set_clock("2026-11-25T10:30:00+08:00")
    status, _ = await call(sb, "POST", f"/api/v1/customers/{cid}/challenges",
                           {"action": "view", "idempotency_key": uuid.uuid4().hex})
    assert status == 201


async def test_rules_refuse_with_typed_errors(sb: SandboxServer):
    c = await sb.create_customer(risk_tolerance="C2", cash="1000.00",
                                 holdings=[{"product": "BOND01", "shares": "10"}])
    cid = c["customer_id"]
    q = f"/api/v1/customers/{cid}/quotes"
    status, out = await call(sb, "POST", q, {"side": "subscribe", "product": "MIX01",
                                             "amount": "500"})
    assert status == 200 and out["suitability"] == {"ok": False, "customer_risk": "C2",
                                                    "product_risk": "R3"}
    status, out = await place(sb, c, side="subscribe", product="MIX01", amount="500")
    assert (status, out["error"]["code"], out["error"]["product_risk"]) == (
        422, "risk_mismatch", "R3")
    for body, code in (
        ({"side": "subscribe", "product": "BOND01", "amount": "99"}, "below_minimum"),
        ({"side": "subscribe", "product": "BOND01", "amount": "1000.01"}, "insufficient_cash"),
        ({"side": "subscribe", "product": "BOND01", "amount": "500000.01"}, "above_order_limit"),
        ({"side": "redeem", "product": "BOND01", "shares": "10.01"}, "insufficient_shares"),
        ({"side": "redeem", "product": "MMF01", "all": True}, "insufficient_shares"),
    ):
        status, out = await call(sb, "POST", q, body)
        assert (status, out["error"]["code"]) == (422, code), body
    status, out = await call(sb, "POST", q, {"side": "subscribe", "product": "NOPE",
                                             "amount": "100"})
    assert (status, out["error"]["code"]) == (404, "unknown_product")
    assert len(await sb.orders(cid)) == 0


async def test_order_outside_the_window_is_scheduled_for_the_next_trading_day(sb: SandboxServer):
    await sb.set_clock("2026-11-27T17:00:00+08:00")  # Friday at the close
    c = await sb.create_customer()
    _, clock = await call(sb, "GET", "/api/v1/clock")
    assert (clock["is_trading_time"], clock["trade_date"], clock["next_trading_open"]) == (
        False, "2026-11-30", "2026-11-30T09:00:00+08:00")
    status, order = await place(sb, c, side="subscribe", product="MMF01", amount="100")
    assert status == 201 and order["scheduled"] is True and order["trade_date"] == "2026-11-30"
    assert order["confirm_date"] == "2026-12-01"


async def test_another_customers_order_is_not_found(sb: SandboxServer):
    a = await sb.create_customer()
    b = await sb.create_customer()
    _, order = await place(sb, a, side="subscribe", product="MMF01", amount="100")
    status, out = await call(sb, "GET",
                             f"/api/v1/customers/{b['customer_id']}/orders/{order['order_id']}")
    assert (status, out["error"]["code"]) == (404, "not_found")
    status, _ = await call(sb, "GET", f"/api/v1/customers/{a['customer_id']}/orders/"
                                      f"{order['order_id'].lower()}")
    assert status == 200


async def test_link_codes_are_single_use_and_expire(sb: SandboxServer):
    c = await sb.create_customer()
    code = c["link_code"]
    assert len(code) == 8
    typed = f"{code[:4]}-{code[4:]}".lower()
    status, out = await call(sb, "POST", "/api/v1/link-codes/redeem", {"code": typed})
    assert (status, out) == (200, {"customer_id": c["customer_id"]})
    status, out = await call(sb, "POST", "/api/v1/link-codes/redeem", {"code": code})
    assert (status, out["error"]["code"]) == (409, "link_code_used")
    status, out = await call(sb, "POST", "/api/v1/link-codes/redeem", {"code": "ZZZZ2222"})
    assert (status, out["error"]["code"]) == (404, "link_code_unknown")
    status, fresh = await call(sb, "POST", f"/sandbox/customers/{c['customer_id']}/link-code")
    assert status == 201
    await sb.set_clock("2026-11-28T10:00:01+08:00")  # 72 h + 1 s later
    status, out = await call(sb, "POST", "/api/v1/link-codes/redeem", {"code": fresh["link_code"]})
    assert (status, out["error"]["code"]) == (410, "link_code_expired")


async def test_customer_profile_is_masked(sb: SandboxServer):
    c = await sb.create_customer(phone="13812345678", id_number="110101199001011234",
                                 bank_card="6222021234567890")
    status, out = await call(sb, "GET", f"/api/v1/customers/{c['customer_id']}")
    assert status == 200
    assert (out["phone_masked"], out["id_number_masked"], out["bank_card_masked"]) == (
        "138****5678", "110***********1234", "**** 7890")
    assert "13812345678" not in str(out) and "6222021234567890" not in str(out)


async def test_failed_order_refunds_and_reports_its_reason(sb: SandboxServer):
    c = await sb.create_customer(cash="1000.00")
    _, order = await place(sb, c, side="subscribe", product="BOND01", amount="500")
    failed = await sb.fail_order(order["order_id"], "银行卡扣款失败")
    assert failed["status"] == "failed" and failed["reason"] == "银行卡扣款失败"
    _, pf = await call(sb, "GET", f"/api/v1/customers/{c['customer_id']}/portfolio")
    assert pf["cash"] == "1000.00"
    ev = [e for e in await sb.events() if e["type"] == "order.status_changed"][-1]
    assert ev["payload"]["status"] == "failed" and ev["payload"]["reason"] == "银行卡扣款失败"
    status, out = await call(sb, "POST", f"/sandbox/orders/{order['order_id']}/fail",
                             {"reason": "again"})
    assert (status, out["error"]["code"]) == (409, "order_final")


async def test_orders_filter_and_page(sb: SandboxServer):
    c = await sb.create_customer(cash="100000.00", holdings=[{"product": "MMF01",
                                                               "shares": "1000"}])
    cid = c["customer_id"]
    for amount in ("100", "200", "300"):
        await place(sb, c, side="subscribe", product="BOND01", amount=amount)
    await sb.set_clock("2026-11-26T10:00:00+08:00")
    await place(sb, c, side="redeem", product="MMF01", shares="10")
    base = f"/api/v1/customers/{cid}/orders"
    _, page = await call(sb, "GET", base + "?page_size=2")
    assert (page["total"], len(page["items"]), page["items"][0]["side"]) == (4, 2, "redeem")
    _, page = await call(sb, "GET", base + "?page=2&page_size=2")
    assert [o["amount"] for o in page["items"]] == ["200.00", "100.00"]
    _, page = await call(sb, "GET", base + "?product_type=bond&from=2026-11-25&to=2026-11-25")
    assert page["total"] == 3
    _, page = await call(sb, "GET", base + "?side=redeem&status=accepted")
    assert page["total"] == 1
    _, page = await call(sb, "GET", base + "?from=2026-11-26")
    assert page["total"] == 1
    status, out = await call(sb, "GET", base + "?status=lost")
    assert (status, out["error"]["code"]) == (400, "validation_error")


async def test_complaints_get_a_ticket_sla_and_answer(sb: SandboxServer):
    c = await sb.create_customer()
    cid = c["customer_id"]
    status, cp = await call(sb, "POST", f"/api/v1/customers/{cid}/complaints",
                            {"category": "system_fault", "description": "App 闪退"})
    assert status == 201 and cp["complaint_id"].startswith("C20261125")
    assert (cp["first_response_due"], cp["result_due"], cp["final_due"]) == (
        "2026-11-26T10:00:00+08:00", "2026-11-27T10:00:00+08:00", "2026-12-04T10:00:00+08:00")
    await asyncio.sleep(0.8)  # the advancer acknowledges it
    _, got = await call(sb, "GET", f"/api/v1/customers/{cid}/complaints/{cp['complaint_id']}")
    assert got["status"] == "acknowledged"
    await sb.answer_complaint(cp["complaint_id"], "已修复，感谢反馈")
    _, listed = await call(sb, "GET", f"/api/v1/customers/{cid}/complaints")
    assert listed["total"] == 1 and listed["items"][0]["result"] == "已修复，感谢反馈"
    types = [(e["type"], e["payload"].get("status")) for e in await sb.events()]
    assert types == [("complaint.updated", "acknowledged"), ("complaint.updated", "answered")]
    status, out = await call(sb, "POST", f"/api/v1/customers/{cid}/complaints",
                             {"category": "system_fault", "description": "x",
                              "order_id": "D20991231999999"})
    assert (status, out["error"]["code"]) == (404, "not_found")


async def test_daily_limit_counts_todays_orders_but_not_failed_ones(sandbox_db_url: str):
    from sandbox.settings import DEFAULT_CATALOG

    catalog = [p.model_copy(update={"daily_limit": Decimal("1000")}) if p.code == "BOND01" else p
               for p in DEFAULT_CATALOG]
    async with running_sandbox(sandbox_db_url, catalog=catalog) as sb:
        await sb.set_clock("2026-11-25T10:00:00+08:00")
        c = await sb.create_customer(cash="10000.00")
        q = f"/api/v1/customers/{c['customer_id']}/quotes"
        _, first = await place(sb, c, side="subscribe", product="BOND01", amount="600")
        status, out = await call(sb, "POST", q, {"side": "subscribe", "product": "BOND01",
                                                 "amount": "500"})
        assert (status, out["error"]["code"], out["error"]["remaining"]) == (
            422, "above_daily_limit", "400.00")
        await sb.fail_order(first["order_id"], "test")
        status, _ = await call(sb, "POST", q, {"side": "subscribe", "product": "BOND01",
                                               "amount": "1000"})
        assert status == 200
        await sb.set_clock("2026-11-26T10:00:00+08:00")  # a new trade date, a new allowance
        status, _ = await place(sb, c, side="subscribe", product="BOND01", amount="1000")
        assert status == 201


async def test_failures_give_shares_back(sb: SandboxServer):
    c = await sb.create_customer(cash="1000.00", holdings=[{"product": "MIX01", "shares": "50"}])
    cid = c["customer_id"]
    _, red = await place(sb, c, side="redeem", product="MIX01", all=True)
    _, buy = await place(sb, c, side="subscribe", product="MMF01", amount="100")
    await sb.set_clock("2026-11-26T10:00:00+08:00")  # buy confirmed (shares credited)
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert [h["product"] for h in pf["holdings"]] == ["MMF01"]
    await sb.fail_order(red["order_id"], "基金暂停赎回")
    await sb.fail_order(buy["order_id"], "份额登记失败")
    _, pf = await call(sb, "GET", f"/api/v1/customers/{cid}/portfolio")
    assert [(h["product"], h["shares"]) for h in pf["holdings"]] == [("MIX01", "50.00")]
    assert pf["cash"] == "1000.00" and pf["in_transit"] == "0.00"


async def test_clock_can_be_frozen_and_released(sb: SandboxServer):
    _, clock = await call(sb, "GET", "/sandbox/clock")
    assert clock == {"now": "2026-11-25T10:00:00+08:00", "frozen": True}
    out = await sb.set_clock(None)
    assert out["frozen"] is False and not out["now"].startswith("2026-11-25T10:00:00")
