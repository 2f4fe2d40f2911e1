"""The Telegram channel: python-telegram-bot 22 in our aiohttp process (polling or our webhook route)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import weakref
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

from aiohttp import web
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app import DB, DELIVERY, SETTINGS
from bot.channels.common import converse, precheck
from bot.channels.errors import (
    ChannelBlocked,
    ChannelError,
    ChannelRateLimited,
    ChannelUnavailable,
    UnknownRecipient,
)
from bot.locales import translate
from bot.settings import Settings
from bot.store import channels as store
from bot.types import Button, Incoming, Lang, Outgoing

__all__ = ["CHANNEL", "TELEGRAM", "TelegramChannel", "setup"]

log = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64  # Telegram's limit for callback_data
LONG_BUTTON_PREFIX = "k:"
ALLOWED_UPDATES = ["message", "callback_query"]
START_RETRY_S = (1, 5, 15, 30, 60)


class TelegramChannel:
    """The PTB Application, its handlers and the pusher; started by the app's cleanup_ctx."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.webhook_mode = bool(settings.telegram_webhook_url)
        # Without a configured secret, one derived from the token keeps strangers out of the
        # webhook route; derived rather than random so that every process behind a balancer
        # registers (setWebhook) and accepts the same one.
        self.secret = settings.telegram_secret or hmac.new(
            (settings.telegram_token or "").encode(), b"finbot telegram webhook", hashlib.sha256
        ).hexdigest()
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.ready = asyncio.Event()
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._starter: asyncio.Task[None] | None = None
        # Telegram allows about one message a second per chat; spacing our own sends avoids
        # a 429 and its retry_after wait (the rate limiter only paces groups and the total).
        rate = settings.telegram_per_chat_per_s
        self._chat_interval = 1.05 / rate if rate > 0 else 0.0  # 5% margin for clock skew
        self._last_sent: dict[int, float] = {}

    # ---- lifecycle ----

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        token = self.settings.telegram_token
        if not token:
            raise ChannelUnavailable(CHANNEL, "no token configured")
        builder = (
            ApplicationBuilder()
            .token(token)
            .rate_limiter(AIORateLimiter(max_retries=2))
            # Updates of different chats run concurrently; one chat's stay in order (_chat_lock).
            .concurrent_updates(64)
        )
        base = self.settings.telegram_base_url
        if base:
            base = base.rstrip("/")
            builder = builder.base_url(base).base_file_url(
                base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file"
            )
        if self.webhook_mode:
            builder = builder.updater(None)
        application = builder.build()
        private = filters.ChatType.PRIVATE  # never talk money in group chats
        application.add_handler(MessageHandler(private & filters.TEXT, self._on_text))
        application.add_handler(MessageHandler(private & ~filters.TEXT, self._on_other))
        application.add_handler(CallbackQueryHandler(self._on_button))
        application.add_error_handler(self._on_error)
        return application

    async def start(self) -> None:
        """Connect to Telegram; retries in the background so the rest of the bot still runs
        when Telegram is unreachable at start-up."""
        self._starter = asyncio.get_running_loop().create_task(self._start_with_retries())
        try:  # the usual case is quick: wait a little so tests and the demo start "ready"
            await asyncio.wait_for(asyncio.shield(self.ready.wait()), 5)
        except TimeoutError:
            log.warning("telegram not reachable yet; retrying in the background")

    async def _start_with_retries(self) -> None:
        for attempt in range(10**6):
            try:
                await self._start_once()
                self.ready.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 — bad token, network: log the kind, retry
                log.error("telegram start failed (%s); retrying", type(e).__name__)
                await self._shutdown_application()
                await asyncio.sleep(START_RETRY_S[min(attempt, len(START_RETRY_S) - 1)])

    async def _start_once(self) -> None:
        application = self._build()
        self.application = application
        await application.initialize()  # getMe: fails fast on a wrong token
        await self._set_commands(application)
        if self.webhook_mode:
            await application.bot.set_webhook(
                url=str(self.settings.telegram_webhook_url),
                secret_token=self.secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            # A webhook left over from another deployment would make getUpdates fail (409).
            await application.bot.delete_webhook()
            updater = application.updater
            if updater is None:  # pragma: no cover - built with an updater above
                raise ChannelUnavailable(CHANNEL, "no updater")
            await updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, timeout=10, poll_interval=0.0
            )
        await application.start()
        log.info("telegram channel started (%s)", "webhook" if self.webhook_mode else "polling")

    async def _set_commands(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        try:
            for lang in ("zh", "en"):
                # Command names are the engine's own payload intents: "/check_balance" typed or
                # picked from the menu is the same message as the button of that name.
                commands = [
                    BotCommand("start", translate(lang, "channels.telegram.cmd_start")),
                    BotCommand("check_balance", translate(lang, "channels.telegram.cmd_balance")),
                    BotCommand("list_products", translate(lang, "channels.telegram.cmd_products")),
                    BotCommand("track_transaction", translate(lang, "channels.telegram.cmd_track")),
                    BotCommand("human", translate(lang, "channels.telegram.cmd_human")),
                    BotCommand("help", translate(lang, "channels.telegram.cmd_help")),
                ]
                await application.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
        except TelegramError as e:  # a menu is a nicety, never a reason not to start
            log.warning("telegram setMyCommands failed (%s)", type(e).__name__)

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            try:
                await self._starter
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        await self._shutdown_application()

    async def _shutdown_application(self) -> None:
        application, self.application = self.application, None
        self.ready.clear()
        if application is None:
            return
        try:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            await application.shutdown()
        except Exception as e:  # noqa: BLE001 — shutting down: nothing more to do
            log.warning("telegram shutdown: %s", type(e).__name__)

    # ---- incoming ----

    def _lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = asyncio.Lock()
            self._chat_locks[chat_id] = lock
        return lock

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text message or command: to the engine, replies back to the chat."""
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or message.text is None:
            return
        text = message.text
        meta: dict[str, str] = {}
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            command = command.split("@", 1)[0]  # "/start@finbot_bot" in some clients
            text = f"{command} {rest}".strip()
            if command == "/start" and rest.strip():
                meta["start_param"] = rest.strip()
        user = update.effective_user
        if user is not None and user.language_code:
            meta["language_code"] = user.language_code
        await self._turn(chat.id, text, message_id=str(message.message_id), meta=meta)

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, stickers, voice...: say politely that only text is understood."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None:
            return
        lang = _lang_of(user.language_code if user is not None else None)
        await self._send_safely(chat.id, Outgoing(text=translate(lang, "channels.not_text")))

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline keyboard press: answer it, mark the choice, send its payload as a message."""
        query = update.callback_query
        if query is None:
            return
        try:
            await query.answer()
        except TelegramError:
            pass  # the spinner stops by itself; the choice still counts
        message = query.message
        chat_id = message.chat.id if message is not None else (query.from_user.id if query.from_user else None)
        if chat_id is None or not query.data:
            return
        if message is not None and message.chat.type != "private":
            return
        payload: str | None = query.data
        if query.data.startswith(LONG_BUTTON_PREFIX):
            async with self.app[DB].begin() as session:
                payload = await store.button_payload(session, query.data)
        if payload is None:
            lang = _lang_of(query.from_user.language_code if query.from_user else None)
            await self._send_safely(chat_id, Outgoing(text=translate(lang, "channels.button_expired")))
            return
        await self._mark_choice(query, message)
        await self._turn(chat_id, payload, message_id=None, meta={"button": "1"})

    async def _mark_choice(self, query: Any, message: Any) -> None:
        """Replace the keyboard by the chosen title, so a second press cannot happen."""
        title = None
        markup = getattr(message, "reply_markup", None)
        for row in getattr(markup, "inline_keyboard", ()) or ():
            for button in row:
                if button.callback_data == query.data:
                    title = button.text
        text = getattr(message, "text", None)
        try:
            if text and title:
                await query.edit_message_text(text=f"{text}\n\n› {title}")
            elif markup is not None:
                await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError:
            pass  # old message or unchanged: the press itself still counts

    async def _turn(self, chat_id: int, text: str, *, message_id: str | None, meta: dict[str, str]) -> None:
        async with self._lock(chat_id):
            cleaned, early = precheck(self.app, text)
            replies = early if early is not None else await converse(
                self.app,
                Incoming(channel=CHANNEL, sender=str(chat_id), text=cleaned, message_id=message_id, meta=meta),
            )
            to_delete = {m.delete_message_id for m in replies if m.delete_message_id}
            for reply in replies:
                await self._send_safely(chat_id, reply)
            for mid in to_delete:
                await self._delete(chat_id, mid)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Only the kind of error: updates hold customers' messages and must not reach logs.
        error = context.error
        log.error("telegram handler error: %s", type(error).__name__ if error else "unknown")

    # ---- outgoing ----

    async def _keyboard(self, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        rows = []
        for b in buttons:
            data = b.payload
            if len(data.encode()) > MAX_CALLBACK_BYTES or data.startswith(LONG_BUTTON_PREFIX):
                data = LONG_BUTTON_PREFIX + secrets.token_urlsafe(12)
                async with self.app[DB].begin() as session:
                    await store.save_button(session, data, b.payload)
            rows.append([InlineKeyboardButton(b.title[:64], callback_data=data)])
        return InlineKeyboardMarkup(rows)

    async def _pace(self, chat_id: int) -> None:
        loop = asyncio.get_running_loop()
        last = self._last_sent.get(chat_id)
        if last is not None:
            delay = last + self._chat_interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    def _sent(self, chat_id: int) -> None:
        # Counted from the answer, not the request: Telegram's clock started in between.
        loop = asyncio.get_running_loop()
        self._last_sent[chat_id] = loop.time()
        if len(self._last_sent) > 50_000:  # bounded memory: forget chats quiet for a minute
            cutoff = loop.time() - 60
            self._last_sent = {c: t for c, t in self._last_sent.items() if t > cutoff}

    async def send(self, chat_id: int, message: Outgoing) -> None:
        """Send one Outgoing; Telegram's refusals become typed ChannelErrors."""
        application = self.application
        if application is None or not self.ready.is_set():
            raise ChannelUnavailable(CHANNEL, "telegram is not connected")
        bot = application.bot
        try:
            markup = await self._keyboard(message.buttons)
            text = message.text
            if message.attachment is not None:
                caption = text if len(text) <= MAX_CAPTION else None
                if caption is None and text:
                    for chunk in _chunks(text, MAX_TEXT):
                        await self._pace(chat_id)
                        await bot.send_message(chat_id, chunk)
                        self._sent(chat_id)
                await self._pace(chat_id)
                await bot.send_document(
                    chat_id,
                    document=InputFile(message.attachment.data, filename=message.attachment.filename),
                    caption=caption or None,
                    reply_markup=markup,
                )
                self._sent(chat_id)
                return
            chunks = _chunks(text, MAX_TEXT)
            for i, chunk in enumerate(chunks):
                await self._pace(chat_id)
                await bot.send_message(chat_id, chunk, reply_markup=markup if i == len(chunks) - 1 else None)
                self._sent(chat_id)
        except Forbidden as e:
            raise ChannelBlocked(CHANNEL, "the customer blocked the bot") from e
        except RetryAfter as e:
            raise ChannelRateLimited(CHANNEL, _seconds(e.retry_after)) from e
        except BadRequest as e:
            if "chat not found" in e.message.lower():
                raise UnknownRecipient(CHANNEL, "chat not found") from e
            raise ChannelError(CHANNEL, f"bad request: {e.message}") from e
        except (TimedOut, NetworkError) as e:
            raise ChannelUnavailable(CHANNEL, type(e).__name__) from e
        except TelegramError as e:
            raise ChannelError(CHANNEL, type(e).__name__) from e

    async def _send_safely(self, chat_id: int, message: Outgoing) -> None:
        """Replies within a turn: a failure is logged, the next update still runs."""
        try:
            await self.send(chat_id, message)
        except ChannelError as e:
            log.warning("telegram reply not delivered: %s", e.reason)

    async def _delete(self, chat_id: int, message_id: str) -> None:
        """Remove the customer's one-time code from the chat history (best effort)."""
        if self.application is None:
            return
        try:
            await self.application.bot.delete_message(chat_id, int(message_id))
        except (TelegramError, ValueError) as e:
            log.info("telegram: could not delete a code message (%s)", type(e).__name__)

    async def push(self, sender: str, message: Outgoing) -> None:
        """The pusher registered in app[DELIVERY]: agent replies and notifications."""
        try:
            chat_id = int(sender)
        except ValueError:
            raise UnknownRecipient(CHANNEL, "not a Telegram chat id") from None
        await self.send(chat_id, message)

    # ---- webhook route ----

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        """POST /telegram/webhook: Telegram's updates, accepted only with our secret header."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.json_response({"error": "forbidden", "detail": "bad secret token"}, status=403)
        application = self.application
        if application is None or not self.ready.is_set():
            # Telegram retries non-2xx answers later: nothing is lost while we start.
            return web.json_response({"error": "starting", "detail": "try again"}, status=503)
        try:
            data = await request.json()
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError, RecursionError):
            return web.json_response({"error": "malformed_update", "detail": "not an Update"}, status=400)
        if update is None:
            return web.json_response({"error": "malformed_update", "detail": "not an Update"}, status=400)
        await application.update_queue.put(update)
        return web.json_response({"ok": True})


def _chunks(text: str, size: int) -> list[str]:
    """Split a long text on line breaks where possible (Telegram refuses > 4096 chars)."""
    if len(text) <= size:
        return [text] if text else []
    out: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > size // 2 else size
        out.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        out.append(text)
    return out


def _lang_of(language_code: str | None) -> Lang:
    """Telegram's client language for our own short notices (the engine decides the rest)."""
    return "en" if (language_code or "").startswith("en") else "zh"


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


TELEGRAM = web.AppKey("telegram_channel", TelegramChannel)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    channel = app[TELEGRAM]
    await channel.start()
    yield
    await channel.stop()


def setup(app: web.Application) -> None:
    """With a token: the PTB application in a cleanup_ctx, the webhook route, the pusher."""
    settings = app[SETTINGS]
    if not settings.telegram_token:

        async def not_configured(sender: str, message: Outgoing) -> None:
            raise ChannelUnavailable(CHANNEL, "telegram is not configured (FINBOT_TELEGRAM_TOKEN)")

        app[DELIVERY].register(CHANNEL, not_configured)
        return
    channel = TelegramChannel(app, settings)
    app[TELEGRAM] = channel
    app[DELIVERY].register(CHANNEL, channel.push)
    if channel.webhook_mode:
        app.router.add_post(WEBHOOK_PATH, channel.webhook)
    app.cleanup_ctx.append(_lifecycle)
