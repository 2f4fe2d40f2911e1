"""One-time file downloads: `publish()` stores an attachment encrypted and returns `/files/<token>`."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

from aiohttp import web

from bot.app import DB, SETTINGS
from bot.channels.common import cookie_sender
from bot.locales import LANGS, translate
from bot.store import channels as store
from bot.store.db import Database
from bot.types import Attachment

__all__ = ["FILE_TTL", "publish", "setup"]

log = logging.getLogger(__name__)

FILE_TTL = timedelta(minutes=10)
_INSTALLED = web.AppKey("files_installed", bool)

_GONE_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>finbot</title></head>
<body style="font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em">
<p>{zh}</p><p>{en}</p></body></html>"""


async def publish(
    app_or_db: web.Application | Database,
    attachment: Attachment,
    sender: str,
    *,
    channel: str = "rest",
) -> str:
    """Store ``attachment`` for ``sender`` and return its one-time download URL.

    Web chat files are bound to the sender's signed cookie and get a relative URL (the page
    is on the same origin); other channels get an absolute URL built from
    ``settings.public_url`` when an app is given (a bare Database gives a relative URL)."""
    token = secrets.token_urlsafe(24)
    if isinstance(app_or_db, Database):
        db, base = app_or_db, ""
    else:
        db = app_or_db[DB]
        base = "" if channel == "webchat" else app_or_db[SETTINGS].resolved_public_url()
    async with db.begin() as session:
        await store.store_file(
            session,
            token=token,
            channel=channel,
            sender=sender,
            filename=attachment.filename,
            content_type=attachment.content_type,
            data=attachment.data,
            ttl=FILE_TTL,
        )
    return f"{base}/files/{token}"


async def download(request: web.Request) -> web.StreamResponse:
    """GET /files/<token>: the file once, within its lifetime; 410 afterwards."""
    token = request.match_info["token"]
    db = request.app[DB]
    async with db.begin() as session:
        owner = await store.peek_file_owner(session, token)
        if owner is None:
            return _gone()
        channel, sender = owner
        # A web chat link only works in the browser it was made for; checking before taking
        # means a leaked link cannot be burnt by someone else either.
        if channel == "webchat" and cookie_sender(request) != sender:
            return web.json_response({"error": "forbidden", "detail": "not your file"}, status=403)
        found = await store.take_file(session, token)
    if found is None:
        return _gone()
    ascii_name = found.filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(found.filename)}"
    # Set as a header: aiohttp's content_type= refuses values with parameters ("; charset=").
    return web.Response(
        body=found.data,
        headers={
            "Content-Type": _safe_content_type(found.content_type),
            "Content-Disposition": disposition,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _safe_content_type(value: str) -> str:
    """The stored type when it is a plain header value; a download otherwise."""
    if not value or any(c in value for c in "\r\n") or "/" not in value:
        return "application/octet-stream"
    return value


def _gone() -> web.Response:
    # Both languages: a link opened outside the chat has no conversation to take it from.
    page = _GONE_PAGE.format(**{lang: html.escape(translate(lang, "channels.file_gone")) for lang in LANGS})
    return web.Response(text=page, status=410, content_type="text/html")


HOUSEKEEPING_EVERY_S = 600.0


async def _housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Expired files (and week-old uncollected pushes) leave the database regularly."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY_S)
            try:
                async with app[DB].begin() as session:
                    removed = await store.delete_expired(session)
                if removed:
                    log.info("channels housekeeping removed %d rows", removed)
            except Exception:  # noqa: BLE001 — try again next round
                log.exception("channels housekeeping failed")

    task = asyncio.get_running_loop().create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    """Add the download route once (both the REST channel and the web chat call this)."""
    if app.get(_INSTALLED):
        return
    app[_INSTALLED] = True
    app.router.add_get("/files/{token}", download)
    app.cleanup_ctx.append(_housekeeping)
