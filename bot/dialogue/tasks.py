"""Multi-step tasks: slot filling → platform quote → summary → confirm → step-up → execute once.

A task is a ``TaskDef`` registered in ``bot/handlers/registry.py``. The engine calls the driver
functions below; the task's own functions only talk to the platform and build replies:

- ``Slot``: one piece of information to collect. ``extract(understanding, ctx, slots)`` returns
  the value found in this message (entity or bare value) or ``None``; ``ask(ctx, slots)`` asks
  for it. Only missing slots are asked, in order; any message may fill or correct any slot.
- ``prepare(ctx, slots) -> Prepared``: the platform's quote. ``Prepared.ok=False`` ends the task
  with its reply (e.g. a risk mismatch); otherwise the reply is the summary with disclosure and
  the customer gets 确认/取消 buttons. ``Prepared.challenge`` names the step-up code to ask for
  after the confirm (``None``: no code).
- ``execute(ctx, slots, data, idempotency_key, proof) -> Executed``: does it, exactly once per
  idempotency key (the ``order_intents`` table guards double taps, repeated codes, restarts).
  ``proof`` holds the verified challenge (``challenge_id``, ``code``) when a code was needed.
- ``describe(ctx, slots) -> str``: a short line ("buy Short-term Bond ¥5,000.00") for the
  reminder shown after a question answered in the middle of the task.

The task's state lives in ``ctx.state["task"]`` (JSON-able), so a restart resumes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend_client.errors import PlatformError, PlatformUnavailable
from bot.dialogue.types import Context, Reply, Turn, Understanding, buttons
from bot.security import stepup
from bot.security.stepup import ChallengeSpec
from bot.store import conversations as store
from bot.types import Outgoing

log = logging.getLogger(__name__)

Extract = Callable[[Understanding, Context, dict[str, Any]], Awaitable[Any | None]]
Ask = Callable[[Context, dict[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Slot:
    """One value a task needs. ``required(slots)`` lets a slot depend on others."""

    name: str
    extract: Extract
    ask: Ask
    required: Callable[[dict[str, Any]], bool] = lambda _slots: True


@dataclass(frozen=True, slots=True)
class Prepared:
    """The platform's quote for the collected slots."""

    reply: Reply
    data: dict[str, Any] = field(default_factory=dict)  # JSON-able; kept and given to execute
    ok: bool = True  # False: the task cannot go on (risk mismatch ...); it ends after the reply
    challenge: ChallengeSpec | None = None  # the one-time code to ask for after the confirm
    # Set with ok=False to keep the task and ask this slot again (amount below the minimum ...).
    retry_slot: str | None = None


@dataclass(frozen=True, slots=True)
class Executed:
    """What execute did: the reply and, for orders, the platform's order id."""

    reply: Reply
    order_id: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskDef:
    """A multi-step task. ``name`` is also the ``order_intents.kind`` of what it executes."""

    name: str
    slots: tuple[Slot, ...]
    prepare: Callable[[Context, dict[str, Any]], Awaitable[Prepared]]
    execute: Callable[
        [Context, dict[str, Any], dict[str, Any], str, dict[str, Any]], Awaitable[Executed]
    ]
    describe: Callable[[Context, dict[str, Any]], str]
    needs_link: bool = True
    confirm: bool = True  # show the summary with 确认/取消 before the code / execution
    audit_kind: str | None = "order_placed"  # audit event written after execute (None: none)


# ---------------------------------------------------------------------------------------------
# Registry of task definitions (filled by bot/handlers/registry.py).

_TASKS: dict[str, TaskDef] = {}


def register_task(task: TaskDef) -> None:
    _TASKS[task.name] = task


def get_task(name: str) -> TaskDef | None:
    return _TASKS.get(name)


def active(ctx: Context) -> tuple[TaskDef, dict[str, Any]] | None:
    """The task in progress, if any (a task whose definition vanished is dropped)."""
    raw = ctx.state.get("task")
    if not isinstance(raw, dict):
        return None
    task = _TASKS.get(str(raw.get("name")))
    if task is None:
        ctx.state.pop("task", None)
        return None
    return task, raw


def confirm_buttons(ctx: Context) -> Outgoing:
    return Outgoing(
        text=ctx.t("engine.task.confirm_prompt"),
        buttons=buttons(
            (ctx.t("engine.button.confirm"), "/confirm"), (ctx.t("engine.button.cancel"), "/cancel")
        ),
    )


# ---------------------------------------------------------------------------------------------
# Driver: the engine calls these.


async def start(task: TaskDef, turn: Turn, ctx: Context) -> Reply:
    """Begin ``task`` (replacing any other), taking whatever this message already says."""
    prefix: Reply = []
    current = active(ctx)
    if current is not None and current[1].get("stage") == "executing":
        return await execute_once(ctx)  # an order on its way is finished before anything new
    if current is not None and current[0].name != task.name:
        prefix.append(Outgoing(text=ctx.t("engine.task.replaced", what=current[0].describe(ctx, current[1]["slots"]))))
    if current is not None:
        stepup.void(ctx)
    ctx.state["task"] = {"name": task.name, "slots": {}, "stage": "collect"}
    await _absorb(task, ctx.state["task"], turn.nlu, ctx)
    return prefix + await advance(ctx)


async def fill(turn: Turn, ctx: Context) -> Reply | None:
    """Take slot values (answers or corrections) from this message; ``None`` when it has none."""
    current = active(ctx)
    if current is None:
        return None
    task, raw = current
    if raw.get("stage") == "executing":
        return None  # nothing may change once the order is on its way
    changed = await _absorb(task, raw, turn.nlu, ctx)
    if not changed:
        return None
    prefix: Reply = []
    was = raw.get("stage")
    if was in ("confirm", "code"):
        # A correction after the summary: re-quote with a fresh key; a code already sent is void.
        if stepup.void(ctx):
            prefix.append(Outgoing(text=ctx.t("engine.task.code_voided")))
        raw["stage"] = "collect"
        raw.pop("quote", None)
        raw.pop("idem", None)
        prefix.insert(0, Outgoing(text=ctx.t("engine.task.updated")))
    return prefix + await advance(ctx)


async def advance(ctx: Context) -> Reply:
    """Ask for the next missing slot, or quote and show the summary with confirm buttons."""
    current = active(ctx)
    if current is None:
        return []
    task, raw = current
    slots = raw["slots"]
    for slot in task.slots:
        if slot.required(slots) and slots.get(slot.name) is None:
            raw["stage"] = "collect"
            raw["asking"] = slot.name
            return await slot.ask(ctx, slots)
    raw.pop("asking", None)
    prepared = await task.prepare(ctx, slots)
    if not prepared.ok and prepared.retry_slot and _asks(task, prepared.retry_slot):
        slots[prepared.retry_slot] = None
        raw["stage"] = "collect"
        raw["asking"] = prepared.retry_slot
        slot = next(s for s in task.slots if s.name == prepared.retry_slot)
        return [*prepared.reply, *await slot.ask(ctx, slots)]
    if not prepared.ok:
        ctx.state.pop("task", None)
        return prepared.reply
    raw["quote"] = prepared.data
    raw["idem"] = uuid.uuid4().hex
    raw["challenge"] = _spec_to_json(prepared.challenge)
    if task.confirm:
        raw["stage"] = "confirm"
        return [*prepared.reply, confirm_buttons(ctx)]
    return prepared.reply + await confirm(ctx)


async def confirm(ctx: Context) -> Reply:
    """The customer tapped 确认: ask for the bound one-time code, or execute directly."""
    current = active(ctx)
    if current is None:
        return await _after_done(ctx) or [Outgoing(text=ctx.t("engine.task.nothing_to_confirm"))]
    task, raw = current
    stage = raw.get("stage")
    if stage == "collect":
        return await advance(ctx)
    if stage == "code":
        pending = stepup.pending(ctx)
        if pending is not None and not await _expired(ctx, pending):
            # A double-tapped confirm: the code is already on its way, do not send another.
            return [Outgoing(text=ctx.t("engine.stepup.code_already_sent"))]
        stepup.void(ctx)  # the code expired (or was spent): a confirm asks for a new one
    if stage == "executing":
        return await execute_once(ctx)
    spec = _spec_from_json(raw.get("challenge"))
    if spec is None:
        return await execute_once(ctx)
    raw["stage"] = "code"
    reply = await stepup.send(ctx, spec, raw["idem"], purpose={"task": task.name})
    if ctx.state.get("challenge") is None:  # locked or refused: the task cannot go on
        ctx.state.pop("task", None)
    return reply


async def after_code(ctx: Context, proof: dict[str, Any]) -> Reply:
    """The code for this task was verified: execute it."""
    current = active(ctx)
    if current is None:
        return await _after_done(ctx) or []
    current[1]["proof"] = proof
    return await execute_once(ctx)


async def execute_once(ctx: Context) -> Reply:
    """Execute the confirmed task exactly once for its idempotency key."""
    current = active(ctx)
    if current is None:
        return []
    task, raw = current
    key: str = raw["idem"]
    quote: dict[str, Any] = raw.get("quote") or {}
    customer = ctx.customer_id or ""
    async with ctx.db.begin() as s:
        created, intent = await store.claim_order_intent(
            s,
            idempotency_key=key,
            conversation_id=ctx.conversation_id,
            customer_id=customer,
            kind=task.name,
            product=quote.get("product"),
            amount=_dec(quote.get("amount")),
            shares=_dec(quote.get("shares")),
        )
    if not created and intent.status == "done":
        ctx.state.pop("task", None)
        return [Outgoing(text=ctx.t("engine.task.already_submitted", order_id=intent.order_id or "-"))]
    if not created and intent.status == "failed":
        ctx.state.pop("task", None)
        return [Outgoing(text=ctx.t("engine.task.already_failed"))]
    # created, or pending from an interrupted attempt: the platform dedupes by the same key.
    raw["stage"] = "executing"
    try:
        done = await task.execute(ctx, raw["slots"], quote, key, raw.get("proof") or {})
    except PlatformUnavailable:
        raise  # the engine says "try again later"; the task stays resumable at "executing"
    except PlatformError as exc:
        async with ctx.db.begin() as s:
            await store.finish_order_intent(
                s, key, status="failed", order_id=None, result={"code": exc.code}
            )
        ctx.state.pop("task", None)
        log.info("task_failed", extra={"conversation_id": ctx.conversation_id, "code": exc.code})
        return [Outgoing(text=_platform_error_text(ctx, exc))]
    async with ctx.db.begin() as s:
        await store.finish_order_intent(
            s, key, status="done", order_id=done.order_id, result=done.result or None
        )
        if task.audit_kind:
            await _audit(
                s,
                task.audit_kind,
                ctx,
                {"task": task.name, "order_id": done.order_id, "idempotency_key": key},
            )
    ctx.state.pop("task", None)
    ctx.state["last_done"] = {"idem": key, "order_id": done.order_id, "task": task.name}
    return done.reply


async def cancel(ctx: Context) -> Reply:
    """Drop the task at any step (no order is placed; a code already sent becomes void)."""
    current = active(ctx)
    stepup.void(ctx)
    if current is None:
        return [Outgoing(text=ctx.t("engine.task.nothing_to_cancel"))]
    task, raw = current
    if raw.get("stage") == "executing":
        return [Outgoing(text=ctx.t("engine.task.too_late_to_cancel"))]
    ctx.state.pop("task", None)
    try:
        from bot.dialogue import values

        await values.catalog(ctx)  # so the line names the product ("均衡混合"), not its code
    except PlatformError:
        pass
    # "No order was placed" only where an order was on the table (not a complaint or an export).
    key = "engine.task.cancelled" if task.name in ("buy", "redeem") else "engine.task.cancelled_other"
    return [Outgoing(text=ctx.t(key, what=task.describe(ctx, raw["slots"])))]


async def resume(ctx: Context) -> Reply:
    """Pick the task up where it was (after a question, an outage or a restart)."""
    current = active(ctx)
    if current is None:
        return []
    task, raw = current
    stage = raw.get("stage")
    if stage == "executing":
        return await execute_once(ctx)
    if stage == "code":
        if ctx.state.get("challenge"):
            return [Outgoing(text=ctx.t("engine.stepup.enter_code"))]
        raw["stage"] = "confirm"
    if stage in ("confirm", "code"):
        # The quote may be stale after a pause: quote again before asking to confirm.
        raw["stage"] = "collect"
    return await advance(ctx)


def reminder(ctx: Context) -> Outgoing | None:
    """The "we were in the middle of ..." line added after answering a question mid-task."""
    current = active(ctx)
    if current is None:
        return None
    task, raw = current
    return Outgoing(
        text=ctx.t("engine.task.reminder", what=task.describe(ctx, raw["slots"])),
        buttons=buttons(
            (ctx.t("engine.button.resume"), "/resume"), (ctx.t("engine.button.cancel"), "/cancel")
        ),
    )


def asking(ctx: Context) -> str | None:
    """The slot being asked for right now (so the engine can read bare values for it)."""
    current = active(ctx)
    if current is None or current[1].get("stage") != "collect":
        return None
    return current[1].get("asking")


async def _after_done(ctx: Context) -> Reply | None:
    """A second confirm or code after execution: say it was already submitted.

    Also covers a task whose execution another bot process finished (its state save lost
    the race): the order intent of the task's key is the truth."""
    current = active(ctx)
    keys: list[str] = []
    if current is not None and current[1].get("idem"):
        keys.append(str(current[1]["idem"]))
    last = ctx.state.get("last_done")
    if isinstance(last, dict) and last.get("idem"):
        keys.append(str(last["idem"]))
    for key in keys:
        async with ctx.db.begin() as s:
            intent = await store.get_order_intent(s, key)
        if intent is None:
            continue
        if intent.status == "pending":
            return [Outgoing(text=ctx.t("engine.task.in_progress"))]
        if intent.status == "done":
            if current is not None and current[1].get("idem") == key:
                ctx.state.pop("task", None)
                ctx.state["last_done"] = {"idem": key, "order_id": intent.order_id, "task": intent.kind}
            # Orders say "order"; a complaint or an export names its own reference.
            key_name = "already_submitted" if intent.kind in ("buy", "redeem") else "already_done"
            return [Outgoing(text=ctx.t(f"engine.task.{key_name}", order_id=intent.order_id or "-"))]
    return None


async def already_done_reply(ctx: Context) -> Reply | None:
    return await _after_done(ctx)


async def _expired(ctx: Context, challenge: dict[str, Any]) -> bool:
    try:
        return datetime.fromisoformat(str(challenge["expires_at"])) <= await ctx.now()
    except (KeyError, ValueError):
        return True


def _asks(task: TaskDef, name: str) -> bool:
    return any(s.name == name for s in task.slots)


async def _absorb(task: TaskDef, raw: dict[str, Any], nlu: Understanding, ctx: Context) -> bool:
    """Put every slot value this message holds into the task; True when something changed."""
    changed = False
    outage: PlatformUnavailable | None = None
    slots: dict[str, Any] = raw["slots"]
    for slot in task.slots:
        try:
            value = await slot.extract(nlu, ctx, slots)
        except PlatformUnavailable as exc:  # keep what the other slots found in this message
            outage = exc
            continue
        if value is not None and slots.get(slot.name) != value:
            slots[slot.name] = value
            changed = True
    if outage is not None and not changed:
        raise outage
    return changed


async def _audit(session: Any, kind: str, ctx: Context, details: dict[str, Any]) -> None:
    try:
        from bot.security import audit
    except ImportError:  # the security area's module is not there yet
        return
    await audit.record(
        session, kind, actor=f"conversation:{ctx.conversation_id}", subject=ctx.customer_id, details=details
    )


def _platform_error_text(ctx: Context, exc: PlatformError) -> str:
    key = f"engine.platform_error.{exc.code}"
    from bot.locales import has

    if has(ctx.lang, key):
        return ctx.t(key)
    return ctx.t("engine.platform_error.generic")


def _spec_to_json(spec: ChallengeSpec | None) -> dict[str, Any] | None:
    return None if spec is None else spec.to_json()


def _spec_from_json(raw: Any) -> ChallengeSpec | None:
    return ChallengeSpec.from_json(raw) if isinstance(raw, dict) else None


def _dec(value: Any) -> Any:
    from decimal import Decimal, InvalidOperation

    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def now_iso(value: datetime) -> str:
    return value.isoformat()
