"""The `human_handoff` intent: open (or find) the conversation's ticket and tell the queue place."""

from __future__ import annotations

import logging
from typing import Any

from bot.dialogue.types import Context, Reply, Turn
from bot.handoff import service
from bot.store import conversations
from bot.types import Outgoing

__all__ = ["handle"]

log = logging.getLogger(__name__)

# Reasons a button may carry (`/human_handoff{"reason": "complaint"}`); others are requests.
_REASONS = {"complaint", "lockout", "misunderstanding"}


_COMPLAINT_TASKS = {"file_complaint"}


def _reason(turn: Turn, ctx: Context) -> str:
    asked = turn.nlu.first("reason")
    if asked in _REASONS:
        return asked
    # Asking for a person from inside (or right after) a complaint: it goes first in the queue.
    task = ctx.state.get("task")
    last = ctx.state.get("last_done")
    if (isinstance(task, dict) and task.get("name") in _COMPLAINT_TASKS) or (
        isinstance(last, dict) and last.get("task") in _COMPLAINT_TASKS
    ):
        return "complaint"
    # The engine offers the human button after two misunderstandings in a row.
    if int(ctx.state.get("misunderstood", 0) or 0) >= 2:
        return "misunderstanding"
    return "customer_request"


def _context_intent(turn: Turn, ctx: Context) -> tuple[str, dict[str, Any]]:
    """What the customer was doing when they asked: the task in progress and its filled slots,
    else the task just finished, else this message's own intent and entities."""
    entities: dict[str, Any] = {e.entity: e.value for e in turn.nlu.entities if e.entity != "reason"}
    task = ctx.state.get("task")
    if isinstance(task, dict) and task.get("name"):
        slots = task.get("slots") if isinstance(task.get("slots"), dict) else {}
        filled = {str(k): str(v) for k, v in slots.items() if v not in (None, "")}
        return str(task["name"]), {**filled, **entities}
    last = ctx.state.get("last_done")
    if isinstance(last, dict) and last.get("task"):
        return str(last["task"]), entities
    return turn.nlu.intent, entities


async def _summary(ctx: Context) -> dict[str, Any] | None:
    """The masked platform profile for the agent; the ticket still opens when it fails."""
    if not ctx.customer_id:
        return None
    try:
        customer = await ctx.backend.get_customer(ctx.customer_id)
    except Exception:  # noqa: BLE001 - a human must be reachable even when the platform is not
        log.warning("handoff_summary_unavailable", extra={"conversation_id": ctx.conversation_id})
        return None
    return service.customer_summary(customer)


async def handle(turn: Turn, ctx: Context) -> Reply:
    """Customer asked for a person: one open ticket, their place in the queue and the wait."""
    async with ctx.db.begin() as s:
        lines = await conversations.recent_transcript(s, ctx.conversation_id, 19)
    # The engine saves this turn after the handler returns: add the request itself.
    transcript = [*lines, {"role": "customer", "text": turn.message.text}]
    intent, entities = _context_intent(turn, ctx)
    try:
        now = await ctx.now()
    except Exception:  # noqa: BLE001 - the platform clock is only needed for staffed hours
        now = None
    info = await service.open_ticket(
        ctx.db,
        conversation_id=ctx.conversation_id,
        reason=_reason(turn, ctx),
        intent=intent,
        entities=entities,
        lang=ctx.lang,
        channel=ctx.channel,
        sender=ctx.sender or turn.message.sender,
        customer_id=ctx.customer_id,
        summary=await _summary(ctx),
        transcript=transcript,
        now=now,
    )
    ctx.state["misunderstood"] = 0
    return [Outgoing(text=service.queue_message(ctx.lang, info))]
