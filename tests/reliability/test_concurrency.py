"""200 simultaneous confirm taps and 200 simultaneous code submissions place exactly one order."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from tests.conftest import BotFactory
from tests.e2e.harness import (
    ErrorLog,
    Replies,
    RestChat,
    Stack,
    finbot_stack,
    is_apology,
    looks_broken,
)

pytestmark = pytest.mark.timeout(240)

N = 200
BUY = '/buy_product{"product": "BOND01", "amount": "5000"}'


async def _storm(chats: list[RestChat], message: str) -> list[Replies]:
    """The same message POSTed N times at once, spread over the given chats (bot instances)."""
    return list(await asyncio.gather(*(chats[i % len(chats)].say(message, timeout=120) for i in range(N))))


async def _one_order_under_storm(s: Stack, chats: list[RestChat]) -> dict[str, float]:
    errors = ErrorLog()
    logging.getLogger("bot").addHandler(errors)
    try:
        return await _storms(s, chats, errors)
    finally:
        logging.getLogger("bot").removeHandler(errors)


async def _storms(s: Stack, chats: list[RestChat], errors: ErrorLog) -> dict[str, float]:
    first = chats[0]
    cust = await s.linked(first, cash="50000.00")
    summary = await first.say(BUY)
    assert "/confirm" in summary.payloads, summary.text
    sms_before = await s.sms_count(cust)

    started = time.monotonic()
    taps = await _storm(chats, "/confirm")
    confirm_s = time.monotonic() - started
    for r in taps:
        assert r.status == 200 and r.text, r
        assert looks_broken(r.text) is None and not is_apology(r.text), (r.text, errors.records[:5])
    assert any("验证码" in r.text for r in taps)
    # One code for the whole storm: the customer's phone got exactly one SMS.
    assert await s.sms_count(cust) == sms_before + 1
    assert await s.orders(cust) == []  # nothing is bought before the code

    code = await s.code(cust)
    started = time.monotonic()
    answers = await _storm(chats, code)
    code_s = time.monotonic() - started
    for r in answers:
        assert r.status == 200 and r.text, r
        assert looks_broken(r.text) is None and not is_apology(r.text), (r.text, errors.records[:5])

    orders = await s.orders(cust)
    assert len(orders) == 1, orders
    order_id = orders[0]["order_id"]
    assert orders[0]["amount"] == "5000.00" and orders[0]["side"] == "subscribe"
    # Every answer that names an order names that one; the customer sees it at least once.
    named = {oid for r in answers for oid in r.order_ids()}
    assert named == {order_id}, named
    # And the chat is usable afterwards.
    after = await first.say("/check_balance")
    assert after.text and looks_broken(after.text) is None
    return {"confirm_storm_s": confirm_s, "code_storm_s": code_s}


async def test_storm_on_sqlite_places_one_order(stack: Stack) -> None:
    chat = stack.chat("storm-sqlite")
    timings = await _one_order_under_storm(stack, [chat])
    print(f"sqlite: {timings}")


async def test_storm_on_postgresql_two_bots_share_one_database(
    pg_url: str, bot_server: BotFactory, tmp_path: Path
) -> None:
    # pg_url first: the database outlives the bots that use it (fixtures end in reverse).
    async with finbot_stack(bot_server, tmp_path, database_url=pg_url) as s:
        second = await bot_server(
            database_url=pg_url, backend_url=s.sandbox.base_url, keys_file=s.bot.settings.keys_file
        )
        # One customer, one chat id, reaching two bot processes behind a load balancer.
        chats = [s.chat("storm-pg"), s.chat("storm-pg", bot=second)]
        timings = await _one_order_under_storm(s, chats)
        print(f"postgresql x2: {timings}")
