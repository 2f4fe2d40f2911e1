"""Pytest helpers: the real sandbox platform on a free port, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

from sandbox.app import PLATFORM, create_app
from sandbox.clock import Clock
from sandbox.db import SandboxBase
from sandbox.service import Platform
from sandbox.settings import SandboxSettings

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_ASYNC_BASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/"

__all__ = [
    "SandboxServer",
    "free_port",
    "pg_database",
    "reset_sandbox_tables",
    "running_sandbox",
    "sandbox",
    "sandbox_db_url",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def create_pg_database(prefix: str = "sandbox_test") -> str:
    """CREATE DATABASE <prefix>_<random>; returns its asyncpg URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ASYNC_BASE + name


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def pg_database(prefix: str = "sandbox_test") -> AsyncIterator[str]:
    """A fresh PostgreSQL database (created, then dropped); yields its asyncpg URL."""
    url = await create_pg_database(prefix)
    try:
        yield url
    finally:
        await drop_pg_database(url)


def _run_in_thread(coro: Any) -> Any:
    """asyncio.run from sync code that may itself be inside a running loop (fixtures)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class SandboxServer:
    """A running sandbox: its base URL, HTTP session and test helpers."""

    base_url: str
    settings: SandboxSettings
    app: web.Application
    http: aiohttp.ClientSession
    _phones: list[str] = field(default_factory=list)

    @property
    def platform(self) -> Platform:
        return self.app[PLATFORM]

    async def create_customer(
        self,
        *,
        name: str = "张三",
        phone: str | None = None,
        risk_tolerance: str = "C3",
        cash: str = "50000.00",
        holdings: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """POST /sandbox/customers; returns {"customer_id", "link_code", "phone"}."""
        phone = phone or f"138{uuid.uuid4().int % 10**8:08d}"
        body = {"name": name, "phone": phone, "risk_tolerance": risk_tolerance, "cash": cash,
                "holdings": holdings or [], **extra}
        async with self.http.post(f"{self.base_url}/sandbox/customers", json=body) as r:
            assert r.status == 201, await r.text()
            data: dict[str, Any] = await r.json()
        return {**data, "phone": phone}

    async def set_clock(self, now: str | None) -> dict[str, Any]:
        """Freeze the platform clock ("2026-11-25T10:00:00+08:00") or None for real time."""
        async with self.http.post(f"{self.base_url}/sandbox/clock", json={"now": now}) as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())

    async def sms(self, phone: str) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base_url}/sandbox/sms", params={"phone": phone}) as r:
            assert r.status == 200, await r.text()
            return list(await r.json())

    async def last_code(self, phone: str) -> str:
        """The 6-digit code of the newest SMS to `phone`."""
        texts = await self.sms(phone)
        assert texts, f"no SMS to {phone}"
        match = re.search(r"\b(\d{6})\b", texts[-1]["text"])
        assert match, texts[-1]["text"]
        return match.group(1)

    async def orders(self, customer_id: str) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base_url}/sandbox/customers/{customer_id}/orders") as r:
            assert r.status == 200, await r.text()
            return list(await r.json())

    async def fail_order(self, order_id: str, reason: str) -> dict[str, Any]:
        async with self.http.post(f"{self.base_url}/sandbox/orders/{order_id}/fail",
                                  json={"reason": reason}) as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())

    async def answer_complaint(self, complaint_id: str, result: str) -> dict[str, Any]:
        async with self.http.post(f"{self.base_url}/sandbox/complaints/{complaint_id}/answer",
                                  json={"result": result}) as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())

    async def risk_warning(self, customer_id: str, code: str, detail: str) -> None:
        async with self.http.post(
            f"{self.base_url}/sandbox/customers/{customer_id}/risk-warning",
            json={"code": code, "detail": detail},
        ) as r:
            assert r.status == 202, await r.text()

    async def events(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base_url}/sandbox/events") as r:
            return list(await r.json())


@asynccontextmanager
async def running_sandbox(
    database_url: str | None = None,
    *,
    tmp_dir: Path | None = None,
    events_url: str | None = None,
    platform_secret: str = "test-platform-secret",
    **overrides: Any,
) -> AsyncIterator[SandboxServer]:
    """Start the real sandbox app in-process on a free port. Events are delivered only when
    `events_url` is given (e.g. the bot's /platform/events in an end-to-end test)."""
    if database_url is None:
        if tmp_dir is None:
            raise ValueError("give database_url or tmp_dir")
        database_url = f"sqlite+aiosqlite:///{tmp_dir / f'sandbox-{uuid.uuid4().hex[:8]}.sqlite'}"
    port = free_port()
    settings = SandboxSettings(
        _env_file=None,  # type: ignore[call-arg]  # tests never read a developer's .env
        sandbox_port=port,
        sandbox_database_url=database_url,
        platform_secret=platform_secret,
        events_url=events_url,
        event_delivery=events_url is not None,
        **overrides,
    )
    app = create_app(settings, Clock())
    # A short grace period: a test that ends mid-request (e.g. a refused 10 MB upload) must
    # not hold teardown for aiohttp's default minute.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield SandboxServer(f"http://127.0.0.1:{port}", settings, app, http)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def _sandbox_pg_session() -> Iterator[str]:
    """One PostgreSQL database for the session's sandbox tests (CREATE DATABASE is slow)."""
    url: str = _run_in_thread(create_pg_database())
    try:
        yield url
    finally:
        _run_in_thread(drop_pg_database(url))


async def reset_sandbox_tables(url: str) -> None:
    """Drop the sandbox's tables; the app creates them again when it starts."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(SandboxBase.metadata.drop_all)
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "pg"])
async def sandbox_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The sandbox's database URL: a new SQLite file, or an emptied PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sandbox.sqlite'}"
    else:
        url = request.getfixturevalue("_sandbox_pg_session")
        await reset_sandbox_tables(url)
        yield url


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    """The real sandbox on SQLite in tmp_path, without event delivery."""
    async with running_sandbox(tmp_dir=tmp_path) as server:
        yield server
