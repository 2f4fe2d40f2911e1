"""Thousands of hostile messages from several senders over REST: no 5xx, no traceback, no leaks."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.security.masking import mask_phone
from tests.conftest import BotFactory
from tests.e2e.harness import ErrorLog, Stack, finbot_stack, is_apology, looks_broken
from tests.reliability.strategies import hostile_message, raw_body

pytestmark = pytest.mark.timeout(600)

T = TypeVar("T")


@dataclass
class Person:
    """A linked customer and everything about them no one else may ever see."""

    sender: str
    name: str
    customer_id: str
    phone: str
    order_id: str
    amount_shown: str

    def secrets(self) -> list[str]:
        return [self.name, self.customer_id, self.phone, mask_phone(self.phone), self.order_id, self.amount_shown]


@dataclass
class FuzzRun:
    """Sends through the REST channel and checks every answer; counts what it saw."""

    stack: Stack
    loop: asyncio.AbstractEventLoop
    people: list[Person]
    anonymous: list[str]
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # answered with the engine's apology
    errors: ErrorLog = field(default_factory=ErrorLog)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """From hypothesis's worker thread: run on the test's loop, where bot and sandbox live."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    @property
    def senders(self) -> list[str]:
        return [p.sender for p in self.people] + self.anonymous

    async def post(self, body: bytes) -> tuple[int, str, float]:
        started = time.monotonic()
        async with self.stack.http.post(
            f"{self.stack.bot.url}/webhooks/rest/webhook",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as resp:
            text = await resp.text()
        elapsed = time.monotonic() - started
        self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        return resp.status, text, elapsed

    def check_message(self, sender: str, message: str) -> None:
        body = json.dumps({"sender": sender, "message": message}).encode()
        logged = len(self.errors.records)
        status, raw, elapsed = self.run(self.post(body))
        self.sent += 1
        self.latencies.append(elapsed)
        assert status == 200, (status, raw[:300], message[:100])
        replies = json.loads(raw)
        assert isinstance(replies, list)
        text = "\n".join(str(r.get("text") or "") for r in replies)
        text += "\n" + "\n".join(
            f"{b.get('title')} {b.get('payload')}" for r in replies for b in r.get("buttons") or []
        )
        # Hostile input must get a real answer, not a crash turned into an apology.
        if is_apology(text) or len(self.errors.records) > logged:
            self.failures.append(f"{message[:80]!r} → {'; '.join(self.errors.records[logged:])}")
        broken = looks_broken(text)
        assert broken is None or broken in message, (broken, text[:500], message[:100])
        for other in self.people:
            if other.sender == sender:
                continue
            for secret in other.secrets():
                # An id the sender typed may be echoed back ("no order D… in your account").
                assert secret not in text or secret.lower() in message.lower(), (f"{sender} saw {other.sender}'s {secret!r}", text[:500], message[:100])

    def check_body(self, body: bytes) -> None:
        status, raw, _elapsed = self.run(self.post(body))
        self.sent += 1
        assert status < 500, (status, raw[:300], body[:100])
        assert "Traceback" not in raw
        if status >= 400:
            assert isinstance(json.loads(raw).get("error"), str), raw[:300]


async def _person(stack: Stack, sender: str, name: str, amount: int) -> Person:
    chat = stack.chat(sender)
    cust = await stack.linked(chat, name=name, cash="90000.00")
    await chat.say(f'/buy_product{{"product": "MMF01", "amount": "{amount}"}}')
    await chat.say("/confirm")
    done = await chat.say(await stack.code(cust))
    (order_id,) = done.order_ids()
    return Person(sender, name, cust["customer_id"], cust["phone"], order_id, f"{amount:,}.00")


@pytest.fixture
async def fuzz(bot_server: BotFactory, tmp_path: Path) -> AsyncIterator[FuzzRun]:
    async with finbot_stack(bot_server, tmp_path) as stack:
        people = [
            await _person(stack, "fuzz-linked-a", "欧阳娜娜", 1234),
            await _person(stack, "fuzz-linked-b", "司马相如", 4321),
        ]
        run = FuzzRun(stack, asyncio.get_running_loop(), people, ["fuzz-anon-1", "fuzz-anon-2", "fuzz-anon-3"])
        logging.getLogger("bot").addHandler(run.errors)
        try:
            yield run
        finally:
            logging.getLogger("bot").removeHandler(run.errors)


def _hypothesis(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same inputs every run: a bounded, repeatable test
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def _fuzz_messages(run: FuzzRun, examples: int) -> None:
    order_ids = [p.order_id for p in run.people]

    @_hypothesis(examples)
    @given(sender=st.sampled_from(run.senders), message=hostile_message(order_ids))
    def one(sender: str, message: str) -> None:
        run.check_message(sender, message)

    one()


async def test_fuzz_5000_hostile_messages_degraded_nlu(fuzz: FuzzRun) -> None:
    started = time.monotonic()
    await asyncio.to_thread(_fuzz_messages, fuzz, 5000)
    fuzz_s = time.monotonic() - started
    assert fuzz.sent >= 5000
    assert not fuzz.failures, "\n".join(sorted(set(fuzz.failures))[:30])

    @_hypothesis(300)
    @given(body=raw_body())
    def bodies(body: bytes) -> None:
        fuzz.check_body(body)

    await asyncio.to_thread(bodies)
    lat = sorted(fuzz.latencies)
    print(
        f"fuzz: {fuzz.sent} requests in {fuzz_s:.0f}s, statuses {fuzz.statuses}, "
        f"p50 {statistics.median(lat) * 1000:.0f} ms, p95 {lat[int(len(lat) * 0.95)] * 1000:.0f} ms"
    )
    # Afterwards both customers still have a working chat showing only their own order.
    for person in fuzz.people:
        chat = fuzz.stack.chat(person.sender)
        await chat.say("/cancel")
        out = await chat.say(f'/track_transaction{{"order_id": "{person.order_id}"}}')
        assert person.order_id in out.text, out.text


@pytest.mark.nlu
async def test_fuzz_subset_through_the_real_nlu(bot_server: BotFactory, tmp_path: Path, nlu_url: str) -> None:
    async with finbot_stack(bot_server, tmp_path, nlu_url=nlu_url) as stack:
        people = [
            await _person(stack, "nlu-fuzz-a", "欧阳娜娜", 1234),
            await _person(stack, "nlu-fuzz-b", "司马相如", 4321),
        ]
        run = FuzzRun(stack, asyncio.get_running_loop(), people, ["nlu-fuzz-anon"])
        logging.getLogger("bot").addHandler(run.errors)
        try:
            await asyncio.to_thread(_fuzz_messages, run, 400)
        finally:
            logging.getLogger("bot").removeHandler(run.errors)
        assert run.sent >= 400
        assert not run.failures, "\n".join(sorted(set(run.failures))[:30])
        lat = sorted(run.latencies)
        print(f"nlu fuzz: {run.sent} messages, p50 {statistics.median(lat) * 1000:.0f} ms")
