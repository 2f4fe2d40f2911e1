"""Multi-step tasks: redeem estimates, cancel and corrections, questions mid-task, restarts."""

from __future__ import annotations

import pytest

from tests.dialogue.conftest import ORDER_ID, World, joined, payloads

pytestmark = pytest.mark.timeout(60)

OLD_BOND = [{"product": "BOND01", "shares": "10000", "acquired_at": "2026-06-01"}]


async def _nav(world: World, code: str) -> str:
    async with world.sandbox.http.get(f"{world.sandbox.base_url}/sandbox/products") as r:
        return next(p["nav"] for p in await r.json() if p["code"] == code)


async def test_redeem_by_shares_shows_shares_times_nav_minus_fee_and_arrival(world: World) -> None:
    chat, cust = await world.linked_chat("redeemer-1", holdings=OLD_BOND)
    out = await chat.say("/redeem_product")
    assert "10,000.00" in joined(out)  # the only holding is chosen; its shares are shown
    out = await chat.say("1000份")
    text = joined(out)
    nav = await _nav(world, "BOND01")
    from decimal import ROUND_HALF_UP, Decimal

    gross = (Decimal("1000") * Decimal(nav)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    fee = (gross * Decimal("0.005")).quantize(Decimal("0.01"), ROUND_HALF_UP)  # held 177 days: the 0.5 % tier
    assert f"1,000.00 份 × 单位净值 {nav} = ¥{gross:,.2f}" in text, text
    assert f"¥{fee:,.2f}" in text and "7 天至 1 年" in text
    assert f"¥{gross - fee:,.2f}" in text
    assert "预计到账日：2026年11月26日" in text  # BOND01 is T+1
    await chat.say("/confirm")
    assert "赎回" in (await world.sandbox.sms(cust["phone"]))[-1]["text"]
    done = joined(await chat.say(await world.code(cust)))
    assert ORDER_ID.search(done) and "到账" in done
    orders = await world.sandbox.orders(cust["customer_id"])
    assert [(o["side"], o["shares"]) for o in orders] == [("redeem", "1000.0000")] or [
        (o["side"], o["shares"]) for o in orders
    ] == [("redeem", "1000.00")]


async def test_redeem_all_and_by_amount_are_understood_as_bare_values(world: World) -> None:
    chat, _cust = await world.linked_chat("redeemer-2", holdings=OLD_BOND)
    await chat.say('/redeem_product{"product": "BOND01"}')
    text = joined(await chat.say("全部"))
    assert "10,000.00 份 × 单位净值" in text
    text = joined(await chat.say("改成500元"))
    assert "已为您更新" in text and "赎回份额" in text
    assert "10,000.00 份 ×" not in text


async def test_cancel_at_any_step_places_nothing_and_voids_the_code(world: World) -> None:
    chat, cust = await world.linked_chat("canceller-1")
    await chat.say('/buy_product{"product": "BOND01"}')
    assert "没有下单" in joined(await chat.say("算了"))
    await chat.say('/buy_product{"product": "BOND01", "amount": "3000"}')
    await chat.say("/confirm")
    code = await world.code(cust)
    assert "没有下单" in joined(await chat.say("取消"))
    out = await chat.say(code)  # the code of the cancelled purchase authorises nothing
    assert "失效" in joined(out)
    assert await world.sandbox.orders(cust["customer_id"]) == []


async def test_correction_after_the_code_requotes_and_the_old_code_is_refused(world: World) -> None:
    chat, cust = await world.linked_chat("corrector-1")
    await chat.say('/buy_product{"product": "BOND01", "amount": "5000"}')
    await chat.say("/confirm")
    code_5000 = await world.code(cust)
    out = await chat.say("改成两千")
    text = joined(out)
    assert "¥2,000.00" in text and "作废" in text and "/confirm" in payloads(out)
    assert "失效" in joined(await chat.say(code_5000))  # before re-confirming: void
    await chat.say("/confirm")
    sms = (await world.sandbox.sms(cust["phone"]))[-1]["text"]
    assert "¥2,000.00" in sms
    if code_5000 != await world.code(cust):
        wrong = joined(await chat.say(code_5000))  # a code for another amount is refused
        assert "不正确" in wrong
    done = joined(await chat.say(await world.code(cust)))
    assert ORDER_ID.search(done)
    orders = await world.sandbox.orders(cust["customer_id"])
    assert [o["amount"] for o in orders] == ["2000.00"]


async def test_switching_product_mid_task_keeps_the_amount(world: World) -> None:
    chat, _cust = await world.linked_chat("switcher-1")
    await chat.say('/buy_product{"product": "BOND01", "amount": "1000"}')
    text = joined(await chat.say("换成混合"))
    assert "均衡混合" in text and "¥1,000.00" in text


async def test_question_mid_purchase_is_answered_then_the_task_resumes(world: World) -> None:
    chat, cust = await world.linked_chat("asker-1")
    await chat.say('/buy_product{"product": "BOND01"}')
    out = await chat.say("/list_products")  # a question in the middle
    assert "安心短债" in joined(out)
    assert "/resume" in payloads(out) and "我们刚才在办理" in joined(out)
    assert "安心短债" in out[-1].text  # the reminder says where we were
    out = await chat.say("/resume")
    assert "多少元" in joined(out)
    out = await chat.say("/check_balance")  # balance mid-task: recently verified by the link
    assert "可用现金" in joined(out) and "/resume" in payloads(out)
    text = joined(await chat.say("3000"))
    assert "¥3,000.00" in text and "申购确认" in text


async def test_a_new_engine_over_the_same_database_resumes_the_purchase(any_world: World) -> None:
    w = any_world
    chat, cust = await w.linked_chat("restart-1")
    await chat.say('/buy_product{"product": "MMF01"}')
    await chat.say("800")
    await chat.say("/confirm")
    code = await w.code(cust)
    restarted = w.chat("restart-1", engine=w.engine())  # the bot process restarted
    done = joined(await restarted.say(code))
    assert ORDER_ID.search(done), done
    assert len(await w.sandbox.orders(cust["customer_id"])) == 1


async def test_platform_down_mid_task_says_try_later_and_the_task_resumes(world: World) -> None:
    from backend_client.client import PlatformClient

    chat, cust = await world.linked_chat("outage-1")
    await chat.say('/buy_product{"product": "BOND01"}')
    broken = world.engine()
    from tests.support.sandbox import free_port

    broken.backend = PlatformClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=0)
    down = world.chat("outage-1", engine=broken)
    import time

    started = time.monotonic()
    out = await down.say("5000")
    assert time.monotonic() - started < 2.5
    assert "暂时无法响应" in joined(out) and "/resume" in payloads(out)
    await broken.backend.close()
    out = await chat.say("/resume")  # the platform is back
    assert "¥5,000.00" in joined(out) and "/confirm" in payloads(out)
    assert await world.sandbox.orders(cust["customer_id"]) == []


async def test_redeem_half_is_half_of_the_holding_in_shares(world: World) -> None:
    chat, _cust = await world.linked_chat("halver-1", holdings=[{"product": "MIX01", "shares": "1001"}])
    await chat.say("/redeem_product")
    text = joined(await chat.say("一半"))
    assert "500.50 份 × 单位净值" in text, text


async def test_redeeming_a_fund_not_held_lets_the_customer_choose_never_switches(world: World) -> None:
    chat, _cust = await world.linked_chat("redeemer-3", holdings=OLD_BOND)  # holds only BOND01
    out = await chat.say('/redeem_product{"product": "MIX01"}')
    text = joined(out)
    assert "没有持有" in text, text
    assert any("BOND01" in p for p in payloads(out)), payloads(out)  # a choice, not a guess
    assert "赎回多少" not in text and "赎回份额" not in text, text


async def test_redeem_half_inside_a_longer_sentence(world: World) -> None:
    chat, _cust = await world.linked_chat("halver-2", holdings=[{"product": "MIX01", "shares": "1001"}])
    await chat.say('/redeem_product{"product": "MIX01"}')
    text = joined(await chat.say("那就先赎回一半吧"))
    assert "500.50 份 × 单位净值" in text, text


def test_half_words_inside_a_request_but_not_half_a_year() -> None:
    from bot.dialogue.values import parse_half

    assert parse_half("sell half of my bond fund", loose=True)
    assert parse_half("赎回安心短债的一半", loose=True)
    assert not parse_half("赎回安心短债的一半")  # as a whole answer only with loose=False
    assert not parse_half("最近半年的记录", loose=True)
    assert not parse_half("show me the last half year", loose=True)
