"""NLUClient against the real Rasa server, a closed port and a slow fake server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.nlu_client import NLUClient, understanding_from_rasa
from tests.conftest import free_port

# --------------------------------------------------------------------------- real server


@pytest.fixture
async def client(nlu_url: str) -> AsyncIterator[NLUClient]:
    async with NLUClient(nlu_url, timeout=5.0) as c:
        yield c


@pytest.mark.nlu
async def test_chinese_purchase_with_normalised_amount_and_product(client: NLUClient) -> None:
    u = await client.parse("我想买一万五的短债")
    assert u.intent == "buy_product" and not u.degraded
    assert u.first("amount") == "15000"
    assert u.first("product") == "BOND01"
    assert u.ranking and u.ranking[0][0] == "buy_product"


@pytest.mark.nlu
async def test_english_redeem_everything(client: NLUClient) -> None:
    u = await client.parse("redeem all of my money market fund")
    assert u.intent == "redeem_product"
    assert u.first("all") == "true"
    assert u.first("product") == "MMF01"


@pytest.mark.nlu
async def test_faq_questions_come_back_with_their_topic(client: NLUClient) -> None:
    assert (await client.parse("赎回一般多久到账")).intent == "faq/arrival_time"
    assert (await client.parse("what are your trading hours")).intent == "faq/trading_hours"


@pytest.mark.nlu
async def test_confusable_pairs(client: NLUClient) -> None:
    track = await client.parse("我那笔单子到哪了")
    history = await client.parse("看看上个月的交易记录")
    assert track.intent == "track_transaction"
    assert history.intent == "transaction_history" and history.first("period") == "上个月"


@pytest.mark.nlu
async def test_ids_and_shares_are_extracted(client: NLUClient) -> None:
    u = await client.parse("帮我查下订单D2611250042")
    assert u.first("order_id") == "D2611250042"
    u = await client.parse("投诉C2611250007有结果了吗")
    assert u.intent == "complaint_status" and u.first("complaint_id") == "C2611250007"
    u = await client.parse("赎回1000份沪深300")
    assert u.intent == "redeem_product"
    assert u.first("shares") == "1000" and u.first("amount") is None
    assert u.first("product") == "IDX300"


@pytest.mark.nlu
async def test_off_topic_money_question_is_not_a_purchase(client: NLUClient) -> None:
    u = await client.parse("比特币明天会涨吗")
    assert u.intent in ("out_of_scope", "nlu_fallback")


# --------------------------------------------------------------------------- conversion


def test_selector_topic_replaces_the_faq_intent() -> None:
    payload: dict[str, Any] = {
        "intent": {"name": "faq", "confidence": 0.93},
        "entities": [],
        "intent_ranking": [
            {"name": "faq", "confidence": 0.93},
            {"name": "help", "confidence": 0.04},
        ],
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/fees"}}},
    }
    u = understanding_from_rasa("手续费多少", payload)
    assert (u.intent, u.confidence) == ("faq/fees", 0.93)
    assert u.ranking == (("faq/fees", 0.93), ("help", 0.04))


def test_partial_model_spans_and_misses_are_repaired() -> None:
    text = "买1.5万稳盈 订单D2611250042"
    payload = {
        "intent": {"name": "buy_product", "confidence": 0.9},
        # the model tagged only "1.5" and missed the product and the order id
        "entities": [{"entity": "amount", "start": 1, "end": 4, "value": "1.5"}],
    }
    u = understanding_from_rasa(text, payload)
    assert u.first("amount") == "15000"
    assert u.first("product") == "MMF01"
    assert u.first("order_id") == "D2611250042"



def test_a_stray_word_tagged_all_does_not_redeem_everything() -> None:
    # the served model tagged "of" as `all` in "redeem 2000 shares of the short-term bond"
    text = "redeem 2000 shares of the short-term bond"
    payload = {
        "intent": {"name": "redeem_product", "confidence": 0.98},
        "entities": [
            {"entity": "shares", "start": 7, "end": 11, "value": "2000"},
            {"entity": "all", "start": 19, "end": 21, "value": "of"},
        ],
    }
    u = understanding_from_rasa(text, payload)
    assert u.first("shares") == "2000"
    assert u.first("all") is None
    whole = understanding_from_rasa(
        "全部赎回", {"intent": {"name": "redeem_product", "confidence": 0.9},
                    "entities": [{"entity": "all", "start": 0, "end": 2, "value": "true"}]},
    )  # fmt: skip
    assert whole.first("all") == "true"

# --------------------------------------------------------------------------- breaker


async def test_closed_port_degrades_quickly_and_opens_the_breaker() -> None:
    async with NLUClient(f"http://127.0.0.1:{free_port()}", timeout=1.0, breaker_failures=3) as c:
        started = time.monotonic()
        for _ in range(3):
            u = await c.parse("买5000元短债")
            assert u.degraded and u.intent == "nlu_unavailable"
            # patterns keep working while the model is away
            assert u.first("amount") == "5000" and u.first("product") == "BOND01"
        assert c.breaker_open
        t0 = time.monotonic()
        for _ in range(20):
            assert (await c.parse("你好")).degraded
        assert time.monotonic() - t0 < 0.2  # open breaker: no network at all
        assert time.monotonic() - started < 5


class FakeRasa:
    """A Rasa look-alike on loopback whose speed the test controls."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.calls = 0

    async def parse(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        await asyncio.sleep(self.delay)
        return web.json_response(
            {"text": body["text"], "intent": {"name": "greet", "confidence": 0.99}, "entities": []}
        )


@pytest.fixture
async def fake_rasa() -> AsyncIterator[tuple[str, FakeRasa]]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/model/parse", fake.parse)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", fake
    finally:
        await runner.cleanup()


async def test_slow_server_times_out_then_recovers(fake_rasa: tuple[str, FakeRasa]) -> None:
    url, fake = fake_rasa
    async with NLUClient(url, timeout=0.3, breaker_failures=2, breaker_reset_s=0.5) as c:
        assert (await c.parse("hi")).intent == "greet"
        fake.delay = 1.0
        t0 = time.monotonic()
        assert (await c.parse("hi")).degraded
        assert (await c.parse("hi")).degraded
        assert time.monotonic() - t0 < 1.5  # each call bounded by the timeout
        assert c.breaker_open
        calls = fake.calls
        assert (await c.parse("hi")).degraded
        assert fake.calls == calls  # open: the slow server is left alone
        fake.delay = 0.0
        await asyncio.sleep(0.6)  # reset time over: one trial call goes through
        u = await c.parse("hi")
        assert u.intent == "greet" and not u.degraded
        assert not c.breaker_open


async def test_failed_trial_reopens_the_breaker(fake_rasa: tuple[str, FakeRasa]) -> None:
    url, fake = fake_rasa
    fake.delay = 1.0
    async with NLUClient(url, timeout=0.2, breaker_failures=1, breaker_reset_s=0.3) as c:
        assert (await c.parse("hi")).degraded
        assert c.breaker_open
        await asyncio.sleep(0.35)
        assert (await c.parse("hi")).degraded  # the trial fails ...
        assert c.breaker_open  # ... and the breaker opens again at once


async def test_empty_text_needs_no_server() -> None:
    async with NLUClient(f"http://127.0.0.1:{free_port()}") as c:
        u = await c.parse("   ")
        assert u.intent == "nlu_fallback" and not u.degraded
