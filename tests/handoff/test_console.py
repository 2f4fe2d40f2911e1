"""The agent console over HTTP against the real bot app: auth, refusals, a full ticket, live feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.app import DB
from bot.handoff import auth, service
from tests.conftest import BotServer
from tests.support.db import create_pg_database, drop_pg_database, migrate

pytestmark = pytest.mark.timeout(90)

PASSWORD = "correct horse battery"


class Console:
    """One browser-like agent session (cookie jar + CSRF token)."""

    def __init__(self, server: BotServer) -> None:
        self.server = server
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        resp = await self.http.post(
            f"{self.server.url}/agent/api/login", json={"username": username, "password": password}
        )
        if resp.status == 200:
            self.csrf = (await resp.json())["csrf"]
        return resp

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(f"{self.server.url}{path}", allow_redirects=False) as resp:
            ctype = resp.headers.get("Content-Type", "")
            return resp.status, (await resp.json() if "json" in ctype else await resp.text())

    async def post(self, path: str, body: dict[str, Any] | None = None, csrf: str | None = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        async with self.http.post(f"{self.server.url}{path}", json=body or {}, headers=headers) as resp:
            return resp.status, await resp.json()

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def server(bot_server, request: pytest.FixtureRequest) -> AsyncIterator[BotServer]:  # type: ignore[no-untyped-def]
    extra: dict[str, Any] = {}
    pg_name = None
    if getattr(request, "param", "sqlite") == "postgresql":
        url, pg_name = await create_pg_database("handoff_t")
        await migrate(url)
        extra["database_url"] = url
    srv: BotServer = await bot_server(staffed_hours="00:00-00:00", **extra)
    db = srv.app[DB]
    await auth.add_agent(db, "alice", "agent", PASSWORD)
    await auth.add_agent(db, "bob", "agent", PASSWORD)
    await auth.add_agent(db, "sue", "supervisor", PASSWORD)
    yield srv
    if pg_name is not None:
        await srv.stop()
        await drop_pg_database(pg_name)


@pytest.fixture
async def consoles(server: BotServer) -> AsyncIterator[dict[str, Console]]:
    made = {name: Console(server) for name in ("alice", "bob", "sue", "anon")}
    for name in ("alice", "bob", "sue"):
        assert (await made[name].login(name)).status == 200
    yield made
    for c in made.values():
        await c.close()


async def _ticket(server: BotServer, conv: int, sender: str, reason: str = "customer_request", lang: str = "zh", intent: str = "human_handoff") -> int:
    info = await service.open_ticket(
        server.app[DB], conversation_id=conv, reason=reason, intent=intent, entities={"product": "BOND01"},
        lang=lang, channel="rest", sender=sender,
        transcript=[{"role": "customer", "text": "我想赎回"}, {"role": "bot", "text": "好的"}],
    )
    return info.ticket_id


async def _pending_until(server: BotServer, sender: str, want: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Poll the REST channel like a client until a message containing ``want`` arrives."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += await server.pending(sender)
        if any(want in (m.get("text") or "") for m in got):
            return got
        await asyncio.sleep(0.1)
    return got


async def test_login_refusals_and_cookie_flags(server: BotServer) -> None:
    c = Console(server)
    try:
        assert (await c.login("alice", "wrong password!")).status == 401
        assert (await c.login("nobody", "wrong password!")).status == 401
        status, body = await c.post("/agent/api/login", {"username": "alice"})
        assert status == 400
        # No session: the API says 401, the page sends the browser to the login form.
        assert (await c.get("/agent/api/queue"))[0] == 401
        status, _ = await c.get("/agent")
        assert status == 302
        resp = await c.login("alice")
        assert resp.status == 200
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/agent" in cookie
        assert (await c.get("/agent"))[0] == 200
        status, me = await c.get("/agent/api/me")
        assert status == 200 and me["role"] == "agent" and me["csrf"] == c.csrf
        # The session token is stored hashed: the cookie value is nowhere in the database.
        token = resp.cookies["finbot_agent"].value
        assert await auth.session_agent(server.app[DB], token) is not None
        assert await auth.session_agent(server.app[DB], auth.token_hash(token)) is None
        status, _ = await c.post("/agent/api/logout")
        assert status == 200
        assert (await c.get("/agent/api/queue"))[0] == 401
    finally:
        await c.close()


async def test_login_throttle(server: BotServer) -> None:
    c = Console(server)
    try:
        for _ in range(auth.MAX_FAILURES):
            assert (await c.login("bob", "not the password")).status == 401
        resp = await c.login("bob")  # right password, but too many failures just before
        assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
        assert (await resp.json())["error"] == "too_many_attempts"
    finally:
        await c.close()


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
async def test_full_ticket_over_the_console(server: BotServer, consoles: dict[str, Console]) -> None:
    alice, bob = consoles["alice"], consoles["bob"]
    tid = await _ticket(server, 101, "cust-101")
    status, queue = await alice.get("/agent/api/queue")
    assert status == 200 and [t["id"] for t in queue["tickets"]] == [tid] and queue["waiting"] == 1
    # Writes need the CSRF token.
    assert (await alice.post(f"/agent/api/tickets/{tid}/claim", csrf=""))[0] == 403
    assert (await alice.post(f"/agent/api/tickets/{tid}/claim", csrf="forged"))[0] == 403
    status, claimed = await alice.post(f"/agent/api/tickets/{tid}/claim")
    assert status == 200 and claimed["agent"] == "alice" and claimed["state"] == "assigned"
    assert (await bob.post(f"/agent/api/tickets/{tid}/claim"))[0] == 409
    # Another agent cannot open or answer a ticket alice owns.
    assert (await bob.get(f"/agent/api/tickets/{tid}"))[0] == 403
    assert (await bob.post(f"/agent/api/tickets/{tid}/reply", {"text": "hi"}))[0] == 403
    assert (await consoles["sue"].get(f"/agent/api/tickets/{tid}"))[0] == 200  # supervisors may look
    assert await service.agent_owns(server.app[DB], 101)

    status, detail = await alice.get(f"/agent/api/tickets/{tid}")
    assert status == 200 and detail["transcript"][0]["text"] == "我想赎回" and detail["entities"] == {"product": "BOND01"}
    assert (await alice.post(f"/agent/api/tickets/{tid}/reply", {"text": "   "}))[0] == 400
    status, _ = await alice.post(f"/agent/api/tickets/{tid}/reply", {"text": "您好，我是客服小李"})
    assert status == 200
    assert (await alice.post(f"/agent/api/tickets/{tid}/note", {"text": "VIP，注意语气"}))[0] == 200
    got = await _pending_until(server, "cust-101", "您好，我是客服小李")
    texts = [m["text"] for m in got]
    assert "您好，我是客服小李" in texts
    assert not any("VIP" in t for t in texts)

    await service.relay_from_customer(server.app[DB], 101, "我的钱什么时候到账？")
    status, detail = await alice.get(f"/agent/api/tickets/{tid}")
    assert [m["kind"] for m in detail["messages"] if m["kind"] != "system"] == ["agent", "note", "customer"]

    status, done = await alice.post(f"/agent/api/tickets/{tid}/resolve")
    assert status == 200 and done["state"] == "resolved"
    got = await _pending_until(server, "cust-101", "1–5")
    rating = [m for m in got if "1–5" in m["text"]][0]
    assert [b["payload"] for b in rating["buttons"]] == [f'/rate{{"score": {n}}}' for n in range(1, 6)]
    assert not await service.agent_owns(server.app[DB], 101)
    assert await service.record_rating(server.app[DB], 101, 5)
    assert (await alice.post(f"/agent/api/tickets/{tid}/resolve"))[0] == 409


async def test_transfer_and_hand_back(server: BotServer, consoles: dict[str, Console]) -> None:
    alice, bob = consoles["alice"], consoles["bob"]
    tid = await _ticket(server, 102, "cust-102", lang="en")
    await alice.post(f"/agent/api/tickets/{tid}/claim")
    status, agents = await alice.get("/agent/api/agents")
    assert {a["username"] for a in agents} == {"bob", "sue"}
    assert (await alice.post(f"/agent/api/tickets/{tid}/transfer", {"to": "ghost"}))[0] == 400
    status, moved = await alice.post(f"/agent/api/tickets/{tid}/transfer", {"to": "bob"})
    assert status == 200 and moved["agent"] == "bob"
    assert (await alice.post(f"/agent/api/tickets/{tid}/reply", {"text": "still me"}))[0] == 403
    assert (await bob.post(f"/agent/api/tickets/{tid}/reply", {"text": "Bob here"}))[0] == 200
    status, back = await bob.post(f"/agent/api/tickets/{tid}/return")
    assert status == 200 and back["state"] == "returned"
    got = await _pending_until(server, "cust-102", "assistant")
    assert any("handed the conversation back" in m["text"] for m in got)
    status, canned = await bob.get("/agent/api/canned?lang=en")
    assert status == 200 and len(canned) == 29
    by_key = {i["key"]: i["text"] for i in canned}
    # The canned answer carries the policy numbers, the way the bot states them.
    assert "09:00" in by_key["faq.trading_hours"] and "{" not in "".join(by_key.values())


async def test_live_queue_and_messages_over_websocket(server: BotServer, consoles: dict[str, Console]) -> None:
    alice = consoles["alice"]
    # A page on another site cannot open the agent's live feed with the agent's cookie.
    async with alice.http.get(f"{server.url}/agent/ws", headers={"Origin": "http://evil.example"}) as resp:
        assert resp.status == 403
    async with consoles["anon"].http.get(f"{server.url}/agent/ws") as resp:
        assert resp.status == 401
    async with alice.http.ws_connect(f"{server.url}/agent/ws", origin=server.url) as ws:
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "queue" and first["tickets"] == []
        tid = await _ticket(server, 103, "cust-103", reason="complaint")

        async def next_of(kind: str, pred=lambda e: True) -> dict[str, Any]:  # type: ignore[no-untyped-def]
            while True:
                event = await ws.receive_json(timeout=5)
                if event["type"] == kind and pred(event):
                    return event

        snap = await next_of("queue", lambda e: e["tickets"])
        assert snap["tickets"][0]["id"] == tid and snap["tickets"][0]["reason"] == "complaint"
        await alice.post(f"/agent/api/tickets/{tid}/claim")
        await ws.send_json({"type": "watch", "ticket_id": tid})
        await asyncio.sleep(0.2)
        await service.relay_from_customer(server.app[DB], 103, "你们的服务太慢了")
        event = await next_of("message")
        assert event["ticket_id"] == tid and event["message"]["text"] == "你们的服务太慢了"


async def test_takeover_of_a_recent_conversation(server: BotServer, consoles: dict[str, Console]) -> None:
    from bot.store import conversations

    async with server.app[DB].begin() as s:
        conv = await conversations.get_or_create(s, "rest", "walk-in", "zh")
        await conversations.append_transcript(s, conv.id, "customer", "基金怎么买")
    alice = consoles["alice"]
    status, recent = await alice.get("/agent/api/conversations")
    assert status == 200 and recent[0]["id"] == conv.id and recent[0]["ticket"] is None
    status, t = await alice.post(f"/agent/api/conversations/{conv.id}/takeover")
    assert status == 200 and t["state"] == "assigned" and t["agent"] == "alice" and t["reason"] == "agent"
    assert await service.agent_owns(server.app[DB], conv.id)
    got = await _pending_until(server, "walk-in", "人工客服已接入")
    assert got
    assert (await consoles["bob"].post(f"/agent/api/conversations/{conv.id}/takeover"))[0] == 409


async def test_dashboard_is_for_supervisors_and_csv_is_safe(server: BotServer, consoles: dict[str, Console]) -> None:
    tid = await _ticket(server, 104, "cust-104", reason="complaint", intent="=HYPERLINK(\"http://x\")")
    await consoles["alice"].post(f"/agent/api/tickets/{tid}/claim")
    await consoles["alice"].post(f"/agent/api/tickets/{tid}/reply", {"text": "处理中"})
    await consoles["alice"].post(f"/agent/api/tickets/{tid}/resolve")
    await service.record_rating(server.app[DB], 104, 2)
    assert (await consoles["alice"].get("/agent/dashboard"))[0] == 403
    assert (await consoles["alice"].get("/agent/dashboard.csv"))[0] == 403
    assert (await consoles["anon"].get("/agent/dashboard"))[0] == 302
    assert (await consoles["anon"].get("/agent/dashboard.csv"))[0] == 401
    sue = consoles["sue"]
    status, html = await sue.get("/agent/dashboard")
    assert status == 200 and html.count("<svg") >= 4 and "CSAT" in html and "complaint" in html
    # Server-drawn charts: no script, no asset from another host (no CDN).
    assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
    assert "&quot;http://x&quot;" in html  # the odd intent is escaped, not markup
    assert (await sue.get("/agent/dashboard?from=2026-13-01"))[0] == 400
    status, text = await sue.get("/agent/dashboard.csv")
    assert status == 200
    rows = text.strip().splitlines()
    assert rows[0].startswith("ticket,created_at") and len(rows) == 2
    assert "'=HYPERLINK" in rows[1] and ",=HYPERLINK" not in rows[1]


async def test_supervisors_see_sla_alerts_for_long_waits(server: BotServer, consoles: dict[str, Console]) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from bot.store.db import utcnow
    from bot.store.handoff import HandoffTicketRow

    late = await _ticket(server, 301, "cust-301")
    await _ticket(server, 302, "cust-302")  # just opened: no alert
    async with server.app[DB].begin() as s:  # the first customer has waited 25 minutes
        await s.execute(update(HandoffTicketRow).where(HandoffTicketRow.id == late)
                        .values(created_at=utcnow() - timedelta(minutes=25), staffed=True))
    sue, alice = consoles["sue"], consoles["alice"]
    async with sue.http.ws_connect(f"{server.url}/agent/ws", origin=server.url) as ws:
        snap = await ws.receive_json(timeout=5)
    assert [a["ticket_id"] for a in snap["alerts"]] == [late]
    assert snap["alerts"][0]["kind"] == "waiting" and snap["alerts"][0]["minutes"] >= 25
    async with alice.http.ws_connect(f"{server.url}/agent/ws", origin=server.url) as ws:
        snap = await ws.receive_json(timeout=5)
    assert snap["alerts"] == []  # agents work the queue; supervisors get the escalations
