"""Fixtures of the handoff tests: a throwaway database (SQLite and PostgreSQL) and a console app."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.crypto import KeyRing, install_keyring
from bot.handoff import service
from bot.settings import Settings
from bot.store.db import Database
from bot.types import Outgoing

PG_ADMIN_URL = os.environ.get("FINBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


class RecordingDelivery:
    """Stands in for the channels' pushers: records what the customer would receive."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Outgoing]] = []

    async def push(self, channel: str, sender: str, message: Outgoing) -> None:
        self.sent.append((channel, sender, message))

    def texts(self, sender: str) -> list[str]:
        return [m.text for _, s, m in self.sent if s == sender]


async def _pg_database() -> tuple[str, str]:
    """A fresh PostgreSQL database (own name, so parallel engineers never collide)."""
    import asyncpg

    name = f"handoff_{uuid.uuid4().hex[:10]}"
    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}", name


async def _drop_pg(name: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'handoff.sqlite'}"
        return
    url, name = await _pg_database()
    yield url
    await _drop_pg(name)


@pytest.fixture(autouse=True, scope="session")
def _keyring() -> None:
    # A throwaway key ring: tests never touch the checkout's var/keys.json.
    install_keyring(KeyRing.generate())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Always staffed unless a test says otherwise, so queue tests do not depend on the hour.
    return Settings(staffed_hours="00:00-00:00", keys_file=tmp_path / "keys.json", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def db(db_url: str, settings: Settings) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.create_all()
    yield database
    await database.close()


@pytest.fixture
def delivery(db: Database, settings: Settings) -> RecordingDelivery:
    rec = RecordingDelivery()
    service.install(db, settings, rec)
    return rec
