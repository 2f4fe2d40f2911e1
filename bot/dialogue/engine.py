"""The conversation engine: one customer message in, the bot's replies out, state persisted."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import re
import time
import traceback
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text as sa_text

from backend_client.errors import PlatformError, PlatformUnavailable
from bot import locales, metrics
from bot.dialogue import tasks, values
from bot.dialogue.types import Context, Entity, Reply, Turn, Understanding, buttons
from bot.dialogue.values import LINK_CODE
from bot.dialogue.values import link_code as _link_code
from bot.handlers import registry
from bot.security import stepup
from bot.store import conversations as store
from bot.types import Button, Incoming, Lang, Outgoing

if TYPE_CHECKING:
    from backend_client.client import PlatformClient
    from bot.settings import Settings
    from bot.store.db import Database

log = logging.getLogger(__name__)

__all__ = ["Engine", "NLU", "detect_lang", "parse_payload", "LINK_CODE", "clean_text"]


class NLU(Protocol):
    """What the engine needs of bot/nlu_client.py's NLUClient."""

    async def parse(self, text: str) -> Understanding: ...


# --- recognisers that work without the NLU --------------------------------------------------

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_LATIN = re.compile(r"[A-Za-z]")
_PAYLOAD = re.compile(r"^/([A-Za-z_][\w/]*)(\{.*\})?$", re.S)
_CODE = re.compile(r"^\d{6}$")
# A platform id typed alone (D/C + digits): the bot itself tells customers to send it.
_BARE_ID = re.compile(r"^[DdCc]\d{10,20}$")
_PUNCT = re.compile(r"[\s!！?？.。,，~～…'\"“”‘’]+")

FAST_PATHS: dict[str, tuple[str, ...]] = {
    "cancel": ("取消", "算了", "不要了", "不买了", "cancel", "nevermind", "never mind", "stop", "quit"),
    "human_handoff": (
        "转人工", "人工", "人工客服", "找人工", "真人", "客服", "talk to a person", "talk to a human",
        "agent", "human", "human agent", "real person", "speak to a person", "operator",
    ),
    "my_data": ("我的数据", "我的资料", "my data", "show my data", "what do you know about me"),
    "forget_me": ("删除我的数据", "删除我的资料", "忘记我", "forget me", "delete my data", "erase my data"),
    "confirm": ("确认", "确定", "confirm"),
    "resume": ("继续", "接着办", "继续办理", "continue", "resume", "go on"),
    "unlink_account": ("解绑", "解除绑定", "取消绑定", "unlink", "unlink my account", "unlink this chat"),
    "menu": ("菜单", "主菜单", "menu", "main menu"),
    "help": ("帮助", "help me"),
}
_FAST = {_PUNCT.sub("", w.lower()): k for k, words in FAST_PATHS.items() for w in words}
_NEGATED = re.compile(r"^我?(?:不想|不要|不打算|别|先不|不)(?:买|申购|赎回|卖|投诉|导出|办)?了?[啊吧呢哈]?(?:谢谢|谢了)?$")

INTERNAL = {"confirm", "cancel", "resume", "resend_code", "rate", "human", "menu", "start"}

MENU: tuple[tuple[str, str], ...] = (
    ("engine.intent.check_balance", "/check_balance"),
    ("engine.intent.list_products", "/list_products"),
    ("engine.intent.buy_product", "/buy_product"),
    ("engine.intent.redeem_product", "/redeem_product"),
    ("engine.intent.track_transaction", "/track_transaction"),
    ("engine.intent.human_handoff", "/human_handoff"),
)


def clean_text(text: str) -> str:
    """Control and invisible formatting characters out, Unicode normalised, trimmed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _CONTROL.sub(" ", text).replace("\r", " ").replace("\t", " ")
    return text.strip()


def detect_lang(text: str, current: Lang) -> Lang:
    """Any CJK → zh; Latin letters → en; payloads, numbers and codes keep the language."""
    if not text or text.startswith("/") or _CODE.match(text) or _BARE_ID.match(text.replace(" ", "")):
        return current
    link = LINK_CODE.match(text)
    if link:  # the code itself is letters of no language; "link" / "绑定" before it tell
        prefix = (link.group("prefix") or "").lower()
        return "en" if prefix == "link" else "zh" if prefix in ("绑定", "綁定") else current
    if _CJK.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return current


def parse_payload(text: str) -> tuple[str, dict[str, Any]] | None:
    """``/intent`` or ``/intent{"json": "entities"}`` (Rasa's convention) → (intent, entities)."""
    m = _PAYLOAD.match(text)
    if not m:
        return None
    entities: dict[str, Any] = {}
    if m.group(2):
        try:
            loaded = json.loads(m.group(2))
        except ValueError:
            return None
        if not isinstance(loaded, dict):
            return None
        entities = loaded
    return m.group(1), entities


def _understanding(text: str, intent: str, entities: dict[str, Any]) -> Understanding:
    ents = tuple(
        Entity(entity=str(k), value=("true" if v is True else "false" if v is False else str(v)))
        for k, v in entities.items()
        if v is not None
    )
    return Understanding(text=text, intent=intent, confidence=1.0, entities=ents)


class _AlreadyLogged(Exception):
    """A turn failed and was logged with its conversation id; answer with the generic apology."""


class _Budgeted:
    """The platform client with one time budget per turn: each call gets what is left of it.

    The platform promises answers within ``backend_timeout_s``; past the budget the call is
    abandoned as ``PlatformUnavailable`` (the customer hears "try again later" and the task
    stays resumable). Retries inside the client count against the same budget."""

    def __init__(self, backend: PlatformClient, budget_s: float) -> None:
        self._backend = backend
        self._budget_s = budget_s
        self._deadline = 0.0
        self.restart()

    def restart(self) -> None:
        self._deadline = asyncio.get_running_loop().time() + self._budget_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            left = self._deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise PlatformUnavailable("unavailable", "turn budget spent", 0)
            try:
                return await asyncio.wait_for(attr(*args, **kwargs), left)
            except TimeoutError:
                raise PlatformUnavailable("unavailable", "timeout", 0) from None

        return call


class _Clock:
    """The platform's "now", asked once per turn."""

    def __init__(self, backend: PlatformClient) -> None:
        self._backend = backend
        self._value: datetime | None = None

    async def __call__(self) -> datetime:
        if self._value is None:
            self._value = (await self._backend.get_clock()).now
        return self._value


class Engine:
    """Runs conversations. One instance per process; state lives in the database.

    settings: policy values (thresholds, step-up, message cap, timeouts).
    db: the bot's database (conversations, transcripts, order intents).
    backend: the platform client (quotes, challenges, orders).
    nlu: anything with ``async parse(text) -> Understanding`` (bot/nlu_client.py's NLUClient).
    delivery: bot.app.Delivery for messages pushed later (may be None in tests).
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        backend: PlatformClient,
        nlu: NLU,
        delivery: Any = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.backend = backend
        self.nlu = nlu
        self.delivery = delivery
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._lock_users: dict[tuple[str, str], int] = {}
        # Lock connections held at once (PostgreSQL): leaves the rest of the pool for the work.
        self._lock_slots = asyncio.Semaphore(8)
        # Every task definition known before the first message: after a restart that message
        # may be the one-time code of a task in progress, which never goes through route_for.
        registry.routes()

    # ------------------------------------------------------------------ entry point

    async def handle(self, msg: Incoming) -> list[Outgoing]:
        """Answer one customer message. Never raises; replies in the customer's language."""
        key = (msg.channel, msg.sender)
        # One lock per chat so concurrent taps run one after the other; refcounted so the
        # table only holds chats with a message in flight.
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        started = time.monotonic()
        try:
            async with lock, self._chat_lock(msg):
                return await self._handle_safely(msg)
        finally:
            metrics.TURN_SECONDS.labels(channel=msg.channel).observe(time.monotonic() - started)
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key]
                self._locks.pop(key, None)

    @contextlib.asynccontextmanager
    async def _chat_lock(self, msg: Incoming) -> AsyncIterator[None]:
        """Several bot processes on one PostgreSQL database: one turn per chat at a time.

        Optimistic versions alone redo a losing turn, but its platform side effects (an SMS
        code sent twice, so the code the customer reads may not be the one kept) already
        happened. A transaction-scoped advisory lock on its own connection serialises the
        chat across processes and is released by the rollback even if the turn dies.
        """
        if self.db.is_sqlite:  # one process per SQLite file; the asyncio lock is enough
            yield
            return
        digest = hashlib.blake2b(f"{msg.channel}\x00{msg.sender}".encode(), digest_size=8).digest()
        async with self._lock_slots, self.db.engine.connect() as conn:
            await conn.execute(
                sa_text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(digest, "big", signed=True)}
            )
            try:
                yield
            finally:
                await conn.rollback()

    async def _handle_safely(self, msg: Incoming) -> list[Outgoing]:
        try:
            for _attempt in range(3):
                try:
                    return await self._handle_locked(msg)
                except store.StaleState:
                    continue  # another process saved first: read again and redo the turn
            log.error("engine_stale_state", extra={"channel": msg.channel})
        except _AlreadyLogged:
            pass
        except Exception as exc:  # noqa: BLE001 - the customer must never see a traceback
            _log_error("engine_failed", None, exc)
        lang = detect_lang(clean_text(msg.text), "zh")
        return [Outgoing(text=locales.translate(lang, "engine.error.generic"))]

    async def _handle_locked(self, msg: Incoming) -> list[Outgoing]:
        text = clean_text(msg.text)
        # A first message without language (a code, a button) follows the app's language.
        hint: Lang = "en" if (msg.meta or {}).get("language_code", "").lower().startswith("en") else "zh"
        async with self.db.begin() as s:
            conv = await store.get_or_create(s, msg.channel, msg.sender, detect_lang(text, hint))
        lang = detect_lang(text, conv.lang)
        backend = _Budgeted(self.backend, self._budget())
        ctx = Context(
            settings=self.settings,
            backend=backend,  # type: ignore[arg-type]  # the client, with this turn's time budget
            db=self.db,
            lang=lang,
            t=locales.translator(lang),
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            state=conv.state,
            now=_Clock(backend),  # type: ignore[arg-type]
            channel=msg.channel,
            sender=msg.sender,
            verified_at=conv.verified_at,
        )
        ctx.extras["engine"] = self
        ctx.extras["budget"] = backend
        ctx.extras["message"] = msg
        secret = False
        if len(text) > self.settings.max_message_chars:
            replies: Reply = [Outgoing(text=ctx.t("engine.too_long", limit=self.settings.max_message_chars))]
            logged = text[:200] + "…"
        elif await self._agent_owns(conv.id):
            # A one-time or link code is a secret even for our own agents: never relayed.
            shown = "••••••" if _CODE.match(text.replace(" ", "")) or values.link_code(text) else text
            await self._relay(conv.id, shown)
            await self._persist(conv, ctx, shown, [], relayed=True)
            return []
        else:
            logged = text
            replies, secret = await self._guarded(msg, text, ctx)
            if secret:
                logged = "••••••"
        if secret and msg.message_id and replies:
            first = replies[0]
            replies[0] = Outgoing(
                text=first.text,
                buttons=first.buttons,
                attachment=first.attachment,
                delete_message_id=msg.message_id,
            )
        await self._persist(conv, ctx, logged, replies)
        return replies

    async def _guarded(self, msg: Incoming, text: str, ctx: Context) -> tuple[Reply, bool]:
        """Route with a time budget; platform trouble becomes a polite "try again later"."""
        secret_box: list[bool] = [False]
        try:
            # Only platform calls run against the budget (see _Budgeted): database work is
            # never cancelled half-way, which would leave a pooled connection unusable.
            replies = await self._route(msg, text, ctx, secret_box)
        except PlatformUnavailable:
            metrics.BACKEND_FAILURES.labels(operation="turn").inc()
            log.warning("platform_unavailable", extra={"conversation_id": ctx.conversation_id})
            replies = self._try_later(ctx)
        except PlatformError as exc:
            log.info("platform_error", extra={"conversation_id": ctx.conversation_id, "code": exc.code})
            replies = [Outgoing(text=ctx.t("engine.platform_error.generic"))]
        except Exception as exc:
            # Logged here, where the conversation is known; the state of this turn is not saved.
            _log_error("engine_failed", ctx.conversation_id, exc)
            raise _AlreadyLogged from None
        metrics.TURNS.labels(channel=ctx.channel, intent=str(ctx.extras.get("intent", "unknown"))).inc()
        return replies, secret_box[0]

    def _budget(self) -> float:
        """The platform promises answers within backend_timeout_s; past that the customer hears
        "try again later" — within 2.5 s in all, with our own work (tests/reliability).
        Never exactly one attempt's timeout: when both timers fire together, aiohttp turns our
        cancellation into its own TimeoutError and the client retries past the budget."""
        return self.settings.backend_timeout_s + 0.2

    def _try_later(self, ctx: Context) -> Reply:
        reply = Outgoing(text=ctx.t("engine.error.unavailable"))
        if tasks.active(ctx) is not None:
            reply = Outgoing(
                text=ctx.t("engine.error.unavailable_task"),
                buttons=buttons(
                    (ctx.t("engine.button.resume"), "/resume"),
                    (ctx.t("engine.button.cancel"), "/cancel"),
                ),
            )
        return [reply]

    # ------------------------------------------------------------------ routing

    async def _route(self, msg: Incoming, text: str, ctx: Context, secret: list[bool]) -> Reply:
        ctx.extras["reminded"] = bool(ctx.state.pop("reminded", False))
        # Telegram deep link: /start <code> arrives as meta["start_param"].
        start_param = (msg.meta or {}).get("start_param")
        if start_param:
            code = _link_code(start_param.strip())
            if code:
                secret[0] = True
                ctx.extras["intent"] = "link_code"
                return await self._link(code, ctx)
        if not text:
            return [Outgoing(text=ctx.t("engine.empty"), buttons=self._menu(ctx))]

        payload = parse_payload(text)
        if payload is not None:
            ctx.extras["intent"] = payload[0]
            return await self._payload(payload[0], payload[1], text, ctx)

        compact = text.replace(" ", "")
        if _CODE.match(compact) and self._expects_code(ctx):
            secret[0] = True
            ctx.extras["intent"] = "one_time_code"
            return await self._code(compact, ctx)

        code = _link_code(text)
        if code is not None:
            secret[0] = True  # a credential: masked in the transcript, deleted where possible
            ctx.extras["intent"] = "link_code"
            return await self._link(code, ctx)

        fast = _FAST.get(_PUNCT.sub("", text.lower()))
        if fast is None and tasks.active(ctx) is not None and _NEGATED.match(_PUNCT.sub("", text)):
            fast = "cancel"
        if fast:
            ctx.extras["intent"] = fast
        if fast == "cancel":
            return await tasks.cancel(ctx)
        if fast == "confirm" and self._at_confirm(ctx):
            return await tasks.confirm(ctx)
        if fast == "resume" and tasks.active(ctx) is not None:
            return await tasks.resume(ctx)
        if fast == "menu":
            return await self._dispatch(_understanding(text, "menu", {}), ctx)
        if fast in ("human_handoff", "my_data", "forget_me", "unlink_account", "help"):
            return await self._dispatch(_understanding(text, fast, {}), ctx)

        # Bare answers to the task's question ("5000", "短债", "全部", "改成两千") need no NLU.
        if tasks.active(ctx) is not None:
            bare = Understanding(text=text, intent="inform", confidence=1.0)
            filled = await tasks.fill(self._turn(bare, ctx), ctx)
            if filled is not None:
                ctx.extras["intent"] = "inform"
                return filled

        if _BARE_ID.match(compact):
            order = compact[0] in "Dd"
            intent = "track_transaction" if order else "complaint_status"
            ctx.extras["intent"] = intent
            ident = {("order_id" if order else "complaint_id"): compact.upper()}
            return await self._dispatch(_understanding(text, intent, ident), ctx)

        nlu = await self._parse(text, ctx)
        ctx.extras["intent"] = nlu.intent
        if nlu.degraded:
            metrics.NLU_FAILURES.inc()
        if nlu.degraded and tasks.active(ctx) is not None and nlu.entities:
            filled = await tasks.fill(self._turn(nlu, ctx), ctx)
            if filled is not None:
                return filled
        if nlu.degraded:
            reply = [Outgoing(text=ctx.t("engine.nlu_down"), buttons=self._menu(ctx))]
            reminder = tasks.reminder(ctx)
            return reply + ([reminder] if reminder else [])
        low = nlu.intent == "nlu_fallback" or nlu.confidence < self.settings.nlu_confirm_threshold
        if nlu.intent == "out_of_scope" and _close_runner_up(nlu):
            low = True  # "out of scope" with a real intent close behind: ask rather than refuse
        if nlu.intent == "cancel" and nlu.confidence < 0.9 and tasks.active(ctx) is not None:
            low = True  # dropping a task on a guess ("qwerty uiop" reads as cancel) costs an order
        if low:
            if tasks.active(ctx) is not None and nlu.entities:
                filled = await tasks.fill(self._turn(nlu, ctx), ctx)
                if filled is not None:
                    ctx.state["misunderstood"] = 0
                    return filled
            if tasks.active(ctx) is None and nlu.first("product") and {e.entity for e in nlu.entities} <= {"product"}:
                # "短债怎么样": only a product understood, nothing asked → its details
                ctx.state["misunderstood"] = 0
                return await self._dispatch(_understanding(text, "product_info", {"product": nlu.first("product")}), ctx)
            return self._did_you_mean(nlu, ctx)
        ctx.state["misunderstood"] = 0
        return await self._dispatch(nlu, ctx)

    async def _payload(self, intent: str, entities: dict[str, Any], text: str, ctx: Context) -> Reply:
        if intent == "confirm":
            return await tasks.confirm(ctx)
        if intent == "cancel":
            return await tasks.cancel(ctx)
        if intent == "resume":
            if tasks.active(ctx) is None:
                return [Outgoing(text=ctx.t("engine.task.nothing_to_resume"), buttons=self._menu(ctx))]
            return await tasks.resume(ctx)
        if intent == "resend_code":
            return await stepup.resend(ctx)
        if intent == "rate":
            return await self._rate(entities, ctx)
        if intent == "start":
            code = _link_code(str(entities.get("code", "")))
            if code:
                return await self._link(code, ctx)
            intent = "greet"
        if intent == "human":
            intent = "human_handoff"
        return await self._dispatch(_understanding(text, intent, entities), ctx)

    def _expects_code(self, ctx: Context) -> bool:
        if stepup.pending(ctx) is not None:
            return True
        # A six-digit number is an answer (an amount) while a task asks for one; anywhere
        # else it is most likely a one-time code, which must not reach the NLU or the logs.
        return tasks.asking(ctx) is None

    def _at_confirm(self, ctx: Context) -> bool:
        current = tasks.active(ctx)
        return current is not None and current[1].get("stage") in ("confirm", "code", "executing")

    async def _code(self, code: str, ctx: Context) -> Reply:
        outcome = await stepup.check(ctx, code)
        if outcome.status in ("none", "void"):
            done = await tasks.already_done_reply(ctx)
            if done:
                return done
        if outcome.status == "none":
            return [Outgoing(text=ctx.t("engine.stepup.nothing_pending"))]
        if outcome.status != "ok":
            return outcome.reply
        purpose = outcome.purpose
        if purpose.get("task"):
            return await tasks.after_code(ctx, outcome.proof)
        then = purpose.get("then")
        if isinstance(then, dict) and then.get("intent"):
            nlu = _understanding(str(then.get("text") or ""), str(then["intent"]), dict(then.get("entities") or {}))
            return await self._dispatch(nlu, ctx)
        return outcome.reply

    async def _dispatch(self, nlu: Understanding, ctx: Context) -> Reply:
        """Run the intent's handler or task, applying link and step-up policy."""
        intent = nlu.intent
        turn = self._turn(nlu, ctx)
        current = tasks.active(ctx)
        if intent == "cancel":
            return await tasks.cancel(ctx)
        if current is not None:
            stage = current[1].get("stage")
            if intent in ("affirm", "resume") and ctx.extras.get("reminded"):
                return await tasks.resume(ctx)  # "yes" to "shall we continue?"
            if intent == "affirm" and stage in ("confirm", "code", "executing"):
                return await tasks.confirm(ctx)
            if intent == "deny" and stage in ("confirm", "code"):
                return await tasks.cancel(ctx)
        if intent == "inform" and current is None:
            # A bare value with nothing asked: a product means "tell me about it"; otherwise
            # offer what the NLU thought next best, with the value kept in the buttons.
            for entity, wanted in (("order_id", "track_transaction"), ("complaint_id", "complaint_status")):
                if nlu.first(entity):  # "帮我查一下订单D…": an id means "how is it going"
                    return await self._dispatch(
                        Understanding(text=nlu.text, intent=wanted, confidence=nlu.confidence,
                                      entities=nlu.entities), ctx)
            if nlu.first("product") and registry.available("product_info"):
                return await self._dispatch(
                    Understanding(text=nlu.text, intent="product_info", confidence=nlu.confidence,
                                  entities=nlu.entities), ctx)
            if nlu.first("amount") or nlu.first("shares"):
                ents = {e.entity: e.value for e in nlu.entities}
                extra = json.dumps(ents, ensure_ascii=False)
                return [Outgoing(
                    text=ctx.t("engine.what_for_amount"),
                    buttons=(
                        Button(title=ctx.t("engine.intent.buy_product"), payload=f"/buy_product{extra}"),
                        Button(title=ctx.t("engine.intent.redeem_product"), payload=f"/redeem_product{extra}"),
                    ),
                )]
            return self._did_you_mean(nlu, ctx)
        route = registry.route_for(intent)
        if current is not None:
            same_task = route is not None and route.task is not None and (
                (t := registry.task_for(route)) is not None and t.name == current[0].name
            )
            if same_task or intent == "inform" or (route is None and nlu.entities):
                filled = await tasks.fill(turn, ctx)
                if filled is not None:
                    return filled
                if same_task or intent == "inform":
                    return await tasks.resume(ctx)
        if route is None or not registry.available(intent):
            reply = await self._out_of_scope(turn, ctx)
            return await self._with_reminder(reply, ctx, current is not None)
        task = registry.task_for(route)
        if task is not None:
            if task.needs_link and ctx.customer_id is None:
                return self._link_needed(ctx)
            return await tasks.start(task, turn, ctx)
        handler = registry.handler_for(route)
        assert handler is not None  # available() checked it
        if route.needs_link and ctx.customer_id is None:
            return await self._with_reminder(self._link_needed(ctx), ctx, current is not None)
        if route.stepup and ctx.customer_id and stepup.level(route.stepup) == "view":
            if not stepup.recently_verified(ctx, await ctx.now()):
                return await self._view_challenge(route.stepup, nlu, ctx)
        reply = await handler(turn, ctx)
        if not route.question or intent == "goodbye":
            return reply  # only questions are answered "in the middle"; others need no reminder
        return await self._with_reminder(reply, ctx, current is not None and tasks.active(ctx) is not None)

    async def _with_reminder(self, reply: Reply, ctx: Context, had_task: bool) -> Reply:
        if not had_task:
            return reply
        try:
            await values.catalog(ctx)  # so the reminder names the product, not its code
        except PlatformError:
            pass
        reminder = tasks.reminder(ctx)
        if reminder:
            ctx.state["reminded"] = True  # a "yes" to the next question means "continue"
        return reply + ([reminder] if reminder else [])

    async def _view_challenge(self, action: str, nlu: Understanding, ctx: Context) -> Reply:
        entities = {e.entity: e.value for e in nlu.entities}
        spec = stepup.ChallengeSpec(action=action, label=ctx.t(f"engine.action.{action}"))
        intro = Outgoing(text=ctx.t("engine.stepup.view_needed"))
        sent = await stepup.send(
            ctx, spec, uuid.uuid4().hex,
            purpose={"then": {"intent": nlu.intent, "entities": entities, "text": nlu.text}},
        )
        return [intro, *sent] if stepup.pending(ctx) else sent

    def _did_you_mean(self, nlu: Understanding, ctx: Context) -> Reply:
        metrics.NLU_FALLBACKS.inc()
        count = int(ctx.state.get("misunderstood", 0)) + 1
        ctx.state["misunderstood"] = count
        choices: list[Button] = []
        for name, _score in nlu.ranking or ((nlu.intent, nlu.confidence),):
            if name in _NOT_CHOICES or len(choices) >= 2:
                continue
            title = self._intent_title(name, ctx)
            if title and registry.available(name):
                # Keep what the NLU did understand (amount, product ...) in the button.
                ents = {e.entity: e.value for e in nlu.entities}
                payload = f"/{name}" + (json.dumps(ents, ensure_ascii=False) if ents else "")
                choices.append(Button(title=title, payload=payload))
        if count >= 2:  # offer a person, do not force one
            choices.append(Button(title=ctx.t("engine.button.human"), payload="/human_handoff"))
            return [Outgoing(text=ctx.t("engine.did_you_mean_again"), buttons=tuple(choices))]
        if not choices:
            return [Outgoing(text=ctx.t("engine.not_understood"), buttons=self._menu(ctx))]
        return [Outgoing(text=ctx.t("engine.did_you_mean"), buttons=tuple(choices))]

    def _intent_title(self, intent: str, ctx: Context) -> str | None:
        for key in (f"engine.intent.{intent}", f"faq.title.{intent.split('/', 1)[-1]}"):
            if locales.has(ctx.lang, key):
                return ctx.t(key)
        if intent.startswith("faq/") and locales.has(ctx.lang, "engine.intent.faq"):
            return ctx.t("engine.intent.faq")
        return None

    def _menu(self, ctx: Context) -> tuple[Button, ...]:
        return tuple(Button(title=ctx.t(k), payload=p) for k, p in MENU)

    def _link_needed(self, ctx: Context) -> Reply:
        return [Outgoing(text=ctx.t("engine.link.needed"))]

    async def _out_of_scope(self, turn: Turn, ctx: Context) -> Reply:
        route = registry.route_for("out_of_scope")
        handler = registry.handler_for(route) if route else None
        if handler is not None:
            return await handler(turn, ctx)
        return [Outgoing(text=ctx.t("smalltalk.out_of_scope"), buttons=self._menu(ctx))]

    async def _link(self, code: str, ctx: Context) -> Reply:
        from bot.handlers import link

        return await link.link_with_code(code, ctx)

    async def _rate(self, entities: dict[str, Any], ctx: Context) -> Reply:
        try:
            from bot.handoff import service
        except ImportError:
            return [Outgoing(text=ctx.t("engine.rate.thanks"))]
        try:
            score = int(entities.get("score", 0))
        except (TypeError, ValueError):
            score = 0
        ok = await service.record_rating(self.db, ctx.conversation_id, score)
        return [Outgoing(text=ctx.t("engine.rate.thanks" if ok else "engine.rate.nothing"))]

    async def _parse(self, text: str, ctx: Context) -> Understanding:
        try:
            return await self.nlu.parse(text)
        except Exception as exc:  # noqa: BLE001 - an NLU failure must not end the conversation
            _log_error("nlu_failed", ctx.conversation_id, exc)
            return Understanding(text=text, intent="nlu_unavailable", confidence=0.0, degraded=True)
        finally:
            # The NLU has its own timeout; the platform's budget starts after it.
            budget = ctx.extras.get("budget")
            if isinstance(budget, _Budgeted):
                budget.restart()

    def _turn(self, nlu: Understanding, ctx: Context) -> Turn:
        msg: Incoming = ctx.extras["message"]
        return Turn(message=msg, nlu=nlu, lang=ctx.lang)

    # ------------------------------------------------------------------ handoff seams

    async def _agent_owns(self, conversation_id: int) -> bool:
        try:
            from bot.handoff import service
        except ImportError:
            return False
        return await service.agent_owns(self.db, conversation_id)

    async def _relay(self, conversation_id: int, text: str) -> None:
        from bot.handoff import service

        await service.relay_from_customer(self.db, conversation_id, text)

    # ------------------------------------------------------------------ persistence

    async def _persist(
        self, conv: store.Conversation, ctx: Context, customer_line: str, replies: Reply, relayed: bool = False
    ) -> None:
        """Save state (optimistic version check) and the transcript lines in one transaction."""
        erased = bool(ctx.extras.get("erased"))
        async with self.db.begin() as s:
            if erased:
                fresh = await store.get_conversation(s, conv.id)
                version = fresh.state_version if fresh else conv.state_version
                await store.save(
                    s, conv.id, expected_version=version, state={}, lang=ctx.lang, customer_id=None, verified_at=None
                )
                for r in replies:
                    await store.append_transcript(s, conv.id, "bot", r.text)
                return
            await store.save(
                s,
                conv.id,
                expected_version=conv.state_version,
                state=ctx.state,
                lang=ctx.lang,
                customer_id=ctx.customer_id,
                verified_at=ctx.verified_at,
            )
            intent = ctx.extras.get("intent")
            await store.append_transcript(s, conv.id, "customer", _mask(customer_line),
                                          intent=str(intent) if intent else None)
            for r in replies:
                await store.append_transcript(s, conv.id, "bot", r.text)


# Intents never offered as a "did you mean" choice (no action a customer would pick).
_NOT_CHOICES = frozenset(
    {"nlu_fallback", "nlu_unavailable", "inform", "out_of_scope", "affirm", "deny", "goodbye", "thank"}
)


def _close_runner_up(nlu: Understanding) -> bool:
    """A real intent ranked second within reach of the first (half its confidence or more)."""
    if len(nlu.ranking) < 2:
        return False
    name, score = nlu.ranking[1]
    return name not in ("nlu_fallback", "out_of_scope") and score >= nlu.confidence / 2


def _mask(text: str) -> str:
    try:
        from bot.security.masking import mask_text
    except ImportError:
        return text
    return mask_text(text)


def _log_error(event: str, conversation_id: int | None, exc: BaseException) -> None:
    """Log where it failed and the error type, never the message (it may hold customer data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    log.error(event, extra={"conversation_id": conversation_id, "error": type(exc).__name__, "where": where})


Turnish = Callable[[Turn, Context], Awaitable[Reply]]
