"""The Rasa-compatible REST channel: `POST /webhooks/rest/webhook`, `GET /webhooks/rest/messages`."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from bot.app import DB, DELIVERY, SETTINGS
from bot.channels import files
from bot.channels.common import converse, guess_lang, precheck, render_buttons
from bot.locales import translate
from bot.store import channels as store
from bot.types import Incoming, Outgoing

__all__ = ["CHANNEL", "render", "setup"]

log = logging.getLogger(__name__)

CHANNEL: Final = "rest"
MAX_SENDER_CHARS = 128


def _error(status: int, error: str, detail: str) -> web.Response:
    """A machine-readable refusal: ``{"error": <code>, "detail": <English sentence>}``."""
    return web.json_response({"error": error, "detail": detail}, status=status)


def _authorized(request: web.Request) -> bool:
    token = request.app[SETTINGS].rest_token
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # compare_digest on bytes: a str with non-ASCII characters would raise TypeError.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _unauthorized() -> web.Response:
    resp = _error(401, "unauthorized", "missing or wrong bearer token")
    resp.headers["WWW-Authenticate"] = 'Bearer realm="finbot"'
    return resp


async def render(
    app: web.Application, sender: str, message: Outgoing, *, channel: str = CHANNEL
) -> dict[str, Any]:
    """One Outgoing as a Rasa REST message; an attachment becomes a one-time link line."""
    text = message.text
    if message.attachment is not None:
        url = await files.publish(app, message.attachment, sender, channel=channel)
        line = translate(
            guess_lang(text),
            "channels.download",
            filename=message.attachment.filename,
            url=url,
            minutes=int(files.FILE_TTL.total_seconds() // 60),
        )
        text = f"{text}\n{line}" if text else line
    body: dict[str, Any] = {"recipient_id": sender, "text": text}
    if message.buttons:
        body["buttons"] = render_buttons(message)
    return body


async def webhook(request: web.Request) -> web.StreamResponse:
    """One customer message in, the bot's replies out (a JSON list)."""
    if not _authorized(request):
        return _unauthorized()
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, "too_large", f"body larger than {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too_large", f"body larger than {limit} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deeply nested JSON too
        return _error(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(data, dict):
        return _error(400, "invalid_body", "the body must be a JSON object")
    message, sender = data.get("message"), data.get("sender")
    if not isinstance(message, str):
        return _error(400, "missing_message", "'message' must be a string")
    if not isinstance(sender, str) or not sender.strip():
        return _error(400, "invalid_sender", "'sender' must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS or any(ord(c) < 32 for c in sender):
        return _error(400, "invalid_sender", f"'sender' must be at most {MAX_SENDER_CHARS} printable characters")

    text, early = precheck(request.app, message)
    replies = early if early is not None else await converse(
        request.app, Incoming(channel=CHANNEL, sender=sender, text=text)
    )
    try:
        out = [await render(request.app, sender, m) for m in replies]
    except Exception:  # noqa: BLE001 — e.g. the database is down while publishing a file
        log.exception("rest render failed")
        out = [{"recipient_id": sender, "text": translate(guess_lang(text), "channels.failed")}]
    return web.json_response(out)


async def pending(request: web.Request) -> web.StreamResponse:
    """Messages pushed to ``sender`` since the last call (agent replies, notifications), once;
    at most 100 per call, oldest first (a client with more waiting gets the rest next time)."""
    if not _authorized(request):
        return _unauthorized()
    sender = request.query.get("sender", "")
    if not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        return _error(400, "invalid_sender", "query parameter 'sender' is required")
    try:
        async with request.app[DB].begin() as session:
            taken = await store.take_pending(session, CHANNEL, sender)
    except Exception:  # noqa: BLE001 — never a 5xx: the client polls again
        # Nothing was taken, so nothing is lost: the client gets the messages on a later poll.
        log.exception("rest pending read failed")
        return web.json_response([], headers={"Retry-After": "5"})
    return web.json_response([{**m.body, "recipient_id": sender} for m in taken])


def make_pusher(app: web.Application):  # type: ignore[no-untyped-def]
    """Messages for REST clients wait in the database until the client asks for them."""

    async def push(sender: str, message: Outgoing) -> None:
        body = await render(app, sender, message)
        async with app[DB].begin() as session:
            await store.store_pending(session, CHANNEL, sender, body)

    return push


async def _warn_open(app: web.Application) -> None:
    if not app[SETTINGS].rest_token:
        log.warning("FINBOT_REST_TOKEN is not set: the REST channel accepts anyone (demo only)")


# Rasa's browser widgets call the REST channel from the page of another site. The channel uses
# no cookies (a sender id, and the bearer token when set), so allowing any origin gives a page
# nothing that curl does not already have.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Max-Age": "600",
}


async def preflight(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers=CORS)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _with_cors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        response.headers.update({"Access-Control-Allow-Origin": "*"})
        return response

    wrapped.__doc__ = handler.__doc__
    return wrapped


def setup(app: web.Application) -> None:
    """Routes, the pusher and the start-up warning of the REST channel."""
    app.router.add_post("/webhooks/rest/webhook", _with_cors(webhook))
    app.router.add_get("/webhooks/rest/messages", _with_cors(pending))
    app.router.add_route("OPTIONS", "/webhooks/rest/webhook", preflight)
    app.router.add_route("OPTIONS", "/webhooks/rest/messages", preflight)
    app[DELIVERY].register(CHANNEL, make_pusher(app))
    app.on_startup.append(_warn_open)
    files.setup(app)
