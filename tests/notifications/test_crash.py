"""Kill -9 of the bot while it sends 1,200 notifications: after a restart none is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.crypto import KeyRing, install_keyring
from bot.notifications.outbox import enqueue
from bot.store.db import Database
from bot.store.notifications import OutboxRow
from bot.types import Outgoing
from tests.conftest import ROOT, free_port
from tests.support.db import migrate_strict
from tests.support.fake_telegram import FakeTelegram

TOTAL = 1200
KILL_AFTER = 400


def _start_bot(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


async def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_sigkill_mid_batch_loses_nothing(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite'}"
    keys = tmp_path / "keys.json"
    await migrate_strict(db_url)
    install_keyring(KeyRing.load_or_create(keys))
    db = Database(db_url)
    async with db.begin() as session:  # one notice for each of 1,200 Telegram chats
        for chat in range(1, TOTAL + 1):
            await enqueue(session, channel="telegram", sender=str(chat), category="orders",
                          message=Outgoing(text=f"notice {chat}"), dedupe_key=f"crash:{chat}")

    async with FakeTelegram() as fake:
        fake.limits_enabled = True  # Telegram's limits hold: the sender must pace itself
        env = {
            **os.environ,
            "FINBOT_PORT": str(free_port()),
            "FINBOT_DATABASE_URL": db_url,
            "FINBOT_KEYS_FILE": str(keys),
            "FINBOT_TELEGRAM_TOKEN": fake.token,
            "FINBOT_TELEGRAM_BASE_URL": fake.base_url,
            "FINBOT_NLU_URL": f"http://127.0.0.1:{free_port()}",
            "FINBOT_BACKEND_URL": f"http://127.0.0.1:{free_port()}",
            "FINBOT_LOG_LEVEL": "WARNING",
        }
        log = tmp_path / "bot.log"
        bot = _start_bot(env, log)
        try:
            await _wait(lambda: len(fake.sent()) >= KILL_AFTER, 90, f"{KILL_AFTER} deliveries")
            os.killpg(bot.pid, signal.SIGKILL)
            bot.wait(10)
            delivered_at_kill = len(fake.sent())
            async with db.begin() as session:
                in_flight = await session.scalar(
                    select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "sending"))
            assert delivered_at_kill < TOTAL, "the kill came too late to test anything"

            bot = _start_bot(env, log)  # the restart takes over the expired leases
            await _wait(lambda: len({m.chat_id for m in fake.sent()}) >= TOTAL, 150, "every chat")
        finally:
            if bot.poll() is None:
                os.killpg(bot.pid, signal.SIGTERM)
                bot.wait(15)

        sent = fake.sent()
        chats = {m.chat_id for m in sent}
        duplicates = len(sent) - len(chats)
        print(f"\ncrash test: {TOTAL} notices, killed after {delivered_at_kill}, "
              f"{in_flight} in flight, {duplicates} duplicates after restart")
        assert chats == set(range(1, TOTAL + 1)), "a notification was lost"
        assert duplicates <= (in_flight or 0), (duplicates, in_flight)
        # The pacing itself is measured by `make bench` (zero 429s there). Here, on a loaded CI
        # machine around a kill and a restart, a rare 429 is waited out and retried: what this
        # test guards is that such a message is still delivered (checked above) and that
        # Telegram is never flooded.
        rate_limited = [c for c in fake.calls if c.status == 429]
        print(f"crash test: {len(rate_limited)} answers were 429 (retried)")
        assert len(rate_limited) <= 5, f"{len(rate_limited)} sends broke Telegram's limits"
    async with db.begin() as session:
        left = await session.scalar(select(func.count()).select_from(OutboxRow)
                                    .where(OutboxRow.status != "sent"))
    await db.close()
    assert left == 0
