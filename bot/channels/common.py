"""What every channel shares: handing a message to the engine safely, cleaning input, rendering."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from typing import Any, Protocol

from aiohttp import web

from bot.app import SETTINGS
from bot.locales import translate
from bot.types import Incoming, Lang, Outgoing

log = logging.getLogger(__name__)

# C0/C1 control characters except tab and newline, plus bidi overrides that can disguise text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


class Engine(Protocol):
    async def handle(self, msg: Incoming) -> list[Outgoing]: ...


def clean_text(text: str) -> str:
    """Drop control and bidi-override characters, normalise composition (NFC); keep emoji and newlines."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text).strip()


def guess_lang(text: str) -> Lang:
    """The language of a message for the channel's own replies (the engine decides the rest)."""
    return "zh" if _CJK.search(text) else "en"


def engine_of(app: web.Application) -> Engine | None:
    """The dialogue engine if the app has one (bot.dialogue.wiring.ENGINE)."""
    from bot.dialogue import wiring

    key = getattr(wiring, "ENGINE", None)
    if key is None:
        return None
    engine: Engine | None = app.get(key)
    return engine


def precheck(app: web.Application, text: str) -> tuple[str, list[Outgoing] | None]:
    """Clean a customer's text; when the channel itself must answer (too long: it never
    reaches the NLU), the answer comes back instead of going to the engine. An empty text
    goes on: the engine answers it with its menu."""
    cleaned = clean_text(text)
    lang = guess_lang(cleaned)
    limit = app[SETTINGS].max_message_chars
    if len(cleaned) > limit:
        return cleaned, [Outgoing(text=translate(lang, "channels.too_long", limit=limit))]
    return cleaned, None


async def converse(app: web.Application, msg: Incoming) -> list[Outgoing]:
    """The engine's answer to one message; a polite apology instead of any failure."""
    lang = guess_lang(msg.text)
    engine = engine_of(app)
    if engine is None:
        return [Outgoing(text=translate(lang, "channels.unavailable"))]
    try:
        return list(await engine.handle(msg))
    except Exception:  # noqa: BLE001 — the customer gets an apology, the log the type
        # The message text may hold personal data: log only where it came from.
        log.exception("engine failed", extra={"channel": msg.channel})
        return [Outgoing(text=translate(lang, "channels.failed"))]


def render_buttons(message: Outgoing) -> list[dict[str, str]]:
    return [{"title": b.title, "payload": b.payload} for b in message.buttons]


def outgoing_to_json(message: Outgoing) -> dict[str, Any]:
    """A portable form of an Outgoing for the pending table (attachments handled by callers)."""
    return {"text": message.text, "buttons": render_buttons(message)}


# ---- the web chat's signed sender cookie (read by the web chat and by file downloads) ----

COOKIE_NAME = "finbot_chat"


class CookieSigner:
    """HMAC-SHA256 signatures of web chat sender ids; the secret is set when the app starts."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret

    def sign(self, sender: str) -> str:
        if self.secret is None:
            raise RuntimeError("cookie secret not loaded yet")
        mac = hmac.new(self.secret, sender.encode(), hashlib.sha256).hexdigest()
        return f"{sender}.{mac}"

    def verify(self, raw: str | None) -> str | None:
        """The sender id inside a cookie value when its signature is right, else None."""
        if self.secret is None or not raw or "." not in raw:
            return None
        sender, _, mac = raw.rpartition(".")
        good = hmac.new(self.secret, sender.encode(), hashlib.sha256).hexdigest()
        if not sender or not hmac.compare_digest(mac.encode(), good.encode()):
            return None
        return sender


COOKIE_SIGNER = web.AppKey("webchat_cookie_signer", CookieSigner)


def cookie_sender(request: web.Request) -> str | None:
    """The web chat sender id of this browser (from its signed cookie), if any."""
    signer = request.app.get(COOKIE_SIGNER)
    return signer.verify(request.cookies.get(COOKIE_NAME)) if signer is not None else None
