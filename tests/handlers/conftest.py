"""Fixtures for the information handlers: the real sandbox over HTTP, a real bot database,
handler contexts, and the real engine for the multi-step tasks (driven by payloads and bare
answers, which need no NLU)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backend_client.client import PlatformClient
from bot.dialogue.types import Context, Entity, Turn, Understanding
from bot.locales import translator
from bot.settings import Settings
from bot.store.db import Database
from bot.types import Incoming, Lang, Outgoing
from tests.support.db import create_pg_database, drop_pg_database, migrate
from tests.support.sandbox import SandboxServer, running_sandbox

TIMEOUT = 30


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    """The real sandbox platform on a free port (SQLite in tmp_path)."""
    async with running_sandbox(tmp_dir=tmp_path) as server:
        yield server


@pytest.fixture
async def backend(sandbox: SandboxServer) -> AsyncIterator[PlatformClient]:
    async with PlatformClient(sandbox.base_url, timeout=5.0, retries=1) as client:
        yield client


@pytest.fixture
async def bot_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
    await migrate(url)
    db = Database(url)
    yield db
    await db.close()


@pytest.fixture
def settings(tmp_path: Path, sandbox: SandboxServer) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        backend_url=sandbox.base_url,
        database_url="sqlite+aiosqlite:///unused",
        keys_file=tmp_path / "keys.json",
        nlu_url="http://127.0.0.1:9",
    )


CtxFactory = Callable[..., Context]


@pytest.fixture
def make_ctx(settings: Settings, backend: PlatformClient, bot_db: Database) -> CtxFactory:
    """A handler context as the engine builds it: platform clock, translator, state."""

    def make(
        lang: Lang = "zh", customer_id: str | None = None, state: dict[str, Any] | None = None
    ) -> Context:
        async def now():  # type: ignore[no-untyped-def]
            return (await backend.get_clock()).now

        return Context(
            settings=settings,
            backend=backend,
            db=bot_db,
            lang=lang,
            t=translator(lang),
            conversation_id=1,
            customer_id=customer_id,
            state=state if state is not None else {},
            now=now,
        )

    return make


def turn(text: str, intent: str, lang: Lang = "zh", **entities: str) -> Turn:
    """One customer message as a handler sees it."""
    return Turn(
        message=Incoming(channel="rest", sender="t", text=text),
        nlu=Understanding(
            text=text,
            intent=intent,
            confidence=1.0,
            entities=tuple(Entity(k, v) for k, v in entities.items()),
        ),
        lang=lang,
    )


async def place_order(
    sandbox: SandboxServer,
    backend: PlatformClient,
    customer: dict[str, Any],
    side: str,
    product: str,
    amount: str | None = None,
    shares: str | None = None,
) -> str:
    """A real order through the platform API (challenge → SMS code → verify → order)."""
    key = uuid.uuid4().hex
    amt = Decimal(amount) if amount else None
    shr = Decimal(shares) if shares else None
    action = "subscribe" if side == "subscribe" else "redeem"
    ch = await backend.create_challenge(
        customer["customer_id"], action, key, product=product, amount=amt, shares=shr
    )
    code = await sandbox.last_code(customer["phone"])
    await backend.verify_challenge(ch.challenge_id, code)
    order = await backend.place_order(
        customer["customer_id"], key, side, product, ch.challenge_id, amount=amt, shares=shr
    )
    return order.order_id


class NoNLU:
    """The task tests speak in payloads and bare answers; the NLU must not be needed."""

    async def parse(self, text: str) -> Understanding:
        raise AssertionError(f"NLU called for {text!r}")


@dataclass
class Chat:
    """One conversation with the real engine."""

    engine: Any
    sender: str

    async def say(self, text: str) -> list[Outgoing]:
        return await self.engine.handle(Incoming(channel="rest", sender=self.sender, text=text))


@pytest.fixture(params=["sqlite", "postgresql"])
async def task_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The engine's database for the task tests (conversations, once-only order intents):
    SQLite and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'engine.sqlite'}"
        await migrate(url)
        db = Database(url)
        yield db
        await db.close()
        return
    url, name = await create_pg_database("finbot_handlers")
    try:
        await migrate(url)
        db = Database(url)
        yield db
        await db.close()
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def engine(settings: Settings, task_db: Database, backend: PlatformClient) -> Any:
    from bot.dialogue.engine import Engine

    return Engine(settings, task_db, backend, NoNLU())


ChatFactory = Callable[..., Awaitable[Chat]]


@pytest.fixture
def linked_chat(engine: Any) -> ChatFactory:
    """A chat linked to a sandbox customer with the customer's link code."""

    async def make(customer: dict[str, Any], lang: Lang = "zh") -> Chat:
        chat = Chat(engine, f"s-{uuid.uuid4().hex[:8]}")
        word = "绑定" if lang == "zh" else "link"
        replies = await chat.say(f"{word} {customer['link_code']}")
        assert replies, "no reply to the link code"
        if lang == "en":
            # A link code keeps the conversation's language (zh by default); a word of
            # English that needs no NLU switches it.
            await chat.say("cancel")
        return chat

    return make


def texts(replies: list[Outgoing]) -> str:
    return "\n".join(r.text for r in replies)


def payloads(replies: list[Outgoing]) -> list[str]:
    return [b.payload for r in replies for b in r.buttons]


CODE = re.compile(r"\b(\d{6})\b")
