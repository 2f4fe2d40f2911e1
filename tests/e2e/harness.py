"""End-to-end harness: the real bot over REST, the real sandbox, a customer's chat and SMS codes."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import BotFactory, BotServer, free_port
from tests.support.faults import FaultProxy
from tests.support.sandbox import SandboxServer, running_sandbox

__all__ = [
    "ErrorLog",
    "ORDER_ID",
    "TRADING_MORNING",
    "Replies",
    "RestChat",
    "Stack",
    "finbot_stack",
    "is_apology",
    "looks_broken",
]

TRADING_MORNING = "2026-11-25T10:00:00+08:00"  # a Wednesday inside the trading window
ORDER_ID = re.compile(r"\bD\d{10,20}\b")
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
# What a customer must never see: a Python traceback, a raw exception or a template hole.
_BROKEN = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\b\w+(Error|Exception):|"
    r"\{[a-z_]+\}|engine\.[a-z_]+\.[a-z_]+|None\b|\bnan\b",
)


# The engine's and the channel's apology after an internal failure (engine.error.generic,
# channels.failed): a crash turned into a polite sentence is still a crash.
APOLOGIES = ("something went wrong", "出了点问题")


def is_apology(text: str) -> bool:
    return any(a in text for a in APOLOGIES)


def looks_broken(text: str) -> str | None:
    """The first thing in ``text`` a customer should never see, or None."""
    m = _BROKEN.search(text)
    return m.group(0) if m else None


class ErrorLog(logging.Handler):
    """Keeps the bot's error records (type and place only: the engine never logs the text)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(
            f"{record.getMessage()} {getattr(record, 'error', '')} {getattr(record, 'where', '')}".strip()
        )


class Replies(list[dict[str, Any]]):
    """The bot's answer to one message: a list of Rasa REST messages, plus conveniences."""

    status: int = 200
    elapsed_s: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(str(m.get("text") or "") for m in self)

    @property
    def payloads(self) -> list[str]:
        return [str(b["payload"]) for m in self for b in m.get("buttons") or []]

    @property
    def titles(self) -> list[str]:
        return [str(b["title"]) for m in self for b in m.get("buttons") or []]

    def payload_for(self, title_part: str) -> str:
        """The payload of the first button whose title contains ``title_part``."""
        for m in self:
            for b in m.get("buttons") or []:
                if title_part.lower() in str(b["title"]).lower():
                    return str(b["payload"])
        raise AssertionError(f"no button like {title_part!r} in {self.titles}")

    def order_ids(self) -> list[str]:
        return ORDER_ID.findall(self.text)


@dataclass
class RestChat:
    """One customer typing into the REST channel of a running bot."""

    http: aiohttp.ClientSession
    bot_url: str
    sender: str
    history: list[tuple[str, Replies]] = field(default_factory=list)

    async def say(self, message: str, *, timeout: float = 30.0) -> Replies:
        """Send one message; the reply must be HTTP 200 with a JSON list."""
        started = time.monotonic()
        async with self.http.post(
            f"{self.bot_url}/webhooks/rest/webhook",
            json={"sender": self.sender, "message": message},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            body = await resp.text()
            assert resp.status == 200, f"{resp.status} for {message[:60]!r}: {body[:300]}"
            data = await resp.json(content_type=None)
        replies = Replies(data)
        replies.status = resp.status
        replies.elapsed_s = time.monotonic() - started
        assert isinstance(data, list), body[:300]
        for m in replies:
            assert m.get("recipient_id") == self.sender, m
        self.history.append((message, replies))
        return replies

    async def pending(self) -> Replies:
        """Messages pushed later (notifications, agent replies) for this sender."""
        async with self.http.get(
            f"{self.bot_url}/webhooks/rest/messages", params={"sender": self.sender}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return Replies(await resp.json())

    async def wait_pushed(self, pattern: str, timeout: float = 30.0) -> Replies:
        """Poll pending messages until one matches ``pattern`` (regular expression)."""
        rx = re.compile(pattern)
        seen = Replies()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen.extend(await self.pending())
            if rx.search(seen.text):
                return seen
            await asyncio.sleep(0.2)
        raise AssertionError(f"no pushed message like {pattern!r}; got {seen.text!r}")


@dataclass
class Stack:
    """A running sandbox, bot (and optional fault proxies) wired together."""

    sandbox: SandboxServer
    bot: BotServer
    http: aiohttp.ClientSession
    backend_proxy: FaultProxy | None = None
    nlu_proxy: FaultProxy | None = None
    _senders: int = 0

    def chat(self, sender: str | None = None, bot: BotServer | None = None) -> RestChat:
        if sender is None:
            self._senders += 1
            sender = f"customer-{self._senders}"
        return RestChat(self.http, (bot or self.bot).url, sender)

    async def customer(self, **kw: Any) -> dict[str, Any]:
        """A platform customer (sandbox hook): customer_id, link_code, phone, name."""
        kw.setdefault("name", "张三")
        cust = await self.sandbox.create_customer(**kw)
        return {**cust, "name": kw["name"]}

    async def linked(self, chat: RestChat, *, english: bool = False, **kw: Any) -> dict[str, Any]:
        """Create a customer and link ``chat`` to it by typing the link code."""
        cust = await self.customer(**kw)
        code = cust["link_code"]
        out = await chat.say(f"link {code}" if english else f"绑定 {code}")
        assert ("绑定成功" in out.text) or ("Linked" in out.text), out.text
        return cust

    async def sms_count(self, cust: dict[str, Any]) -> int:
        return len(await self.sandbox.sms(cust["phone"]))

    async def code(self, cust: dict[str, Any], *, after: int | None = None) -> str:
        """The newest one-time code texted to the customer (waiting for SMS number ``after``)."""
        deadline = time.monotonic() + 5
        while True:
            texts = await self.sandbox.sms(cust["phone"])
            if texts and (after is None or len(texts) > after):
                m = CODE.search(texts[-1]["text"])
                assert m, texts[-1]["text"]
                return m.group(1)
            assert time.monotonic() < deadline, f"no new SMS to the customer (had {after})"
            await asyncio.sleep(0.1)

    async def orders(self, cust: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.sandbox.orders(cust["customer_id"])


@asynccontextmanager
async def finbot_stack(
    bot_server: BotFactory,
    tmp_path: Path,
    *,
    nlu_url: str | None = None,
    backend_proxy: bool = False,
    nlu_proxy: bool = False,
    events: bool = True,
    clock: str | None = TRADING_MORNING,
    **settings: Any,
) -> AsyncIterator[Stack]:
    """Sandbox (events posted to the bot) → [fault proxy] → bot on a free port.

    ``nlu_url`` None leaves the NLU unreachable (degraded mode); ``nlu_proxy`` puts a fault
    proxy between the bot and that NLU server. Extra keyword arguments become bot Settings.
    """
    async with AsyncExitStack() as stack:
        port = free_port()
        events_url = f"http://127.0.0.1:{port}/platform/events" if events else None
        sandbox = await stack.enter_async_context(
            running_sandbox(tmp_dir=tmp_path, events_url=events_url)
        )
        if clock:
            await sandbox.set_clock(clock)
        bproxy = nproxy = None
        backend_url = sandbox.base_url
        if backend_proxy:
            bproxy = FaultProxy(sandbox.base_url)
            await bproxy.start()
            stack.push_async_callback(bproxy.close)
            backend_url = bproxy.url
        if nlu_url is not None:
            settings["nlu_url"] = nlu_url
        if nlu_proxy:
            target = nlu_url or f"http://127.0.0.1:{free_port()}"
            nproxy = FaultProxy(target)
            await nproxy.start()
            stack.push_async_callback(nproxy.close)
            settings["nlu_url"] = nproxy.url
        bot = await bot_server(port=port, backend_url=backend_url, **settings)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        )
        yield Stack(sandbox, bot, http, bproxy, nproxy)
