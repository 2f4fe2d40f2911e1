"""End to end over the REST channel: no personal data in plaintext in the logs or the database."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from bot.logsetup import configure_logging
from tests.conftest import BotFactory
from tests.support.sandbox import running_sandbox

pytestmark = pytest.mark.timeout(120)

PHONE = "13987654321"
ID_NUMBER = "11010519491231002X"
CARD = "6222021234567890123"
SENTENCE = "我其实是背着家里人偷偷买的这个基金"
SECRETS = {"phone": PHONE, "id number": ID_NUMBER, "card": CARD, "private sentence": SENTENCE}


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the bot logs, as production configures it (DEBUG, to see the most)."""
    buf = io.StringIO()
    configure_logging("DEBUG", stream=buf)
    yield buf
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "finbot-json":
            root.removeHandler(handler)
    structlog.reset_defaults()


def _hits(haystack: bytes) -> dict[str, int]:
    return {name: haystack.count(value.encode()) for name, value in SECRETS.items()}


async def test_a_full_conversation_leaves_no_plaintext_behind(
    bot_server: BotFactory,
    tmp_path: Path,
    log_output: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    platform_dir = tmp_path / "platform"
    platform_dir.mkdir()
    async with running_sandbox(tmp_dir=platform_dir) as platform:
        customer = await platform.create_customer(
            name="李四", phone=PHONE, holdings=[{"product": "MMF01", "shares": "10000"}]
        )
        bot = await bot_server(backend_url=platform.base_url)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:

            async def say(text: str) -> list[dict[str, Any]]:
                async with http.post(
                    f"{bot.url}/webhooks/rest/webhook",
                    json={"sender": "privacy-1", "message": text},
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    return list(await resp.json())

            def texts(replies: list[dict[str, Any]]) -> str:
                return "\n".join(r.get("text", "") for r in replies)

            assert "绑定成功" in texts(await say(f"绑定 {customer['link_code']}"))
            assert "¥60,000.00" in texts(await say("/check_balance"))
            await say('/file_complaint{"category":"service_attitude"}')
            await say(
                f"客服态度太差。我的身份证号是{ID_NUMBER}，卡号{CARD}，手机{PHONE}。{SENTENCE}"
            )
            filed = texts(await say("/confirm"))
            assert "C2026" in filed or "工单号" in filed, filed
            # Right of access: the export names everything, decrypted, as a one-time download.
            mine = texts(await say("我的数据"))
            link = re.search(r"(http://\S+/files/[\w-]+)", mine)
            assert link, mine
            async with http.get(link.group(1)) as resp:
                assert resp.status == 200
                export = await resp.text()
            # The customer sees what finbot holds, decrypted; identity numbers were only ever
            # stored masked (the platform got them in full with the complaint).
            held = json.dumps(json.loads(export), ensure_ascii=False)
            assert SENTENCE in held and ID_NUMBER[-4:] in held
            assert ID_NUMBER not in held and CARD not in held
            async with http.get(link.group(1)) as resp:
                assert resp.status in (404, 410)  # one time only

            # Right to erasure, after a fresh code.
            await say("删除我的数据")
            await say("/confirm")
            erased = texts(await say(await platform.last_code(PHONE)))
            assert "删除" in erased, erased
            after = texts(await say("我的数据"))
            assert "未绑定" in after, after

            db_files = sorted(tmp_path.glob("bot.sqlite*"))
            assert any(p.name.endswith("-wal") for p in db_files)  # read while the WAL is live
            live = b"".join(p.read_bytes() for p in db_files)
        await bot.stop()

    stopped = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("bot.sqlite*")))
    logs = log_output.getvalue()
    captured = capfd.readouterr()
    assert "POST /webhooks/rest/webhook" in logs  # the capture did see the bot's logging
    zero = dict.fromkeys(SECRETS, 0)
    assert _hits(logs.encode()) == zero
    assert _hits((captured.out + captured.err).encode()) == zero
    assert _hits(live) == zero
    assert _hits(stopped) == zero
    # The one-time download link is a bearer secret too: the access log shows it redacted.
    assert link.group(1).rsplit("/", 1)[1] not in logs and "/files/[redacted]" in logs


async def test_keys_rotate_while_the_bot_runs(bot_server: BotFactory, tmp_path: Path) -> None:
    """`finbot keys rotate` in another process: the running bot keeps reading and writing."""
    import os
    import subprocess
    import sys

    from bot.store.db import Database
    from bot.store.security import key_usage

    platform_dir = tmp_path / "platform"
    platform_dir.mkdir()
    async with running_sandbox(tmp_dir=platform_dir) as platform:
        customer = await platform.create_customer(phone=PHONE)
        bot = await bot_server(backend_url=platform.base_url)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:

            async def say(text: str) -> str:
                async with http.post(
                    f"{bot.url}/webhooks/rest/webhook", json={"sender": "rot-1", "message": text}
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    return "\n".join(r.get("text", "") for r in await resp.json())

            await say(f"绑定 {customer['link_code']}")
            await say(SENTENCE)
            env = {
                **os.environ,
                "FINBOT_DATABASE_URL": bot.settings.database_url,
                "FINBOT_KEYS_FILE": str(bot.settings.keys_file),
            }
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bot", "keys", "rotate", "--quiet"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            new_key = done.stdout.split()[3]  # "new primary key <id> (was <id>)"
            # The bot never restarted: it reads rows sealed by the new key and writes new ones.
            assert "¥50,000.00" in await say("/check_balance")
            mine = await say("我的数据")
            link = re.search(r"(http://\S+/files/[\w-]+)", mine)
            assert link, mine
            async with http.get(link.group(1)) as resp:
                assert SENTENCE in await resp.text()
        db = Database(bot.settings.database_url)
        try:
            assert set(await key_usage(db)) == {new_key}
        finally:
            await db.close()
