"""A fake Telegram Bot API server (aiohttp, loopback) that records calls and enforces limits.

It answers what python-telegram-bot 22 calls, so tests run the real PTB ``Application``
against it (``ApplicationBuilder().base_url(fake.base_url).base_file_url(fake.base_file_url)``
or ``Settings(telegram_token=fake.token, telegram_base_url=fake.base_url)``).

Usage::

    async with FakeTelegram() as fake:           # or: fake = FakeTelegram(); await fake.start()
        settings = Settings(telegram_token=fake.token, telegram_base_url=fake.base_url, ...)
        ...
        await fake.send_text(42, "/start 7KQ4M2XD")          # a customer writes (chat id 42)
        [reply] = await fake.wait_sent(42)                  # what the bot sent to chat 42
        await fake.press(42, reply.message_id, reply.buttons[0]["callback_data"])
        fake.block(43)                                      # chat 43 blocked the bot → 403

API (all times in seconds; nothing here talks to the real Telegram):

- ``FakeTelegram(token="123456:TEST-TOKEN", *, overall_limit=30, per_chat_limit=1,
  window_s=1.0, latency_s=0.0)``: a sliding window of ``window_s``: more than
  ``overall_limit`` messages in it overall, or more than ``per_chat_limit`` to one chat,
  answers ``429`` with ``parameters.retry_after`` (whole seconds, ≥ 1, like Telegram).
  ``latency_s`` delays every answer (throughput tests). ``limits_enabled = False`` turns
  the limits off.
- ``start()`` / ``stop()`` / ``async with``; ``url`` (root), ``base_url`` (``…/bot``),
  ``base_file_url`` (``…/file/bot``), ``token``, ``bot_id``.
- Customers: ``text_update(chat_id, text, language_code="zh")`` and
  ``callback_update(chat_id, message_id, data)`` build update dicts (a leading ``/command``
  gets its ``bot_command`` entity); ``await deliver(update)`` hands one to the bot — POSTed
  to the webhook (with its secret header) when ``setWebhook`` was called, else queued for
  ``getUpdates`` (which long-polls up to ``timeout``). ``await send_text(...)`` and
  ``await press(...)`` build and deliver in one step and return the update dict.
  ``deliver()`` returns the webhook's HTTP status (``200`` when queued).
- Failures: ``block(chat_id)`` / ``unblock(chat_id)`` → ``403 "Forbidden: bot was blocked
  by the user"`` on every send to that chat.
- Records: ``calls`` (every request, rate-limited and refused ones too, as ``Call(method,
  params, status, at)``), ``calls_to(method)``, ``messages`` (every message the bot
  sent and Telegram accepted, as ``SentMessage``: chat_id, message_id, text, caption,
  buttons (list of dicts with ``text`` and ``callback_data``), document (bytes),
  file_name, deleted, edits), ``sent(chat_id)``, ``await wait_sent(chat_id, count=1,
  timeout=5)``, ``await wait_calls(method, count=1, timeout=5)``, ``webhook`` (the
  ``setWebhook`` parameters or None), ``commands`` (from ``setMyCommands``, by language),
  ``sent_times`` (monotonic timestamps of accepted sends, for rate assertions).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["Call", "FakeTelegram", "SentMessage"]

SEND_METHODS = frozenset(
    {"sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage", "sendMediaGroup"}
)


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    at: float


@dataclass
class SentMessage:
    chat_id: int
    message_id: int
    text: str | None = None
    caption: str | None = None
    buttons: list[dict[str, Any]] = field(default_factory=list)
    document: bytes | None = None
    file_name: str | None = None
    deleted: bool = False
    edits: list[str] = field(default_factory=list)


class FakeTelegram:
    """See the module docstring for the API."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        overall_limit: int = 30,
        per_chat_limit: int = 1,
        window_s: float = 1.0,
        latency_s: float = 0.0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.overall_limit = overall_limit
        self.per_chat_limit = per_chat_limit
        self.window_s = window_s
        self.latency_s = latency_s
        self.limits_enabled = True
        self.calls: list[Call] = []
        self.messages: list[SentMessage] = []
        self.sent_times: list[float] = []
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[str, list[dict[str, str]]] = {}
        self._blocked: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._window: deque[float] = deque()
        self._chat_window: dict[int, deque[float]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.url = ""

    # ---- lifecycle ----

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self._closing = True
        async with self._changed:  # ends pending long polls now instead of at their timeout
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ---- the customer's side ----

    def block(self, chat_id: int) -> None:
        self._blocked.add(int(chat_id))

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(int(chat_id))

    def _user(self, chat_id: int, language_code: str) -> dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": f"User{chat_id}", "language_code": language_code}

    def text_update(self, chat_id: int, text: str, *, language_code: str = "zh") -> dict[str, Any]:
        message_id = next(self._message_ids[chat_id])
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "g"},
            "from": self._user(abs(chat_id), language_code),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": next(self._update_ids), "message": message}

    def callback_update(self, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        original = next((m for m in self.messages if m.chat_id == chat_id and m.message_id == message_id), None)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self._me(),
        }
        if original is not None:
            if original.text is not None:
                message["text"] = original.edits[-1] if original.edits else original.text
            if original.buttons:
                message["reply_markup"] = {"inline_keyboard": [[b] for b in original.buttons]}
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": f"cb{next(self._update_ids)}",
                "from": self._user(chat_id, "zh"),
                "chat_instance": str(chat_id),
                "message": message,
                "data": data,
            },
        }

    async def deliver(self, update: dict[str, Any]) -> int:
        """POST to the webhook when one is set, else queue for getUpdates."""
        if self.webhook and self.webhook.get("url"):
            headers = {}
            if self.webhook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
            async with aiohttp.ClientSession() as http, http.post(
                self.webhook["url"], json=update, headers=headers
            ) as resp:
                return resp.status
        async with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return 200

    async def send_text(self, chat_id: int, text: str, *, language_code: str = "zh") -> dict[str, Any]:
        update = self.text_update(chat_id, text, language_code=language_code)
        await self.deliver(update)
        return update

    async def press(self, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        update = self.callback_update(chat_id, message_id, data)
        await self.deliver(update)
        return update

    # ---- records ----

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        return [m for m in self.messages if chat_id is None or m.chat_id == int(chat_id)]

    async def wait_sent(self, chat_id: int, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        """The first ``count`` messages sent to ``chat_id`` once there are that many."""
        await self._wait(lambda: len(self.sent(chat_id)) >= count, timeout, f"{count} message(s) to {chat_id}")
        return self.sent(chat_id)[:count]

    async def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        await self._wait(lambda: len(self.calls_to(method)) >= count, timeout, f"{count} {method} call(s)")
        return self.calls_to(method)[:count]

    async def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake Telegram: no {what} within {timeout}s")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    pass

    # ---- the Bot API ----

    def _me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "FinBot",
            "username": "finbot_test_bot",
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params = dict(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    params[key] = {"filename": value.filename}
                else:
                    params[key] = value
        params.update({k: v for k, v in request.query.items() if k not in params})
        for key in ("reply_markup", "allowed_updates", "commands"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params, files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, files = await self._params(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if request.match_info["token"] != self.token:
            return self._record(method, params, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._record(method, params, 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
        if method in SEND_METHODS:
            refusal = self._refuse(int(params.get("chat_id", 0)))
            if refusal is not None:
                return self._record(method, params, refusal["error_code"], refusal)
        try:
            result = await handler(params, files)
        except _ApiError as e:
            return self._record(method, params, e.code, {"ok": False, "error_code": e.code, "description": e.description})
        return self._record(method, params, 200, {"ok": True, "result": result})

    def _record(self, method: str, params: dict[str, Any], status: int, body: dict[str, Any]) -> web.Response:
        self.calls.append(Call(method, params, status, time.monotonic()))
        self._notify()
        return web.json_response(body, status=status)

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    def _refuse(self, chat_id: int) -> dict[str, Any] | None:
        if chat_id in self._blocked:
            return {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if not self.limits_enabled:
            self.sent_times.append(time.monotonic())
            return None
        now = time.monotonic()
        chat = self._chat_window[chat_id]
        for window in (self._window, chat):
            while window and window[0] <= now - self.window_s:
                window.popleft()
        for window, limit in ((self._window, self.overall_limit), (chat, self.per_chat_limit)):
            if len(window) >= limit:
                # limit 0 refuses everything (a test of "still limited after the retries").
                retry = max(1, math.ceil(window[0] + self.window_s - now)) if window else 1
                return {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry}",
                    "parameters": {"retry_after": retry},
                }
        self._window.append(now)
        chat.append(now)
        self.sent_times.append(now)
        return None

    def _message(self, chat_id: int, message_id: int, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "g"},
            "from": self._me(),
            **{k: v for k, v in extra.items() if v is not None},
        }

    def _find(self, params: dict[str, Any]) -> SentMessage:
        chat_id, message_id = int(params.get("chat_id", 0)), int(params.get("message_id", 0))
        for m in self.messages:
            if m.chat_id == chat_id and m.message_id == message_id and not m.deleted:
                return m
        raise _ApiError(400, "Bad Request: message to edit not found")

    @staticmethod
    def _buttons(params: dict[str, Any]) -> list[dict[str, Any]]:
        markup = params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return self._me()

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.webhook and self.webhook.get("url"):
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        timeout = float(params.get("timeout", 0) or 0)
        deadline = time.monotonic() + timeout
        async with self._changed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closing and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
            return self._updates[:limit]

    async def _m_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = int(params["chat_id"])
        text = str(params.get("text", ""))
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        sent = SentMessage(chat_id, next(self._message_ids[chat_id]), text=text, buttons=self._buttons(params))
        self.messages.append(sent)
        return self._message(chat_id, sent.message_id, text=text, reply_markup=params.get("reply_markup"))

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = int(params["chat_id"])
        data = files.get("document")
        if data is None:
            raise _ApiError(400, "Bad Request: there is no document in the request")
        name = params["document"]["filename"]
        caption = params.get("caption")
        if caption is not None and len(caption) > 1024:
            raise _ApiError(400, "Bad Request: message caption is too long")
        sent = SentMessage(
            chat_id, next(self._message_ids[chat_id]), caption=caption, buttons=self._buttons(params),
            document=data, file_name=name,
        )
        self.messages.append(sent)
        document = {
            "file_id": f"doc{sent.message_id}",
            "file_unique_id": f"u{sent.message_id}",
            "file_name": name,
            "file_size": len(data),
        }
        return self._message(chat_id, sent.message_id, document=document, caption=caption)

    async def _m_editMessageText(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        found = self._find(params)
        found.edits.append(str(params.get("text", "")))
        found.buttons = self._buttons(params)
        return self._message(found.chat_id, found.message_id, text=found.edits[-1], reply_markup=params.get("reply_markup"))

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        found = self._find(params)
        found.buttons = self._buttons(params)
        return self._message(found.chat_id, found.message_id, text=found.text, reply_markup=params.get("reply_markup"))

    async def _m_deleteMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        for m in self.messages:
            if m.chat_id == chat_id and m.message_id == message_id:
                m.deleted = True
        # The customer's own messages are not in self.messages; Telegram accepts those too.
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = dict(params)
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = None
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _m_setMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.commands[str(params.get("language_code", ""))] = list(params.get("commands") or [])
        return True

    async def _m_deleteMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.commands.pop(str(params.get("language_code", "")), None)
        return True

    async def _m_getMyCommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return self.commands.get(str(params.get("language_code", "")), [])

    async def _m_close(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True

    async def _m_logOut(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return True


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
