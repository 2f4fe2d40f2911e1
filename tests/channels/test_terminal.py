"""`finbot chat` as a customer uses it: a real subprocess talking to a running bot over REST."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from bot.app import DELIVERY
from bot.types import Outgoing
from tests.channels.conftest import ChannelBotFactory, free_port

pytestmark = pytest.mark.timeout(40)


async def terminal(url: str, *args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.channels.terminal", "--url", url, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "FINBOT_REST_TOKEN": "", **(env or {})},
    )


async def read_until(proc: asyncio.subprocess.Process, needle: str, timeout: float = 10) -> str:
    seen = ""
    assert proc.stdout is not None
    while needle not in seen:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            break
        seen += line.decode()
    return seen


async def test_replies_and_numbered_buttons_and_typing_a_number_presses_it(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    proc = await terminal(bot.url, "--sender", "t1")
    out, err = await asyncio.wait_for(proc.communicate("菜单\n1\n".encode()), 20)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert "bot> 请选择 / Choose:" in text
    assert "  [1] 查余额 Balance" in text and "  [2] 评价 Rate" in text
    assert "→ 查余额 Balance" in text and "bot> 您的总资产 ¥50,000.00" in text
    assert [m.text for m in bot.engine.seen] == ["菜单", "/check_balance"]
    assert {m.sender for m in bot.engine.seen} == {"t1"}


async def test_messages_pushed_later_appear_while_chatting(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    proc = await terminal(bot.url, "--sender", "t2")
    assert proc.stdin is not None
    proc.stdin.write(b"hi\n")
    await proc.stdin.drain()
    assert "echo: hi" in await read_until(proc, "echo: hi")
    await bot.app[DELIVERY].push("rest", "t2", Outgoing(text="客服：您好，我是小王"))
    assert "bot (later)> 客服：您好，我是小王" in await read_until(proc, "小王")
    proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean exit
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0 and b"Traceback" not in err + out


async def test_a_bot_that_is_not_running_gets_a_clear_message() -> None:
    proc = await terminal(f"http://127.0.0.1:{free_port()}")
    out, err = await asyncio.wait_for(proc.communicate(b"hello\n"), 20)
    assert proc.returncode == 1
    assert "finbot is not running at" in out.decode() and "finbot serve" in out.decode()
    assert b"Traceback" not in err + out


async def test_a_wrong_token_is_explained(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot(rest_token="right-token")
    proc = await terminal(bot.url, env={"FINBOT_REST_TOKEN": "wrong"})
    out, err = await asyncio.wait_for(proc.communicate(b"hello\n"), 20)
    assert proc.returncode == 2 and "FINBOT_REST_TOKEN" in out.decode()
    proc = await terminal(bot.url, env={"FINBOT_REST_TOKEN": "right-token"})
    out, _ = await asyncio.wait_for(proc.communicate(b"hello\n"), 20)
    assert proc.returncode == 0 and "echo: hello" in out.decode()
