"""Engine tests: the real engine over a real database and the real sandbox platform over HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backend_client.client import PlatformClient
from bot.crypto import KeyRing, install_keyring
from bot.dialogue.engine import Engine
from bot.dialogue.types import Understanding
from bot.settings import Settings
from bot.store.db import Database
from bot.types import Incoming, Outgoing
from tests.support.sandbox import SandboxServer, free_port, running_sandbox

TRADING_MORNING = "2026-11-25T10:00:00+08:00"  # a Wednesday, inside the trading window


class NLUDown:
    """The NLU server is not running (its port refuses): every parse fails at the network edge."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"

    async def parse(self, text: str) -> Understanding:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/model/parse", json={"text": text}) as r:
                r.raise_for_status()
        raise AssertionError("unreachable: nothing listens there")  # pragma: no cover


def down_nlu() -> Any:
    """The project's NLU client pointed at a closed port (a stand-in until it exists)."""
    try:
        from bot.nlu_client import NLUClient
    except ImportError:
        return NLUDown()
    return NLUClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)


@dataclass
class Chat:
    """One customer's chat with the engine (REST-like channel)."""

    engine: Engine
    sender: str
    channel: str = "rest"
    log: list[list[Outgoing]] = field(default_factory=list)
    _ids: int = 0

    async def say(self, text: str, **meta: str) -> list[Outgoing]:
        self._ids += 1
        msg = Incoming(
            channel=self.channel,  # type: ignore[arg-type]
            sender=self.sender,
            text=text,
            message_id=str(self._ids),
            meta=dict(meta),
        )
        out = await self.engine.handle(msg)
        self.log.append(out)
        return out

    async def text(self, text: str, **meta: str) -> str:
        return "\n".join(o.text for o in await self.say(text, **meta))


def payloads(out: list[Outgoing]) -> list[str]:
    return [b.payload for o in out for b in o.buttons]


def joined(out: list[Outgoing]) -> str:
    return "\n".join(o.text for o in out)


@dataclass
class World:
    """A sandbox, a bot database and an engine factory (a new Engine = a restarted bot)."""

    sandbox: SandboxServer
    db: Database
    settings: Settings
    backend: PlatformClient
    nlu: Any

    def engine(self) -> Engine:
        return Engine(self.settings, self.db, self.backend, self.nlu, None)

    def chat(self, sender: str, engine: Engine | None = None) -> Chat:
        return Chat(engine or self.engine(), sender)

    async def customer(self, **kw: Any) -> dict[str, Any]:
        return await self.sandbox.create_customer(**kw)

    async def linked_chat(self, sender: str, **kw: Any) -> tuple[Chat, dict[str, Any]]:
        cust = await self.customer(**kw)
        chat = self.chat(sender)
        out = await chat.say(cust["link_code"])
        assert "绑定成功" in joined(out) or "Linked" in joined(out), joined(out)
        return chat, cust

    async def code(self, cust: dict[str, Any]) -> str:
        return await self.sandbox.last_code(cust["phone"])

    async def sms_count(self, cust: dict[str, Any]) -> int:
        return len(await self.sandbox.sms(cust["phone"]))


@pytest.fixture(autouse=True)
def _keyring(tmp_path: Path) -> None:
    install_keyring(KeyRing.generate())


async def _world(url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with running_sandbox(tmp_dir=tmp_path) as sb:
        await sb.set_clock(TRADING_MORNING)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            backend_url=sb.base_url,
            database_url=url,
            keys_file=tmp_path / "keys.json",
        )
        db = Database(url)
        backend = PlatformClient(sb.base_url, timeout=settings.backend_timeout_s, retries=1)
        await backend.start()
        nlu = down_nlu()
        try:
            yield World(sb, db, settings, backend, nlu)
        finally:
            if hasattr(nlu, "close"):
                await nlu.close()
            await backend.close()
            await db.close()


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """SQLite bot database."""
    async for w in _world(sqlite_url, tmp_path):
        yield w


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """Once on SQLite, once on PostgreSQL."""
    from tests.support.db import create_pg_database, drop_pg_database, migrate

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
        await migrate(url)
        async for w in _world(url, tmp_path):
            yield w
        return
    url, name = await create_pg_database()
    try:
        await migrate(url)
        async for w in _world(url, tmp_path):
            yield w
    finally:
        await drop_pg_database(name)


ORDER_ID = re.compile(r"D\d{10,20}")


@pytest.fixture
async def nlu_world(sqlite_url: str, tmp_path: Path, nlu_url: str) -> AsyncIterator[World]:
    """SQLite bot database and the real Rasa NLU server."""
    from bot.nlu_client import NLUClient

    async for w in _world(sqlite_url, tmp_path):
        client = NLUClient(nlu_url, timeout=5.0)
        await client.start()
        w.nlu = client
        try:
            yield w
        finally:
            await client.close()
