"""Fixtures of the channel tests: a bot app on loopback whose engine is a scripted stand-in.

The channels are the unit under test here: the scripted engine sits exactly at the engine
seam (``bot.dialogue.wiring.ENGINE``) and answers by rule, so each test knows the replies."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.types import Attachment, Button, Incoming, Outgoing
from tests.support.db import migrate

EXPORT = Attachment(filename="历史记录.csv", content_type="text/csv", data=b"order,amount\nA1,100.00\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScriptedEngine:
    """Answers by rule; records every Incoming it was given."""

    seen: list[Incoming] = field(default_factory=list)

    async def handle(self, msg: Incoming) -> list[Outgoing]:
        self.seen.append(msg)
        text = msg.text
        if not text:  # like the real engine: an empty message gets the menu
            return [Outgoing(text="有什么可以帮您？", buttons=(Button("查余额 Balance", "/check_balance"),))]
        if text == "boom":
            raise RuntimeError("engine exploded")
        if text in {"menu", "菜单"}:
            return [
                Outgoing(
                    text="请选择 / Choose:",
                    buttons=(
                        Button("查余额 Balance", "/check_balance"),
                        Button("评价 Rate", '/rate{"score": 4, "comment": "a payload longer than sixty-four bytes"}'),
                    ),
                )
            ]
        if text == "/check_balance":
            return [Outgoing(text="您的总资产 ¥50,000.00")]
        if text.startswith("/rate"):
            return [Outgoing(text="感谢评价 / thanks for rating")]
        if text in {"export", "导出"}:
            return [Outgoing(text="您的交易记录：", attachment=EXPORT)]
        if text.isdigit() and len(text) == 6:  # a one-time code: the channel should delete it
            return [Outgoing(text="验证成功 / verified", delete_message_id=msg.message_id)]
        if text == "two":
            return [Outgoing(text="first"), Outgoing(text="second")]
        return [Outgoing(text=f"echo: {text}")]


@dataclass
class ChannelBot:
    url: str
    app: web.Application
    engine: ScriptedEngine
    runner: web.AppRunner


ChannelBotFactory = Callable[..., Awaitable[ChannelBot]]


@pytest.fixture
async def channel_bot(tmp_path: Path) -> AsyncIterator[ChannelBotFactory]:
    """``await channel_bot(**settings)``: the real app (channels, store) on a free port."""
    from bot import crypto
    from bot.app import create_app
    from bot.dialogue import wiring
    from bot.settings import Settings

    key = wiring.ENGINE
    crypto.install_keyring(crypto.KeyRing.load_or_create(tmp_path / "keys.json"))
    runners: list[web.AppRunner] = []

    async def start(**overrides: Any) -> ChannelBot:
        port = overrides.pop("port", None) or free_port()
        engine = overrides.pop("engine", None) or ScriptedEngine()
        fields: dict[str, Any] = {
            "port": port,
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}",
            "keys_file": tmp_path / "keys.json",
            "nlu_url": f"http://127.0.0.1:{free_port()}",
            "backend_url": f"http://127.0.0.1:{free_port()}",
            "public_url": f"http://127.0.0.1:{port}",
            "cookie_secret": "test-cookie-secret",
        }
        fields.update(overrides)
        await migrate(fields["database_url"])  # the schema exists before any task starts
        app = create_app(Settings(**fields))
        # The scripted engine replaces the real one, so the real one's clients (NLU, platform)
        # are not opened at all: the channels are what these tests exercise.
        real_engine = getattr(wiring, "_engine", None)
        if real_engine in app.cleanup_ctx:
            app.cleanup_ctx.remove(real_engine)

        async def scripted(app: web.Application) -> None:
            # on_startup runs after every cleanup_ctx: this replaces the real engine.
            app[key] = engine  # type: ignore[index]

        app.on_startup.append(scripted)
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return ChannelBot(url=f"http://127.0.0.1:{port}", app=app, engine=engine, runner=runner)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()
    crypto.install_keyring(None)
