"""The agent console: login, live queue over WebSocket, ticket actions, as aiohttp routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot import locales
from bot.app import DB, SETTINGS
from bot.handoff import auth, service
from bot.handoff.service import HandoffError
from bot.security.masking import mask_text
from bot.settings import Settings
from bot.store import conversations
from bot.store import handoff as store
from bot.store.db import utcnow
from bot.types import Lang

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "finbot_agent"
CSRF_HEADER = "X-CSRF-Token"
SNAPSHOT_EVERY_S = 3.0

routes = web.RouteTableDef()

ApiHandler = Callable[[web.Request, store.Agent], Awaitable[web.StreamResponse]]


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


def _token(request: web.Request) -> str | None:
    return request.cookies.get(COOKIE)


def _same_origin(request: web.Request) -> bool:
    """Browsers send Origin on WebSocket and POST requests; a foreign one is refused."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.host


def api(*, role: str | None = None, csrf: bool = True) -> Callable[[ApiHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wraps an API handler: session required (401), role (403), CSRF on writes (403)."""

    def wrap(handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def inner(request: web.Request) -> web.StreamResponse:
            token = _token(request)
            agent = await auth.session_agent(request.app[DB], token)
            if agent is None or token is None:
                return _error(401, "login_required")
            if role is not None and agent.role != role:
                return _error(403, "forbidden")
            if csrf and request.method not in ("GET", "HEAD"):
                if not _same_origin(request) or not auth.check_csrf(token, request.headers.get(CSRF_HEADER)):
                    return _error(403, "csrf")
            try:
                return await handler(request, agent)
            except HandoffError as exc:
                return _error(exc.status, exc.reason)

        inner.__name__ = handler.__name__
        inner.__doc__ = handler.__doc__
        return inner

    return wrap


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError):
        raise HandoffError("invalid_json", 400) from None
    if not isinstance(body, dict):
        raise HandoffError("invalid_json", 400)
    return body


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except ValueError:
        raise HandoffError("not_found", 404) from None


# ---------------------------------------------------------------- JSON shapes


def ticket_row_json(t: store.Ticket, me: store.Agent, now: datetime) -> dict[str, Any]:
    end = t.assigned_at if t.state != store.WAITING and t.assigned_at else (t.closed_at or now)
    return {
        "id": t.id,
        "conversation_id": t.conversation_id,
        "channel": t.channel,
        "lang": t.lang,
        "reason": t.reason,
        "intent": t.intent,
        "priority": t.priority,
        "state": t.state,
        "staffed": t.staffed,
        "agent": t.agent,
        "mine": t.agent == me.username,
        "created_at": t.created_at.isoformat(),
        "waited_s": max(0, int((end - t.created_at).total_seconds())),
    }


def ticket_detail_json(
    t: store.Ticket, msgs: list[store.TicketMessage], me: store.Agent, now: datetime
) -> dict[str, Any]:
    data = ticket_row_json(t, me, now)
    data.update(
        entities=t.entities,
        summary=t.summary,
        transcript=t.transcript,
        messages=[service.message_json(m) for m in msgs],
        rating=t.rating,
    )
    return data


async def queue_snapshot(request: web.Request, agent: store.Agent) -> dict[str, Any]:
    db = request.app[DB]
    now = utcnow()
    async with db.begin() as s:
        tickets = await store.open_tickets(s)
    rt = service.runtime(db)
    visible = [t for t in tickets if agent.role == "supervisor" or t.state == store.WAITING or t.agent == agent.username]
    settings = request.app[SETTINGS]
    return {
        "type": "queue",
        "now": now.isoformat(),
        "online": rt.hub.agents_online(),
        "waiting": sum(1 for t in tickets if t.state == store.WAITING),
        "tickets": [ticket_row_json(t, agent, now) for t in visible],
        # SLA breaches are the supervisors' to act on: shown to them above the queue.
        "alerts": sla_alerts(tickets, settings, now) if agent.role == "supervisor" else [],
    }


def sla_alerts(tickets: list[store.Ticket], settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Open tickets past a service limit: waiting too long for an agent, or a complaint whose
    first human answer is later than the complaint first-response limit."""
    alerts: list[dict[str, Any]] = []
    wait_limit = timedelta(minutes=settings.handoff_wait_alert_minutes)
    first_response = timedelta(hours=settings.complaint_first_response_h)
    for t in tickets:
        waited = now - t.created_at
        if t.reason == "complaint" and t.first_reply_at is None and waited > first_response:
            alerts.append({"ticket_id": t.id, "kind": "complaint_first_response",
                           "minutes": int(waited.total_seconds() // 60)})
        elif t.state == store.WAITING and t.staffed and waited > wait_limit:
            alerts.append({"ticket_id": t.id, "kind": "waiting", "minutes": int(waited.total_seconds() // 60)})
    return alerts


# ---------------------------------------------------------------- pages


def _page(name: str) -> web.FileResponse:
    resp = web.FileResponse(STATIC / name)
    _page_headers(resp)
    return resp


def _page_headers(resp: web.StreamResponse) -> None:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"


@routes.get("/agent")
async def console_page(request: web.Request) -> web.StreamResponse:
    """The console page; without a session, the login page."""
    if await auth.session_agent(request.app[DB], _token(request)) is None:
        raise web.HTTPFound("/agent/login")
    return _page("console.html")


@routes.get("/agent/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


@routes.get("/agent/favicon.ico")
async def favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


# ---------------------------------------------------------------- session API


def _set_cookie(request: web.Request, resp: web.Response, token: str) -> None:
    settings = request.app[SETTINGS]
    secure = request.secure or settings.resolved_public_url().startswith("https://")
    resp.set_cookie(
        COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/agent",
        max_age=auth.SESSION_HOURS * 3600,
    )


@routes.post("/agent/api/login")
async def login(request: web.Request) -> web.StreamResponse:
    """{"username", "password"} → 200 {"username", "role", "csrf"} and the session cookie."""
    if not _same_origin(request):
        return _error(403, "csrf")
    try:
        body = await _json_body(request)
    except HandoffError as exc:
        return _error(exc.status, exc.reason)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or len(password) > 1024:
        return _error(400, "username_and_password_required")
    client = request.remote or "unknown"
    try:
        result = await auth.login(request.app[DB], username.strip(), password, client)
    except auth.AuthError as exc:
        resp = _error(exc.status, exc.reason, **({"retry_after": exc.retry_after} if exc.retry_after else {}))
        if exc.retry_after:
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    resp = web.json_response({"username": result.agent.username, "role": result.agent.role, "csrf": result.csrf})
    _set_cookie(request, resp, result.token)
    return resp


@routes.post("/agent/api/logout")
@api()
async def logout(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    await auth.logout(request.app[DB], _token(request) or "")
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/agent")
    return resp


@routes.get("/agent/api/me")
@api()
async def me(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Who is logged in, and the CSRF token the page sends back on every write."""
    return web.json_response(
        {"username": agent.username, "role": agent.role, "csrf": auth.csrf_for(_token(request) or "")}
    )


# ---------------------------------------------------------------- queue and tickets


@routes.get("/agent/api/queue")
@api()
async def queue(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    return web.json_response(await queue_snapshot(request, agent))


async def _fill_summary(request: web.Request, ticket: store.Ticket) -> store.Ticket:
    """Fetch the masked customer summary from the platform the first time an agent looks."""
    if ticket.summary or not ticket.customer_id:
        return ticket
    backend = _backend(request.app)
    if backend is None:
        return ticket
    try:
        customer = await backend.get_customer(ticket.customer_id)
    except Exception:  # the console still works without the summary
        log.warning("handoff: customer summary unavailable for ticket %s", ticket.id)
        return ticket
    summary = service.customer_summary(customer)
    async with request.app[DB].begin() as s:
        await store.set_summary(s, ticket.id, summary)
        return await store.get_ticket(s, ticket.id) or ticket


def _backend(app: web.Application) -> Any:
    try:
        from bot.dialogue import wiring as dialogue_wiring
    except ImportError:  # pragma: no cover
        return None
    key = getattr(dialogue_wiring, "BACKEND", None)
    if key is None:
        return None
    return app.get(key)


@routes.get("/agent/api/tickets/{ticket_id}")
@api()
async def ticket_detail(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Transcript, masked summary and messages; another agent's claimed ticket → 403."""
    tid = _ticket_id(request)
    async with request.app[DB].begin() as s:
        ticket = await store.get_ticket(s, tid)
        if ticket is None:
            return _error(404, "not_found")
        if not service.can_view(ticket, agent):
            return _error(403, "not_your_ticket")
        msgs = await store.messages(s, tid)
        lines = await conversations.recent_transcript(s, ticket.conversation_id, 30)
    ticket = await _fill_summary(request, ticket)
    data = ticket_detail_json(ticket, msgs, agent, utcnow())
    live = _before_claim(ticket, lines)
    if live:  # what the customer and the bot said up to the claim, including while waiting
        data["transcript"] = live
    return web.json_response(data)


def _before_claim(ticket: store.Ticket, lines: list[conversations.TranscriptLine]) -> list[dict[str, Any]]:
    """The conversation's own transcript up to the moment an agent took it (later customer
    lines are relayed into the ticket's messages)."""
    until = ticket.assigned_at or ticket.closed_at
    return [
        {"role": line.role, "text": mask_text(line.text), "at": line.created_at.isoformat()}
        for line in lines
        if until is None or line.created_at <= until
    ]


@routes.post("/agent/api/tickets/{ticket_id}/claim")
@api()
async def claim(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    ticket = await service.claim(request.app[DB], _ticket_id(request), agent)
    return web.json_response(ticket_row_json(ticket, agent, utcnow()))


async def _text(request: web.Request) -> str:
    body = await _json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise HandoffError("text_required", 400)
    if len(text) > request.app[SETTINGS].max_message_chars:
        raise HandoffError("text_too_long", 400)
    return text


@routes.post("/agent/api/tickets/{ticket_id}/reply")
@api()
async def reply(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """{"text"} → sent to the customer on their channel."""
    msg = await service.reply(request.app[DB], _ticket_id(request), agent, await _text(request))
    return web.json_response(service.message_json(msg))


@routes.post("/agent/api/tickets/{ticket_id}/note")
@api()
async def note(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """{"text"} → an internal note, never shown to the customer."""
    msg = await service.note(request.app[DB], _ticket_id(request), agent, await _text(request))
    return web.json_response(service.message_json(msg))


@routes.post("/agent/api/tickets/{ticket_id}/transfer")
@api()
async def transfer(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    body = await _json_body(request)
    to = body.get("to")
    if not isinstance(to, str) or not to:
        return _error(400, "to_required")
    if to == agent.username:
        return _error(400, "same_agent")
    ticket = await service.transfer(request.app[DB], _ticket_id(request), agent, to)
    return web.json_response(ticket_row_json(ticket, agent, utcnow()))


@routes.post("/agent/api/tickets/{ticket_id}/resolve")
@api()
async def resolve(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Closes the ticket; the customer is asked for a 1–5 rating."""
    ticket = await service.resolve(request.app[DB], _ticket_id(request), agent)
    return web.json_response(ticket_row_json(ticket, agent, utcnow()))


@routes.post("/agent/api/tickets/{ticket_id}/return")
@api()
async def return_to_bot(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Hands the conversation back to the bot."""
    ticket = await service.return_to_bot(request.app[DB], _ticket_id(request), agent)
    return web.json_response(ticket_row_json(ticket, agent, utcnow()))


@routes.get("/agent/api/agents")
@api()
async def agents(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Active accounts to transfer to, with whether they are online."""
    async with request.app[DB].begin() as s:
        everyone = await store.list_agents(s)
    online = service.runtime(request.app[DB]).hub.online()
    return web.json_response(
        [
            {"username": a.username, "role": a.role, "online": a.username in online}
            for a in everyone
            if a.active and a.username != agent.username
        ]
    )


@routes.get("/agent/api/canned")
@api()
async def canned(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Canned answers: the FAQ catalog (``faq.<topic>``) with today's policy numbers filled in."""
    # The console is a web page like the channels: it may use the FAQ handler's catalog,
    # so an agent's canned answer says exactly what the bot would say.
    from bot.handlers import faq

    lang: Lang = "en" if request.query.get("lang") == "en" else "zh"
    values = faq.policy_values(request.app[SETTINGS])
    items = []
    for topic in faq.TOPICS:
        title_key = f"faq.title.{topic}"
        title = locales.translate(lang, title_key) if locales.has(lang, title_key) else topic
        try:
            text = faq.answer(lang, topic, values)
        except (KeyError, IndexError, ValueError):
            continue  # a topic whose text is not there yet
        items.append({"key": f"faq.{topic}", "title": title, "text": text})
    return web.json_response(items)


@routes.get("/agent/api/conversations")
@api()
async def recent(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """Recent conversations an agent may pick up (sender ids shortened, never names)."""
    async with request.app[DB].begin() as s:
        convs = await store.recent_conversations(s, 30)
        open_ids = {t.conversation_id: t for t in await store.open_tickets(s)}
    return web.json_response(
        [
            {
                "id": c.id,
                "channel": c.channel,
                "sender": _short(c.sender),
                "lang": c.lang,
                "linked": c.linked,
                "updated_at": c.updated_at.isoformat(),
                "ticket": open_ids[c.id].id if c.id in open_ids else None,
            }
            for c in convs
        ]
    )


def _short(sender: str) -> str:
    return sender if len(sender) <= 6 else f"…{sender[-4:]}"


@routes.post("/agent/api/conversations/{conversation_id}/takeover")
@api()
async def takeover(request: web.Request, agent: store.Agent) -> web.StreamResponse:
    """An agent picks a live conversation: a ticket assigned to them at once."""
    try:
        cid = int(request.match_info["conversation_id"])
    except ValueError:
        return _error(404, "not_found")
    db = request.app[DB]
    async with db.begin() as s:
        conv = await conversations.get_conversation(s, cid)
        if conv is None:
            return _error(404, "not_found")
        lines = await conversations.recent_transcript(s, cid, 20)
    ticket = await service.take_over(
        db, conversation_id=cid, channel=conv.channel, sender=conv.sender, lang=conv.lang, agent=agent,
        transcript=lines, customer_id=conv.customer_id,
    )
    return web.json_response(ticket_row_json(ticket, agent, utcnow()))


# ---------------------------------------------------------------- live queue


@routes.get("/agent/ws")
async def live(request: web.Request) -> web.StreamResponse:
    """Queue snapshots on every change (and every few seconds), messages of the watched ticket."""
    token = _token(request)
    agent = await auth.session_agent(request.app[DB], token)
    if agent is None:
        return _error(401, "login_required")
    if not _same_origin(request):
        return _error(403, "origin")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    rt = service.runtime(request.app[DB])
    sub = rt.hub.subscribe(agent.username)
    watched: dict[str, int | None] = {"ticket": None}
    rt.hub.publish({"type": "queue"})  # others' "online" count changes

    async def reader() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                data = json.loads(msg.data)
                if data.get("type") == "watch":
                    watched["ticket"] = int(data["ticket_id"]) if data.get("ticket_id") is not None else None

    reading = asyncio.create_task(reader())
    try:
        await ws.send_json(await queue_snapshot(request, agent))
        while not ws.closed and not reading.done():
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=SNAPSHOT_EVERY_S)
            except TimeoutError:
                event = {"type": "queue"}
            # A disabled account or logged-out session loses the live feed too.
            if await auth.session_agent(request.app[DB], token) is None:
                break
            if event["type"] == "message":
                if event["ticket_id"] == watched["ticket"] and await _may_view(request, agent, event["ticket_id"]):
                    await ws.send_json(event)
            elif event["type"] == "delivery_failed":
                await ws.send_json(event)
            else:
                await ws.send_json(await queue_snapshot(request, agent))
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        reading.cancel()
        rt.hub.unsubscribe(sub)
        rt.hub.publish({"type": "queue"})
        await ws.close()
    return ws


async def _may_view(request: web.Request, agent: store.Agent, ticket_id: int) -> bool:
    async with request.app[DB].begin() as s:
        ticket = await store.get_ticket(s, ticket_id)
    return ticket is not None and service.can_view(ticket, agent)
