"""Notification throughput through the real bot process and the fake Bot API, vs the allowed rate."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.crypto import KeyRing, install_keyring
from bot.notifications.outbox import enqueue
from bot.store.db import Database
from bot.store.migrate import upgrade_async
from bot.types import Outgoing
from tests.support.db import create_pg_database, drop_pg_database
from tests.support.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("FINBOT_BENCH_NOTIFICATIONS", "900"))
ALLOWED_PER_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def notification_rate(database: str, workers: int) -> dict[str, Any]:
    """Enqueue MESSAGES notices for as many chats, start the bot, time the deliveries."""
    with tempfile.TemporaryDirectory(prefix="finbot-notify-") as scratch:
        pg_name = None
        if database == "postgresql":
            url, pg_name = await create_pg_database("finbot_bench")
        else:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'bot.sqlite'}"
        try:
            await upgrade_async(url)
            keys = Path(scratch) / "keys.json"
            install_keyring(KeyRing.load_or_create(keys))
            db = Database(url)
            async with db.begin() as session:
                for chat in range(1, MESSAGES + 1):
                    await enqueue(session, channel="telegram", sender=str(chat), category="orders",
                                  message=Outgoing(text=f"您的订单 {chat} 已确认"))
            await db.close()
            async with FakeTelegram() as fake:
                env = {**os.environ, "FINBOT_PORT": str(free_port()), "FINBOT_DATABASE_URL": url,
                       "FINBOT_KEYS_FILE": str(keys), "FINBOT_TELEGRAM_TOKEN": fake.token,
                       "FINBOT_TELEGRAM_BASE_URL": fake.base_url, "FINBOT_OUTBOX_WORKERS": str(workers),
                       "FINBOT_NLU_URL": f"http://127.0.0.1:{free_port()}",
                       "FINBOT_BACKEND_URL": f"http://127.0.0.1:{free_port()}",
                       "FINBOT_LOG_LEVEL": "WARNING"}
                proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT,
                                        stdout=(Path(scratch) / "bot.log").open("wb"), stderr=subprocess.STDOUT,
                                        start_new_session=True)
                try:
                    deadline = time.monotonic() + MESSAGES / ALLOWED_PER_S * 3 + 60
                    while len(fake.sent()) < MESSAGES and time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
                if not fake.sent():
                    print((Path(scratch) / "bot.log").read_text()[-3000:])
                times = sorted(fake.sent_times)
                sent = len(fake.sent())
                limited = sum(1 for c in fake.calls if c.status == 429)
        finally:
            if pg_name:
                await drop_pg_database(pg_name)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_s = (len(times) - 1) / span if span else 0.0
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    if os.environ.get("FINBOT_BENCH_DEBUG") and gaps:
        print("gaps ms p1/p10/p50/p90", [round(gaps[int(len(gaps) * q)] * 1000, 1)
                                         for q in (0.01, 0.1, 0.5, 0.9)], "max", round(gaps[-1] * 1000))
    return {"database": database, "workers": workers, "sent": sent, "seconds": round(span, 1),
            "per_s": round(per_s, 1), "allowed_per_s": ALLOWED_PER_S,
            "ratio": round(per_s / ALLOWED_PER_S, 3), "rate_limited": limited}
