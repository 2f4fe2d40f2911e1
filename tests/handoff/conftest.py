"""Fixtures of the handoff tests: a throwaway database (SQLite and PostgreSQL) and a console app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Delivery
from bot.crypto import KeyRing, install_keyring
from bot.handoff import service
from bot.notifications.sender import OutboxSender
from bot.settings import Settings
from bot.store.db import Database
from bot.types import Outgoing


class RecordingDelivery:
    """Stands in for the channels' pushers behind the real outbox: records what the customer
    would receive. ``flush()`` runs the outbox sender until nothing is due."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.sent: list[tuple[str, str, Outgoing]] = []
        self.delivery = Delivery()
        for channel in ("rest", "telegram", "webchat"):
            self.delivery.register(channel, self._pusher(channel))
        self.outbox = OutboxSender(settings, db, self.delivery)

    def _pusher(self, channel: str):  # type: ignore[no-untyped-def]
        async def push(sender: str, message: Outgoing) -> None:
            self.sent.append((channel, sender, message))

        return push

    async def flush(self) -> None:
        while await self.outbox.run_once():
            pass

    def texts(self, sender: str) -> list[str]:
        return [m.text for _, s, m in self.sent if s == sender]


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
    database = Database(db_url)  # migrated by the foundation's db_url fixture
    yield database
    await database.close()


@pytest.fixture
def delivery(db: Database, settings: Settings) -> RecordingDelivery:
    rec = RecordingDelivery(settings, db)
    service.install(db, settings, rec.delivery)
    return rec
