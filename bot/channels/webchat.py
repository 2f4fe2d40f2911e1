"""The web chat: one static page at `/`, messages over a WebSocket (or POST), pushes live or later."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot.app import DB, DELIVERY, SETTINGS
from bot.channels import files
from bot.channels.common import (
    COOKIE_NAME,
    COOKIE_SIGNER,
    CookieSigner,
    converse,
    cookie_sender,
    guess_lang,
    precheck,
    render_buttons,
)
from bot.locales import LANGS, catalog, translate
from bot.store import channels as store
from bot.types import Incoming, Outgoing

__all__ = ["CHANNEL", "HUB", "Hub", "setup"]

log = logging.getLogger(__name__)

CHANNEL: Final = "webchat"
STATIC = Path(__file__).resolve().parent / "static"
COOKIE_MAX_AGE = 365 * 24 * 3600
# A socket also looks for pending messages this often: pushes made by another process.
DRAIN_EVERY_S = 2.0
MAX_WS_MESSAGE = 16 * 1024

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


class Hub:
    """Open WebSockets by sender, so a push wakes the right page at once."""

    def __init__(self) -> None:
        self._wake: dict[str, weakref.WeakSet[asyncio.Event]] = defaultdict(weakref.WeakSet)

    def join(self, sender: str, event: asyncio.Event) -> None:
        self._wake[sender].add(event)

    def leave(self, sender: str, event: asyncio.Event) -> None:
        events = self._wake.get(sender)
        if events is not None:
            events.discard(event)
            if not events:
                del self._wake[sender]

    def connected(self, sender: str) -> bool:
        return bool(self._wake.get(sender))

    def wake(self, sender: str) -> None:
        for event in list(self._wake.get(sender, ())):
            event.set()


HUB = web.AppKey("webchat_hub", Hub)


# ---- rendering ----


async def render(app: web.Application, sender: str, message: Outgoing) -> dict[str, Any]:
    """One Outgoing as the page draws it: text, buttons, and a one-time file link."""
    body: dict[str, Any] = {"type": "bot", "text": message.text, "buttons": render_buttons(message)}
    if message.attachment is not None:
        url = await files.publish(app, message.attachment, sender, channel=CHANNEL)
        body["file"] = {"url": url, "filename": message.attachment.filename}
    return body


async def answer(app: web.Application, sender: str, text: str) -> list[dict[str, Any]]:
    """The rendered replies to one message; an apology if even rendering fails."""
    cleaned, early = precheck(app, text)
    replies = early if early is not None else await converse(
        app, Incoming(channel=CHANNEL, sender=sender, text=cleaned)
    )
    try:
        return [await render(app, sender, m) for m in replies]
    except Exception:  # noqa: BLE001 — e.g. the database is down while publishing a file
        log.exception("webchat render failed")
        return [{"type": "bot", "text": translate(guess_lang(cleaned), "channels.failed"), "buttons": []}]


def _same_origin(request: web.Request) -> bool:
    """A browser names the page that opened a socket or posted: only our own page may, so
    another site cannot talk to the bot as a visitor who has our cookie."""
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser page (curl, tests): the cookie alone decides
    netloc = urlsplit(origin).netloc
    public = urlsplit(request.app[SETTINGS].resolved_public_url()).netloc
    return netloc in {request.host, public}


def _cross_origin() -> web.Response:
    return web.json_response({"error": "cross_origin", "detail": "only the chat page may connect"}, status=403)


# ---- the page ----


def _i18n() -> dict[str, dict[str, str]]:
    prefix = "channels.webchat."
    return {
        lang: {k[len(prefix):]: v for k, v in catalog(lang).items() if k.startswith(prefix)}
        for lang in LANGS
    }


def _set_cookie(request: web.Request, response: web.StreamResponse, sender: str) -> None:
    signer = request.app[COOKIE_SIGNER]
    response.set_cookie(
        COOKIE_NAME,
        signer.sign(sender),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.secure or request.app[SETTINGS].resolved_public_url().startswith("https:"),
        path="/",
    )


def _sender_or_new(request: web.Request) -> tuple[str, bool]:
    sender = cookie_sender(request)
    if sender is not None:
        return sender, False
    return "w-" + secrets.token_urlsafe(16), True


async def page(request: web.Request) -> web.StreamResponse:
    """GET /: the chat page; gives the browser its signed sender cookie on the first visit."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    # "</" cannot occur inside the JSON blob, so the catalog cannot close the script tag.
    blob = json.dumps(_i18n(), ensure_ascii=False).replace("</", "<\\/")
    response = web.Response(
        text=html.replace("{{I18N}}", blob),
        content_type="text/html",
        headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )
    sender, new = _sender_or_new(request)
    if new:
        _set_cookie(request, response, sender)
    return response


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


# ---- messages over fetch (fallback) ----


async def post_message(request: web.Request) -> web.StreamResponse:
    """POST /webchat/message {"message": "..."} → the replies (when the WebSocket is down)."""
    if not _same_origin(request):
        return _cross_origin()
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # deeply nested JSON too
        return web.json_response({"error": "malformed_json", "detail": "the body is not valid JSON"}, status=400)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": "too_large", "detail": "message too large"}, status=413)
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return web.json_response({"error": "missing_message", "detail": "'message' must be a string"}, status=400)
    sender, new = _sender_or_new(request)
    response = web.json_response(await answer(request.app, sender, data["message"]))
    if new:
        _set_cookie(request, response, sender)
    return response


async def get_pending(request: web.Request) -> web.StreamResponse:
    """GET /webchat/messages: pushed messages waiting for this browser, once."""
    sender = cookie_sender(request)
    if sender is None:
        return web.json_response([])
    async with request.app[DB].begin() as session:
        taken = await store.take_pending(session, CHANNEL, sender)
    return web.json_response([m.body for m in taken])


# ---- the WebSocket ----


class _Connection:
    """One open page: answers its messages and forwards its pending pushes.

    A push leaves the database when it is sent, and is held "in flight" until the page acks
    it; a page that closes first gets the unacknowledged ones back as pending, so a socket
    that died silently loses nothing."""

    def __init__(self, app: web.Application, ws: web.WebSocketResponse, sender: str) -> None:
        self.app = app
        self.ws = ws
        self.sender = sender
        self.wake = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.inflight: dict[str, dict[str, Any]] = {}

    async def send(self, bodies: list[dict[str, Any]]) -> None:
        async with self.send_lock:
            for body in bodies:
                await self.ws.send_json(body)

    async def drain(self) -> None:
        """Forward pending pushes now and whenever woken (or every few seconds)."""
        while not self.ws.closed:
            # Cleared before reading: a push landing while we read or send wakes us again.
            self.wake.clear()
            try:
                async with self.app[DB].begin() as session:
                    taken = await store.take_pending(session, CHANNEL, self.sender)
            except Exception:  # noqa: BLE001 — the database is back soon; keep the page open
                log.exception("webchat pending read failed")
                taken = []
            for message in taken:
                key = f"p{message.id}"
                self.inflight[key] = message.body
                try:
                    await self.send([{**message.body, "pushed": True, "id": key}])
                except (ConnectionError, RuntimeError):
                    return  # the page went away: close() puts the in-flight ones back
            try:
                await asyncio.wait_for(self.wake.wait(), DRAIN_EVERY_S)
            except TimeoutError:
                pass

    async def close(self) -> None:
        """Unacknowledged pushes wait for the next visit."""
        bodies, self.inflight = list(self.inflight.values()), {}
        if not bodies:
            return
        try:
            async with self.app[DB].begin() as session:
                for body in bodies:
                    await store.store_pending(session, CHANNEL, self.sender, body)
        except Exception:  # noqa: BLE001 — nothing else to do but say so
            log.exception("webchat: %d pushed messages could not be kept", len(bodies))

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
                if data.get("type") == "ack":
                    self.inflight.pop(str(data.get("id")), None)
                    continue
                text = data["text"]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                await self.send([{"type": "error", "error": "bad_frame"}])
                continue
            await self.send(await answer(self.app, self.sender, text))


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /webchat/ws: the page's live connection; needs the cookie the page set."""
    if not _same_origin(request):
        return _cross_origin()
    sender = cookie_sender(request)
    if sender is None:
        return web.json_response({"error": "no_session", "detail": "load the chat page first"}, status=403)
    ws = web.WebSocketResponse(heartbeat=25, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    conn = _Connection(request.app, ws, sender)
    hub = request.app[HUB]
    hub.join(sender, conn.wake)
    drainer = asyncio.get_running_loop().create_task(conn.drain())
    try:
        await conn.read()
    finally:
        hub.leave(sender, conn.wake)
        drainer.cancel()
        try:
            await drainer
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        await conn.close()
    return ws


# ---- pushes ----


def make_pusher(app: web.Application):  # type: ignore[no-untyped-def]
    """Every push is stored first, then the sender's open pages are woken to fetch it: the
    database decides who delivers (one page, once), across tabs and processes alike."""

    async def push(sender: str, message: Outgoing) -> None:
        body = await render(app, sender, message)
        async with app[DB].begin() as session:
            await store.store_pending(session, CHANNEL, sender, body)
        app[HUB].wake(sender)

    return push


def _derived_secret(keys_file: Path) -> bytes:
    """A cookie key derived from the key ring's never-rotating pseudonym key, so every process
    sharing the key file signs alike and no second secret file is needed."""
    from bot.crypto import KeyRing

    return hashlib.sha256(KeyRing.load_or_create(keys_file).pseudonym("finbot.webchat.cookie").encode()).digest()


async def _load_secret(app: web.Application) -> None:
    settings = app[SETTINGS]
    signer = app[COOKIE_SIGNER]
    if settings.cookie_secret:
        signer.secret = settings.cookie_secret.encode()
    else:
        signer.secret = await asyncio.get_running_loop().run_in_executor(
            None, _derived_secret, settings.keys_file
        )


def setup(app: web.Application) -> None:
    """Routes, the cookie signer, the live hub and the pusher of the web chat."""
    app[COOKIE_SIGNER] = CookieSigner()
    app[HUB] = Hub()
    app.on_startup.append(_load_secret)
    app.router.add_get("/", page)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/webchat/ws", websocket)
    app.router.add_post("/webchat/message", post_message)
    app.router.add_get("/webchat/messages", get_pending)
    app.router.add_static("/webchat/static", STATIC, append_version=False)
    app[DELIVERY].register(CHANNEL, make_pusher(app))
    files.setup(app)
