"""Step-up: wrong codes and lockout, expired codes, recent verification for viewing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.dialogue.conftest import TRADING_MORNING, World, joined, payloads

pytestmark = pytest.mark.timeout(60)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def _audit_kinds(world: World) -> list[str]:
    from sqlalchemy import text

    async with world.db.begin() as s:
        rows = await s.execute(text("SELECT kind FROM audit_log ORDER BY seq"))
        return [r[0] for r in rows]


async def test_five_wrong_codes_lock_offer_a_human_and_place_no_order(world: World) -> None:
    chat, cust = await world.linked_chat("locked-1")
    await chat.say('/buy_product{"product": "BOND01", "amount": "1000"}')
    await chat.say("/confirm")
    good = await world.code(cust)
    bad = _wrong(good)
    for left in (4, 3, 2, 1):
        out = await chat.say(bad)
        assert f"还可以再试 {left} 次" in joined(out)
        assert out[0].delete_message_id is not None
    out = await chat.say(bad)
    text = joined(out)
    assert "锁定" in text and "未执行" in text
    assert any("human_handoff" in p and "lockout" in p for p in payloads(out))
    # The right code after the lockout does nothing; new codes are refused while locked.
    assert "锁定" in joined(await chat.say(good))
    await chat.say('/buy_product{"product": "BOND01", "amount": "1000"}')
    assert "锁定" in joined(await chat.say("/confirm"))
    assert await world.sandbox.orders(cust["customer_id"]) == []
    kinds = await _audit_kinds(world)
    assert "stepup_locked" in kinds and kinds.count("challenge_failed") >= 5


async def test_lockout_button_opens_a_ticket_with_reason_lockout(world: World) -> None:
    chat, cust = await world.linked_chat("locked-2")
    await chat.say('/buy_product{"product": "BOND01", "amount": "1000"}')
    await chat.say("/confirm")
    bad = _wrong(await world.code(cust))
    for _ in range(5):
        out = await chat.say(bad)
    button = next(p for p in payloads(out) if "lockout" in p)
    reply = joined(await chat.say(button))
    assert reply  # the customer is told about the queue
    from sqlalchemy import text

    async with world.db.begin() as s:
        reasons = [r[0] for r in await s.execute(text("SELECT reason FROM handoff_tickets"))]
    assert reasons == ["lockout"]


async def test_expired_code_is_refused_and_a_new_one_offered(world: World) -> None:
    chat, cust = await world.linked_chat("expired-1")
    await chat.say('/buy_product{"product": "MMF01", "amount": "500"}')
    await chat.say("/confirm")
    old = await world.code(cust)
    later = datetime.fromisoformat(TRADING_MORNING) + timedelta(minutes=6)
    await world.sandbox.set_clock(later.isoformat())
    out = await chat.say(old)
    assert "过期" in joined(out) and "/resend_code" in payloads(out)
    assert await world.sandbox.orders(cust["customer_id"]) == []
    sms_before = await world.sms_count(cust)
    out = await chat.say("/resend_code")
    assert await world.sms_count(cust) == sms_before + 1
    fresh = await world.code(cust)
    done = joined(await chat.say(fresh))
    assert "订单号" in done
    assert len(await world.sandbox.orders(cust["customer_id"])) == 1


async def test_viewing_needs_a_verification_within_the_window(world: World) -> None:
    chat, cust = await world.linked_chat("viewer-1", cash="12345.67")
    out = await chat.say("/check_balance")  # linking counts as a verification
    assert "¥12,345.67" in joined(out) and "****" in joined(out)
    later = datetime.fromisoformat(TRADING_MORNING) + timedelta(minutes=world.settings.stepup_view_minutes + 1)
    await world.sandbox.set_clock(later.isoformat())
    out = await chat.say("/check_balance")
    text = joined(out)
    assert "验证" in text and "¥12,345.67" not in text
    assert "查看账户信息" in (await world.sandbox.sms(cust["phone"]))[-1]["text"]
    out = await chat.say(await world.code(cust))
    assert "¥12,345.67" in joined(out)  # verified: the balance follows at once


async def test_a_six_digit_amount_is_an_amount_when_no_code_is_pending(world: World) -> None:
    chat, cust = await world.linked_chat("bigbuyer-1", cash="200000.00")
    await chat.say('/buy_product{"product": "MMF01"}')
    text = joined(await chat.say("100000"))
    assert "¥100,000.00" in text and "申购确认" in text


async def test_a_code_verified_whose_answer_was_lost_still_completes_once(world: World) -> None:
    """The platform verified the code but the bot never heard (timeout): the customer sends
    the same code again and the purchase completes exactly once."""
    chat, cust = await world.linked_chat("lost-answer-1")
    await chat.say('/buy_product{"product": "BOND01", "amount": "1200"}')
    await chat.say("/confirm")
    code = await world.code(cust)
    from bot.store.conversations import get_or_create

    async with world.db.begin() as s:
        conv = await get_or_create(s, "rest", "lost-answer-1")
    await world.backend.verify_challenge(conv.state["challenge"]["id"], code)  # the lost call
    done = joined(await chat.say(code))
    assert "订单号" in done, done
    assert len(await world.sandbox.orders(cust["customer_id"])) == 1
    wrong = await chat.say(f"{(int(code) + 1) % 1_000_000:06d}")  # nothing pending any more
    assert "订单号" in joined(wrong) and len(await world.sandbox.orders(cust["customer_id"])) == 1
