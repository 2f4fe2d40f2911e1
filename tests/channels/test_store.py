"""Pending messages and one-time files on SQLite and PostgreSQL, across several bot processes."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from bot.app import DB, DELIVERY
from bot.channels.common import COOKIE_NAME
from bot.store import channels as store
from bot.types import Attachment, Outgoing
from tests.channels.conftest import ChannelBotFactory

pytestmark = [pytest.mark.pg, pytest.mark.timeout(60)]


async def pending(url: str, sender: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(
        url + "/webhooks/rest/messages", params={"sender": sender}
    ) as resp:
        assert resp.status == 200
        return list(await resp.json())


async def test_two_processes_never_hand_out_a_pending_message_twice(
    channel_bot: ChannelBotFactory, db_url: str
) -> None:
    a = await channel_bot(database_url=db_url)
    b = await channel_bot(database_url=db_url)  # a second bot process on the same database
    for i in range(60):
        await a.app[DELIVERY].push("rest", "shared", Outgoing(text=f"m{i}"))
    batches = await asyncio.gather(*(pending(bot.url, "shared") for bot in [a, b] * 8))
    texts = [m["text"] for batch in batches for m in batch]
    assert sorted(texts) == sorted(f"m{i}" for i in range(60))  # all of them, each once
    for batch in batches:  # and each batch in push order
        assert batch == sorted(batch, key=lambda m: int(m["text"][1:]))


async def test_a_push_made_by_another_process_reaches_an_open_web_chat(
    channel_bot: ChannelBotFactory, db_url: str
) -> None:
    a = await channel_bot(database_url=db_url)
    b = await channel_bot(database_url=db_url)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(b.url + "/"):
            pass
        sender = next(c for c in http.cookie_jar if c.key == COOKIE_NAME).value.rpartition(".")[0]
        async with http.ws_connect(b.url + "/webchat/ws") as ws:
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await a.app[DELIVERY].push("webchat", sender, Outgoing(text="来自另一个进程"))
            msg = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            assert msg["text"] == "来自另一个进程"
            assert time.monotonic() - started < 3  # the socket's periodic check (2 s)


async def test_files_expire_and_are_taken_once_under_concurrency(
    channel_bot: ChannelBotFactory, db_url: str
) -> None:
    from bot.channels import files

    bot = await channel_bot(database_url=db_url)
    url = await files.publish(bot.app, Attachment("a.csv", "text/csv", b"x,y\n"), "u1")
    token = url.rsplit("/", 1)[1]
    db = bot.app[DB]

    async def take() -> object:
        async with db.begin() as s:
            return await store.take_file(s, token)

    results = await asyncio.gather(*(take() for _ in range(6)))
    assert sum(r is not None for r in results) == 1
    # An expired file is gone for good, and housekeeping removes it.
    async with db.begin() as s:
        await store.store_file(
            s, token="old", channel="rest", sender="u1", filename="o.csv", content_type="text/csv",
            data=b"o", ttl=files.FILE_TTL * -1,
        )
    async with db.begin() as s:
        assert await store.peek_file_owner(s, "old") is None
        assert await store.delete_expired(s) == 1
    async with aiohttp.ClientSession() as http, http.get(bot.url + "/files/old") as resp:
        assert resp.status == 410
