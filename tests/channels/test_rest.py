"""The REST channel's contract (ARCHITECTURE.md): shapes, status codes, token, pending messages."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from bot.app import DELIVERY
from bot.types import Attachment, Button, Outgoing
from tests.channels.conftest import ChannelBotFactory

pytestmark = pytest.mark.timeout(30)

WEBHOOK = "/webhooks/rest/webhook"
MESSAGES = "/webhooks/rest/messages"


async def post(url: str, body: Any, *, raw: bytes | None = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


async def get(url: str, token: str | None = None, **params: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(url, params=params, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_message_gets_a_list_of_replies_addressed_to_the_sender(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    status, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": "你好"})
    assert status == 200
    assert body == [{"recipient_id": "u1", "text": "echo: 你好"}]  # no "buttons" key when none
    assert bot.engine.seen[-1].channel == "rest" and bot.engine.seen[-1].sender == "u1"


async def test_buttons_come_with_title_and_payload_and_the_payload_acts_as_the_click(
    channel_bot: ChannelBotFactory,
) -> None:
    bot = await channel_bot()
    _, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": "menu"})
    assert body[0]["buttons"][0] == {"title": "查余额 Balance", "payload": "/check_balance"}
    _, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": body[0]["buttons"][0]["payload"]})
    assert body[0]["text"] == "您的总资产 ¥50,000.00"


async def test_several_replies_keep_their_order(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    _, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": "two"})
    assert [m["text"] for m in body] == ["first", "second"]


async def test_an_attachment_is_a_one_time_download_link(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    _, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": "export"})
    text = body[0]["text"]
    assert text.startswith("您的交易记录：\n📎 历史记录.csv：")
    url = text.split("：", 2)[2].split(" ")[0]
    assert url.startswith(bot.url + "/files/")
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 200
            assert await resp.read() == b"order,amount\nA1,100.00\n"
            assert "attachment" in resp.headers["Content-Disposition"]
            assert resp.headers["Cache-Control"] == "no-store"
        async with http.get(url) as resp:  # single download
            assert resp.status == 410
            page = await resp.text()
            assert "下载链接已失效" in page and "no longer valid" in page
        async with http.get(bot.url + "/files/not-a-token") as resp:
            assert resp.status == 410


@pytest.mark.parametrize(
    "body, error",
    [
        ({"sender": "u1"}, "missing_message"),
        ({"sender": "u1", "message": 42}, "missing_message"),
        ({"sender": "u1", "message": None}, "missing_message"),
        ({"sender": "u1", "message": ["hi"]}, "missing_message"),
        ({"message": "hi"}, "invalid_sender"),
        ({"sender": 7, "message": "hi"}, "invalid_sender"),
        ({"sender": "", "message": "hi"}, "invalid_sender"),
        ({"sender": "x" * 500, "message": "hi"}, "invalid_sender"),
        (["sender", "message"], "invalid_body"),
        ("just a string", "invalid_body"),
    ],
)
async def test_wrong_shapes_are_400_with_a_reason(channel_bot: ChannelBotFactory, body: Any, error: str) -> None:
    bot = await channel_bot()
    status, answer = await post(bot.url + WEBHOOK, body)
    assert status == 400
    assert answer["error"] == error and answer["detail"]
    assert bot.engine.seen == []


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe\x00", b""])
async def test_malformed_json_is_400(channel_bot: ChannelBotFactory, raw: bytes) -> None:
    bot = await channel_bot()
    status, answer = await post(bot.url + WEBHOOK, None, raw=raw)
    assert status == 400 and answer["error"] == "malformed_json"


async def test_an_oversize_body_is_413_json(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot(max_body_bytes=4096)
    status, answer = await post(bot.url + WEBHOOK, {"sender": "u1", "message": "x" * 10_000})
    assert status == 413 and answer["error"] == "too_large"


@pytest.mark.parametrize(
    "message, expected",
    [
        ("", "有什么可以帮您"),
        ("   \n\t \x00", "有什么可以帮您"),
        ("x" * 5000, "too long"),
        ("长" * 5000, "太长"),
        ("\x00\x07hello\x1b[31m", "echo: hello[31m"),
        ("🙂🙂🙂", "echo: 🙂🙂🙂"),
        ("'; DROP TABLE channel_pending; --", "echo: '; DROP TABLE channel_pending; --"),
        ("<script>alert(1)</script>", "echo: <script>alert(1)</script>"),
        ("{{7*7}} ${jndi:ldap://x}", "echo: {{7*7}} ${jndi:ldap://x}"),
    ],
)
async def test_hostile_text_gets_a_polite_reply(channel_bot: ChannelBotFactory, message: str, expected: str) -> None:
    bot = await channel_bot()
    status, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": message})
    assert status == 200
    assert any(part in body[0]["text"] for part in expected.split("|")), body
    # The injection string was stored as data, not executed: pending storage still works.
    await bot.app[DELIVERY].push("rest", "u1", Outgoing(text="still here"))
    assert (await get(bot.url + MESSAGES, sender="u1"))[1][0]["text"] == "still here"


async def test_an_engine_failure_is_an_apology_not_a_500(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    status, body = await post(bot.url + WEBHOOK, {"sender": "u1", "message": "boom"})
    assert status == 200 and "Sorry" in body[0]["text"]


async def test_the_token_is_required_when_set(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot(rest_token="s3cret-token")
    msg = {"sender": "u1", "message": "hi"}
    assert (await post(bot.url + WEBHOOK, msg))[0] == 401
    assert (await post(bot.url + WEBHOOK, msg, token="wrong"))[0] == 401
    assert (await post(bot.url + WEBHOOK, msg, token="s3cret-tokenX"))[0] == 401
    assert (await post(bot.url + WEBHOOK, msg, token="ünïcode"))[0] == 401
    status, answer = await post(bot.url + WEBHOOK, msg, token="s3cret-token")
    assert status == 200 and answer[0]["text"] == "echo: hi"
    assert (await get(bot.url + MESSAGES, sender="u1"))[0] == 401
    assert (await get(bot.url + MESSAGES, token="s3cret-token", sender="u1")) == (200, [])
    assert bot.engine.seen and len(bot.engine.seen) == 1  # refused requests never reached it


async def test_an_open_channel_is_warned_about_at_startup(
    channel_bot: ChannelBotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        await channel_bot()
    assert any("FINBOT_REST_TOKEN" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        await channel_bot(rest_token="t")
    assert not any("FINBOT_REST_TOKEN" in r.getMessage() for r in caplog.records)


async def test_pushed_messages_wait_and_are_returned_once(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot()
    delivery = bot.app[DELIVERY]
    assert "rest" in delivery.channels()
    await delivery.push("rest", "u1", Outgoing(text="客服：您好", buttons=(Button("好的", "/affirm"),)))
    await delivery.push("rest", "u1", Outgoing(text="订单已确认"))
    await delivery.push("rest", "u2", Outgoing(text="not yours"))
    await delivery.push(
        "rest", "u1", Outgoing(text="", attachment=Attachment("a.csv", "text/csv; charset=utf-8", b"a,b\n"))
    )
    status, body = await get(bot.url + MESSAGES, sender="u1")
    assert status == 200
    assert body[0] == {"recipient_id": "u1", "text": "客服：您好", "buttons": [{"title": "好的", "payload": "/affirm"}]}
    assert body[1] == {"recipient_id": "u1", "text": "订单已确认"}
    assert "/files/" in body[2]["text"] and "a.csv" in body[2]["text"]
    link = "http" + body[2]["text"].split("http", 1)[1].split(" ")[0]
    async with aiohttp.ClientSession() as http, http.get(link) as resp:  # a type with parameters
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert await resp.read() == b"a,b\n"
    assert await get(bot.url + MESSAGES, sender="u1") == (200, [])
    assert (await get(bot.url + MESSAGES, sender="u2"))[1][0]["text"] == "not yours"
    assert (await get(bot.url + MESSAGES))[0] == 400


async def test_pending_messages_survive_a_restart_and_are_encrypted_at_rest(
    channel_bot: ChannelBotFactory, tmp_path: Any
) -> None:
    bot = await channel_bot()
    await bot.app[DELIVERY].push("rest", "u9", Outgoing(text="赎回款已到账 secret-words"))
    await bot.runner.cleanup()
    raw = (tmp_path / "bot.sqlite").read_bytes() + (tmp_path / "bot.sqlite-wal").read_bytes() if (
        tmp_path / "bot.sqlite-wal"
    ).exists() else (tmp_path / "bot.sqlite").read_bytes()
    assert b"secret-words" not in raw
    again = await channel_bot()
    assert (await get(again.url + MESSAGES, sender="u9"))[1][0]["text"] == "赎回款已到账 secret-words"


async def test_a_browser_widget_on_another_site_may_call_the_channel(channel_bot: ChannelBotFactory) -> None:
    bot = await channel_bot(rest_token="tok")
    async with aiohttp.ClientSession() as http:
        async with http.options(
            bot.url + WEBHOOK,
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"},
        ) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        async with http.post(
            bot.url + WEBHOOK, json={"sender": "w", "message": "hi"},
            headers={"Origin": "https://shop.example", "Authorization": "Bearer tok"},
        ) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
        async with http.post(bot.url + WEBHOOK, json={"sender": "w", "message": "hi"}) as resp:
            assert resp.status == 401  # the token rule still holds
