"""kill -9 of the bot process in the middle of a purchase: after a restart it goes on, one order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import PLATFORM_SECRET, free_port
from tests.e2e.harness import TRADING_MORNING, RestChat, Stack, looks_broken
from tests.support.db import migrate
from tests.support.faults import FaultProxy
from tests.support.sandbox import running_sandbox

pytestmark = pytest.mark.timeout(180)


class BotProcess:
    """``python -m bot serve`` as a child process on a SQLite file."""

    def __init__(self, tmp: Path, backend_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FINBOT_")},
            "FINBOT_PORT": str(self.port),
            "FINBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bot.sqlite'}",
            "FINBOT_BACKEND_URL": backend_url,
            "FINBOT_NLU_URL": f"http://127.0.0.1:{free_port()}",  # degraded: buttons only
            "FINBOT_KEYS_FILE": str(tmp / "keys.json"),
            "FINBOT_PLATFORM_SECRET": PLATFORM_SECRET,
            "FINBOT_PUBLIC_URL": self.url,
            "FINBOT_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        log = open(self.tmp / f"bot-{self.starts}.log", "wb")  # noqa: SIM115 — the child owns it
        self.proc = subprocess.Popen(  # noqa: S603 — our own interpreter and module
            [sys.executable, "-m", "bot", "serve"], cwd=self.tmp, env=self.env,
            stdout=log, stderr=subprocess.STDOUT,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert self.proc.poll() is None, (self.tmp / f"bot-{self.starts}.log").read_text()
                try:
                    async with http.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the bot did not start within 30 s")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@asynccontextmanager
async def _world(tmp: Path) -> AsyncIterator[tuple[Stack, BotProcess, FaultProxy]]:
    await migrate(f"sqlite+aiosqlite:///{tmp / 'bot.sqlite'}")
    async with running_sandbox(tmp_dir=tmp) as sandbox:
        await sandbox.set_clock(TRADING_MORNING)
        proxy = FaultProxy(sandbox.base_url)
        await proxy.start()
        bot = BotProcess(tmp, proxy.url)
        try:
            await bot.start()
            async with aiohttp.ClientSession() as http:
                stack = Stack(sandbox=sandbox, bot=None, http=http)  # type: ignore[arg-type]
                yield stack, bot, proxy
        finally:
            bot.stop()
            await proxy.close()


async def _to_code(stack: Stack, bot: BotProcess, sender: str) -> tuple[RestChat, dict[str, str]]:
    chat = RestChat(stack.http, bot.url, sender)
    cust = await stack.linked(chat, cash="20000.00")
    summary = await chat.say('/buy_product{"product": "MIX01", "amount": "1500"}')
    assert "/confirm" in summary.payloads, summary.text
    sent = await chat.say("/confirm")
    assert "验证码" in sent.text, sent.text
    return chat, cust


async def test_kill9_while_the_code_is_outstanding(tmp_path: Path) -> None:
    async with _world(tmp_path) as (stack, bot, _proxy):
        chat, cust = await _to_code(stack, bot, "crash-code")
        code = await stack.code(cust)
        bot.kill9()
        await bot.start()

        done = await chat.say(code)
        orders = await stack.orders(cust)
        assert len(orders) == 1, (orders, [(m, r.text) for m, r in chat.history])
        assert done.order_ids() == [orders[0]["order_id"]], done.text
        assert orders[0]["amount"] == "1500.00" and orders[0]["product"] == "MIX01"
        again = await chat.say(code)
        assert orders[0]["order_id"] in again.text and len(await stack.orders(cust)) == 1


async def test_kill9_while_the_order_call_is_in_flight(tmp_path: Path) -> None:
    """The platform takes the order while the bot dies waiting for the answer."""
    async with _world(tmp_path) as (stack, bot, proxy):
        chat, cust = await _to_code(stack, bot, "crash-order")
        code = await stack.code(cust)
        await proxy.delay(1.5, only=r"/api/v1/customers/[^/]+/orders$")
        in_flight = asyncio.create_task(chat.say(code))
        await asyncio.sleep(0.8)  # the code is verified; the order request waits in the proxy
        bot.kill9()
        with pytest.raises(aiohttp.ClientError):
            await in_flight
        await asyncio.sleep(1.0)  # the delayed request reaches the platform meanwhile
        assert len(await stack.orders(cust)) == 1
        await proxy.passthrough()
        await bot.start()

        # The customer, who saw no answer, types the code again.
        out = await chat.say(code)
        assert looks_broken(out.text) is None, out.text
        orders = await stack.orders(cust)
        assert len(orders) == 1, orders
        assert out.order_ids() == [orders[0]["order_id"]], [(m, r.text) for m, r in chat.history]
