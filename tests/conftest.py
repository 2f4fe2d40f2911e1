"""Shared fixtures: databases (SQLite and PostgreSQL), the real NLU server, the bot server."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.db import create_pg_database, drop_pg_database, migrate

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("PTB_TIMEDELTA", "1")

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "var" / "reports"
PLATFORM_SECRET = "test-platform-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def reports_dir() -> Path:
    """Where tests leave screenshots and reports (`var/reports/`)."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS


# --- databases --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty bot database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
        await migrate(url)
        yield url
        return
    url, name = await create_pg_database()
    try:
        await migrate(url)
        yield url
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite bot database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
    await migrate(url)
    return url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A migrated, empty PostgreSQL bot database (dropped afterwards)."""
    url, name = await create_pg_database()
    try:
        await migrate(url)
        yield url
    finally:
        await drop_pg_database(name)


# --- the real NLU server ------------------------------------------------------------------


def _nlu_answers(url: str) -> bool:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/status", timeout=2) as resp:  # noqa: S310 — loopback
            return bool(json.loads(resp.read()).get("model_file"))
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def nlu_url() -> Iterator[str]:
    """The real Rasa NLU server: reuse FINBOT_TEST_NLU_URL when it answers, else start one."""
    wanted = os.environ.get("FINBOT_TEST_NLU_URL")
    if wanted and _nlu_answers(wanted.rstrip("/")):
        yield wanted.rstrip("/")
        return
    from bot.nlu_tools import start_server, stop_server

    port = free_port()
    proc: subprocess.Popen[bytes] = start_server(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


# --- the bot server -----------------------------------------------------------------------


@dataclass
class BotServer:
    """A running bot app on loopback."""

    url: str
    app: web.Application
    settings: Any
    runner: web.AppRunner
    stopped: bool = False

    async def say(self, sender: str, message: str) -> list[dict[str, Any]]:
        """One REST-channel turn; returns the bot's replies."""
        async with aiohttp.ClientSession() as http, http.post(
            f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": message}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return list(await resp.json())

    async def pending(self, sender: str) -> list[dict[str, Any]]:
        """Messages pushed later (agent replies, notifications) for a REST sender."""
        async with aiohttp.ClientSession() as http, http.get(
            f"{self.url}/webhooks/rest/messages", params={"sender": sender}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return list(await resp.json())

    async def stop(self) -> None:
        """Stop this bot (a restart test then starts another on the same database)."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()


BotFactory = Callable[..., Awaitable[BotServer]]


@pytest.fixture
async def bot_server(tmp_path: Path) -> AsyncIterator[BotFactory]:
    """Start the real bot app: ``await bot_server(backend_url=..., nlu_url=..., database_url=...)``.

    Defaults: a migrated SQLite database under tmp_path, an NLU URL that does not answer
    (degraded mode), keys under tmp_path. Extra keyword arguments become Settings fields.
    Call it twice with the same ``database_url`` and ``keys_file`` to simulate a restart.
    """
    from bot.app import create_app
    from bot.settings import Settings

    started: list[BotServer] = []

    async def start(**overrides: Any) -> BotServer:
        port = overrides.pop("port", None) or free_port()
        database_url = overrides.pop("database_url", None)
        if database_url is None:
            database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
            await migrate(database_url)
        fields: dict[str, Any] = {
            "port": port,
            "database_url": database_url,
            "keys_file": tmp_path / "keys.json",
            "platform_secret": PLATFORM_SECRET,
            "nlu_url": f"http://127.0.0.1:{free_port()}",  # nothing listens: degraded mode
            "backend_url": f"http://127.0.0.1:{free_port()}",
            "public_url": f"http://127.0.0.1:{port}",
        }
        fields.update(overrides)
        settings = Settings(**fields)
        app = create_app(settings)
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        server = BotServer(url=f"http://127.0.0.1:{port}", app=app, settings=settings, runner=runner)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> bool:
    """Poll a synchronous condition (for subprocess-based tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
