"""The web chat over HTTP and WebSocket: cookie, replies, live and later pushes, bound downloads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from bot.app import DELIVERY
from bot.channels.common import COOKIE_NAME
from bot.types import Attachment, Button, Outgoing
from tests.channels.conftest import ChannelBot, ChannelBotFactory

pytestmark = pytest.mark.timeout(30)


def browser() -> aiohttp.ClientSession:
    # unsafe=True: aiohttp ignores cookies of bare IP hosts otherwise.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def open_page(http: aiohttp.ClientSession, bot: ChannelBot) -> str:
    async with http.get(bot.url + "/") as resp:
        assert resp.status == 200
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    cookie = next(c for c in http.cookie_jar if c.key == COOKIE_NAME)
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    return cookie.value.rpartition(".")[0]


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict[str, Any]:
    return json.loads((await asyncio.wait_for(ws.receive(), timeout)).data)


async def test_the_page_is_bilingual_and_sets_a_signed_httponly_cookie(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    async with browser() as http:
        async with http.get(bot.url + "/") as resp:
            html = await resp.text()
        blob = json.loads(html.split('type="application/json">', 1)[1].split("</script>", 1)[0])
        assert blob["zh"]["send"] == "发送" and blob["en"]["send"] == "Send"
        sender = next(c for c in http.cookie_jar if c.key == COOKIE_NAME).value.rpartition(".")[0]
        async with http.get(bot.url + "/") as resp:  # a known browser keeps its id
            assert COOKIE_NAME not in resp.cookies
        assert next(c for c in http.cookie_jar if c.key == COOKIE_NAME).value.startswith(sender)
        for path in ("/favicon.ico", "/webchat/static/app.js", "/webchat/static/style.css"):
            async with http.get(bot.url + path) as resp:
                assert resp.status == 200, path


async def test_a_message_over_the_websocket_gets_replies_with_buttons(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    async with browser() as http:
        sender = await open_page(http, bot)
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:
            await ws.send_json({"type": "message", "text": "menu"})
            reply = await receive(ws)
            assert reply["buttons"][0] == {"title": "查余额 Balance", "payload": "/check_balance"}
            await ws.send_json({"type": "message", "text": reply["buttons"][0]["payload"]})
            assert (await receive(ws))["text"] == "您的总资产 ¥50,000.00"
            await ws.send_str("not json")
            assert (await receive(ws))["type"] == "error"
        assert {m.sender for m in bot.engine.seen} == {sender}
        assert {m.channel for m in bot.engine.seen} == {"webchat"}


async def test_no_or_a_forged_cookie_cannot_open_a_socket(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(bot.url + "/webchat/ws")
        assert caught.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(bot.url + "/webchat/ws", headers={"Cookie": f"{COOKIE_NAME}=w-victim.deadbeef"})


async def test_another_site_cannot_use_the_visitors_cookie(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    async with browser() as http:
        await open_page(http, bot)
        evil = {"Origin": "https://evil.example"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(bot.url + "/webchat/ws", headers=evil)
        assert caught.value.status == 403
        async with http.post(bot.url + "/webchat/message", json={"message": "hi"}, headers=evil) as resp:
            assert resp.status == 403
        async with http.ws_connect(bot.url + "/webchat/ws", headers={"Origin": bot.url}) as ws:
            await ws.send_json({"type": "message", "text": "hi"})
            assert (await receive(ws))["text"] == "echo: hi"
    assert [m.text for m in bot.engine.seen] == ["hi"]


async def test_a_push_arrives_live_and_a_push_to_a_closed_page_waits(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    delivery = bot.app[DELIVERY]
    async with browser() as http:
        sender = await open_page(http, bot)
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:
            await asyncio.sleep(0.1)
            await delivery.push("webchat", sender, Outgoing(text="客服小王：您好", buttons=(Button("好", "/affirm"),)))
            live = await receive(ws, timeout=1.5)  # woken at once, not by the periodic check
            assert live["text"] == "客服小王：您好" and live["pushed"] is True
            await ws.send_json({"type": "ack", "id": live["id"]})  # what the page does
            await asyncio.sleep(0.1)
        await delivery.push("webchat", sender, Outgoing(text="您的申购已确认"))
        await delivery.push("webchat", sender, Outgoing(text="第二条"))
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:
            first, second = await receive(ws), await receive(ws)
            assert [first["text"], second["text"]] == ["您的申购已确认", "第二条"]
            await ws.send_json({"type": "ack", "id": first["id"]})
            await asyncio.sleep(0.1)
        # The second was never acknowledged (the page died before showing it): it comes back.
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:
            again = await receive(ws)
            assert again["text"] == "第二条"
            await ws.send_json({"type": "ack", "id": again["id"]})
            await asyncio.sleep(0.1)
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:  # now delivered, once
            with pytest.raises(TimeoutError):
                await receive(ws, timeout=0.5)


async def test_the_fetch_fallback_answers_and_collects_pending(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    async with browser() as http:
        async with http.post(bot.url + "/webchat/message", json={"message": "hi"}) as resp:
            assert resp.status == 200 and (await resp.json())[0]["text"] == "echo: hi"
        sender = next(c for c in http.cookie_jar if c.key == COOKIE_NAME).value.rpartition(".")[0]
        await bot.app[DELIVERY].push("webchat", sender, Outgoing(text="later"))
        async with http.get(bot.url + "/webchat/messages") as resp:
            assert [m["text"] for m in await resp.json()] == ["later"]
        async with http.post(bot.url + "/webchat/message", data=b"{") as resp:
            assert resp.status == 400
        async with http.post(bot.url + "/webchat/message", json={"message": 5}) as resp:
            assert resp.status == 400


async def test_a_file_downloads_once_and_only_in_the_browser_it_was_made_for(
    channel_bot: ChannelBotFactory,
) -> None:
    bot = await channel_bot()
    async with browser() as http, browser() as other:
        await open_page(http, bot)
        await open_page(other, bot)
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:
            await ws.send_json({"type": "message", "text": "export"})
            reply = await receive(ws)
        url = bot.url + reply["file"]["url"]
        assert reply["file"]["filename"] == "历史记录.csv"
        async with other.get(url) as resp:  # someone else's browser: refused, link not burnt
            assert resp.status == 403
        async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as resp:
            assert resp.status == 403
        async with http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == b"order,amount\nA1,100.00\n"
            assert "filename*=UTF-8''%E5%8E%86" in resp.headers["Content-Disposition"]
        async with http.get(url) as resp:
            assert resp.status == 410


async def test_pushed_attachments_become_links_bound_to_the_browser(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    async with browser() as http:
        sender = await open_page(http, bot)
        await bot.app[DELIVERY].push(
            "webchat", sender, Outgoing(text="报告", attachment=Attachment("r.pdf", "application/pdf", b"%PDF"))
        )
        async with http.ws_connect(bot.url + "/webchat/ws") as ws:
            body = await receive(ws)
        async with http.get(bot.url + body["file"]["url"]) as resp:
            assert resp.status == 200 and resp.content_type == "application/pdf"


async def test_the_cookie_key_is_derived_from_the_key_file_when_not_configured(
    channel_bot: ChannelBotFactory,
) -> None:
    bot = await channel_bot(cookie_secret=None)
    async with browser() as http:
        sender = await open_page(http, bot)
        await bot.runner.cleanup()
        again = await channel_bot(cookie_secret=None)  # same key file: the browser is recognised
        await again.app[DELIVERY].push("webchat", sender, Outgoing(text="after restart"))
        async with http.ws_connect(again.url + "/webchat/ws") as ws:
            assert (await receive(ws))["text"] == "after restart"
