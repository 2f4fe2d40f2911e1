"""The handoff API the engine, handlers and the agent console call: tickets from open to rating."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from bot import locales
from bot.handoff.live import LiveHub
from bot.handoff.schedule import StaffedHours, eta_minutes
from bot.metrics import HANDOFFS
from bot.security import audit
from bot.security.masking import mask_text
from bot.settings import Settings, get_settings
from bot.store import conversations
from bot.store import handoff as store
from bot.store.db import Database, utcnow
from bot.types import Button, Lang, Outgoing

log = logging.getLogger(__name__)

__all__ = [
    "HandoffError",
    "customer_summary",
    "queue_message",
    "Runtime",
    "TicketInfo",
    "agent_owns",
    "claim",
    "install",
    "note",
    "open_ticket",
    "rating_buttons",
    "record_rating",
    "relay_from_customer",
    "reply",
    "resolve",
    "return_to_bot",
    "runtime",
    "take_over",
    "transfer",
]

REASONS = ("customer_request", "misunderstanding", "lockout", "complaint", "agent")


class HandoffError(Exception):
    """A console action that cannot happen; ``reason`` is machine-readable for the API."""

    def __init__(self, reason: str, status: int = 409) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """What the customer is told after asking for a human."""

    ticket_id: int
    created: bool  # False when the conversation already had an open ticket
    state: str
    position: int  # 1 = next in line (0 once an agent has it)
    eta_minutes: int
    staffed: bool
    next_staffed_at: datetime | None  # when outside staffed hours: the next opening
    answer_within_hours: int


@dataclass(slots=True)
class Runtime:
    """Process facts the service needs beside the database: policy, live hub, delivery."""

    settings: Settings
    hub: LiveHub
    delivery: Any = None  # bot.app.Delivery (push(channel, sender, Outgoing))
    wake_outbox: Callable[[], None] | None = None  # sends queued agent messages now, not at the next poll


_RUNTIMES: WeakKeyDictionary[Database, Runtime] = WeakKeyDictionary()


def install(
    db: Database, settings: Settings, delivery: Any = None, wake_outbox: Callable[[], None] | None = None
) -> Runtime:
    """Binds policy, hub and delivery to one database (the app wiring calls this at start)."""
    rt = Runtime(settings=settings, hub=LiveHub(), delivery=delivery, wake_outbox=wake_outbox)
    _RUNTIMES[db] = rt
    return rt


def runtime(db: Database) -> Runtime:
    rt = _RUNTIMES.get(db)
    if rt is None:  # a script or test without the app: default policy, nobody listening
        rt = install(db, get_settings())
    return rt


# ---------------------------------------------------------------- seams of other areas


async def _conversation_address(session: Any, conversation_id: int) -> tuple[str | None, str | None]:
    """(sender, customer_id) of a conversation from the engine's store."""
    conv = await conversations.get_conversation(session, conversation_id)
    if conv is None:
        return None, None
    return conv.sender, conv.customer_id


def customer_summary(customer: Any) -> dict[str, Any]:
    """The masked facts an agent sees about a platform customer (``PlatformClient`` model)."""
    name = str(getattr(customer, "name", "") or "")
    return {
        # Surname only: enough to greet the customer, not enough to identify them from a screen.
        "name": (name[:1] + "*" * max(1, len(name) - 1)) if name else "",
        "phone": mask_text(str(getattr(customer, "phone_masked", "") or "")),
        "id_number": mask_text(str(getattr(customer, "id_number_masked", "") or "")),
        "bank_card": mask_text(str(getattr(customer, "bank_card_masked", "") or "")),
        "bank": str(getattr(customer, "bank_name", "") or ""),
        "verified": bool(getattr(customer, "verified", False)),
        "risk_tolerance": str(getattr(customer, "risk_tolerance", "") or ""),
    }


def _actor(agent: store.Agent) -> str:
    # The audit module pseudonymises prefixed ids: no staff name lands in the trail.
    return f"agent:{agent.username}"


# ---------------------------------------------------------------- engine-facing API


def _normalise_transcript(transcript: Any) -> list[dict[str, Any]]:
    """Accepts the engine's transcript rows (dataclasses, dicts or (role, text) pairs)."""
    out: list[dict[str, Any]] = []
    for item in transcript or []:
        if is_dataclass(item) and not isinstance(item, type):
            data: dict[str, Any] = asdict(item)
        elif isinstance(item, dict):
            data = dict(item)
        elif isinstance(item, (tuple, list)) and len(item) >= 2:
            data = {"role": item[0], "text": item[1]}
        else:
            data = {"role": "customer", "text": str(item)}
        role = str(data.get("role") or data.get("direction") or data.get("speaker") or "customer")
        text = str(data.get("text") or "")
        at = data.get("at") or data.get("created_at")
        out.append(
            {
                "role": role,
                "text": mask_text(text),
                "intent": data.get("intent"),
                "at": at.isoformat() if isinstance(at, datetime) else at,
            }
        )
    return out


async def _info(db: Database, ticket: store.Ticket, created: bool, now: datetime) -> TicketInfo:
    rt = runtime(db)
    hours = StaffedHours.parse(rt.settings.staffed_hours)
    staffed = hours.is_staffed(now)
    if ticket.state == store.WAITING:
        async with db.begin() as s:
            position = await store.queue_position(s, ticket)
    else:
        position = 0
    return TicketInfo(
        ticket_id=ticket.id,
        created=created,
        state=ticket.state,
        position=position,
        eta_minutes=eta_minutes(position, rt.settings.handoff_avg_handle_minutes, rt.hub.agents_online())
        if position
        else 0,
        staffed=staffed,
        next_staffed_at=None if staffed else hours.next_opening(now),
        answer_within_hours=rt.settings.handoff_offline_answer_hours,
    )


async def open_ticket(
    db: Database,
    *,
    conversation_id: int,
    reason: str,
    intent: str | None,
    entities: dict[str, Any] | None,
    lang: Lang | str,
    channel: str,
    transcript: Any = (),
    sender: str | None = None,
    customer_id: str | None = None,
    summary: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> TicketInfo:
    """Opens the conversation's ticket (idempotent: one open ticket per conversation).

    ``now`` is the platform's clock for the staffed-hours rule; ticket timestamps use the
    server clock so waiting times stay true while the sandbox clock is frozen."""
    if reason not in REASONS:
        reason = "customer_request"
    ents = {str(k): v for k, v in (entities or {}).items()} if isinstance(entities, dict) else {
        str(getattr(e, "entity", "")): getattr(e, "value", None) for e in (entities or ())
    }
    stamp = utcnow()
    clock = now or stamp
    rt = runtime(db)
    staffed = StaffedHours.parse(rt.settings.staffed_hours).is_staffed(clock)
    async with db.begin() as s:
        if sender is None or customer_id is None:
            found_sender, found_customer = await _conversation_address(s, conversation_id)
            sender = sender or found_sender
            customer_id = customer_id or found_customer
        ticket, created = await store.open_ticket_row(
            s,
            conversation_id=conversation_id,
            channel=channel,
            sender=sender,
            lang=lang if lang in ("zh", "en") else "zh",
            reason=reason,
            intent=intent,
            entities=ents,
            customer_id=customer_id,
            summary=summary,
            transcript=_normalise_transcript(transcript),
            staffed=staffed,
            now=stamp,
        )
        if created:
            await audit.record(
                s,
                "handoff_opened",
                actor=f"conversation:{conversation_id}",
                subject=f"conversation:{conversation_id}",
                details={"ticket": ticket.id, "reason": reason, "channel": channel, "intent": intent},
            )
        elif summary and not ticket.summary:
            await store.set_summary(s, ticket.id, summary)
    if created:
        HANDOFFS.labels(reason=reason).inc()
        rt.hub.publish({"type": "queue"})
    return await _info(db, ticket, created, clock)


async def agent_owns(db: Database, conversation_id: int) -> bool:
    """True while a human agent has claimed the conversation: the engine must stay silent."""
    async with db.begin() as s:
        ticket = await store.open_ticket_for(s, conversation_id)
    return ticket is not None and ticket.state == store.ASSIGNED


async def relay_from_customer(db: Database, conversation_id: int, text: str) -> None:
    """Adds a customer message to the open ticket and shows it live in the console."""
    async with db.begin() as s:
        ticket = await store.open_ticket_for(s, conversation_id)
        if ticket is None:
            return
        msg = await store.add_message(s, ticket.id, store.CUSTOMER, None, text, utcnow())
    runtime(db).hub.publish({"type": "message", "ticket_id": ticket.id, "message": message_json(msg)})


async def record_rating(db: Database, conversation_id: int, score: int) -> bool:
    """Stores CSAT (1–5) on the latest resolved ticket; False if none waits for a rating."""
    try:
        value = int(score)
    except (TypeError, ValueError):
        return False
    if not 1 <= value <= 5:
        return False
    async with db.begin() as s:
        ok = await store.rate_last_resolved(s, conversation_id, value, utcnow())
    if ok:
        runtime(db).hub.publish({"type": "queue"})
    return ok


def rating_buttons(lang: Lang) -> tuple[Button, ...]:
    return tuple(
        Button(title=locales.translate(lang, "handoff.rate_button", score=n), payload=f'/rate{{"score": {n}}}')
        for n in range(1, 6)
    )


def queue_message(lang: Lang, info: TicketInfo) -> str:
    """The customer-facing sentence for a ticket: place in queue and wait, or offline promise."""
    t = locales.translator(lang)
    if info.state == store.ASSIGNED:
        return t("handoff.already_with_agent")
    if not info.staffed:
        opening = locales.date(info.next_staffed_at, lang, with_time=True) if info.next_staffed_at else ""
        return t(
            "handoff.offline",
            ticket=info.ticket_id,
            hours=info.answer_within_hours,
            opening=opening,
        )
    key = "handoff.queued" if info.created else "handoff.still_queued"
    return t(key, ticket=info.ticket_id, position=info.position, minutes=info.eta_minutes)


# ---------------------------------------------------------------- console-facing API


def message_json(m: store.TicketMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "author": m.author,
        "text": m.text,
        "at": m.created_at.isoformat(),
    }


async def _deliver(db: Database, s: Any, ticket: store.Ticket, message: Outgoing, dedupe: str) -> bool:
    """Queues a message for the customer inside ``s`` when the outbox exists (it retries);
    otherwise returns False and the caller pushes after commit."""
    if ticket.sender is None:
        return True  # no address known: nothing to send (the console still shows the text)
    try:
        from bot.notifications.outbox import enqueue  # type: ignore[attr-defined]
    except ImportError:
        return False
    await enqueue(s, channel=ticket.channel, sender=ticket.sender, message=message, category="agent", dedupe_key=dedupe)
    return True


async def _after_commit(db: Database, ticket: store.Ticket, message: Outgoing, queued: bool) -> None:
    if not queued:
        await _push_now(db, ticket, message)
        return
    wake = runtime(db).wake_outbox
    if wake is not None:
        wake()


async def _push_now(db: Database, ticket: store.Ticket, message: Outgoing) -> None:
    delivery = runtime(db).delivery
    if delivery is None or ticket.sender is None:
        log.warning("handoff: no delivery for ticket %s on %s", ticket.id, ticket.channel)
        return
    try:
        await delivery.push(ticket.channel, ticket.sender, message)
    except Exception:  # the message is stored; the console shows the failure, not a 5xx
        log.warning("handoff: delivery failed for ticket %s on %s", ticket.id, ticket.channel, exc_info=True)
        runtime(db).hub.publish({"type": "delivery_failed", "ticket_id": ticket.id})


async def _open_for_agent(s: Any, ticket_id: int, agent: store.Agent, *, need_owner: bool) -> store.Ticket:
    ticket = await store.get_ticket(s, ticket_id)
    if ticket is None:
        raise HandoffError("not_found", 404)
    if need_owner and ticket.state != store.ASSIGNED:
        raise HandoffError("not_assigned", 409)
    if need_owner and ticket.agent != agent.username:
        raise HandoffError("not_your_ticket", 403)
    return ticket


def can_view(ticket: store.Ticket, agent: store.Agent) -> bool:
    """Agents see waiting tickets and their own; supervisors see everything."""
    if agent.role == "supervisor":
        return True
    return ticket.state == store.WAITING or ticket.agent == agent.username


async def claim(db: Database, ticket_id: int, agent: store.Agent) -> store.Ticket:
    now = utcnow()
    async with db.begin() as s:
        ticket = await _open_for_agent(s, ticket_id, agent, need_owner=False)
        if ticket.state != store.WAITING:
            raise HandoffError("already_claimed" if ticket.state == store.ASSIGNED else "closed", 409)
        if not await store.claim(s, ticket_id, agent.username, now):
            raise HandoffError("already_claimed", 409)
        await store.add_message(s, ticket_id, store.SYSTEM, agent.username, "claimed", now)
        ticket = await store.get_ticket(s, ticket_id)  # type: ignore[assignment]
        joined = Outgoing(text=locales.translate(ticket.lang, "handoff.agent_joined"))  # type: ignore[arg-type]
        queued = await _deliver(db, s, ticket, joined, f"handoff:{ticket_id}:joined:{agent.username}")
        # Audit last: it holds the chain's lock until commit.
        await audit.record(s, "agent_claim", actor=_actor(agent), subject=f"conversation:{ticket.conversation_id}", details={"ticket": ticket_id})
    await _after_commit(db, ticket, joined, queued)
    runtime(db).hub.publish({"type": "queue"})
    return ticket


async def reply(db: Database, ticket_id: int, agent: store.Agent, text: str) -> store.TicketMessage:
    """An agent's answer: stored in the ticket and sent to the customer on their channel."""
    text = text.strip()
    if not text:
        raise HandoffError("empty", 400)
    now = utcnow()
    async with db.begin() as s:
        ticket = await _open_for_agent(s, ticket_id, agent, need_owner=True)
        msg = await store.add_message(s, ticket_id, store.AGENT, agent.username, text, now)
        await store.mark_first_reply(s, ticket_id, now)
        out = Outgoing(text=text)
        queued = await _deliver(db, s, ticket, out, f"handoff:{ticket_id}:msg:{msg.id}")
        await audit.record(s, "agent_reply", actor=_actor(agent), subject=f"conversation:{ticket.conversation_id}", details={"ticket": ticket_id, "chars": len(text)})
    await _after_commit(db, ticket, out, queued)
    runtime(db).hub.publish({"type": "message", "ticket_id": ticket_id, "message": message_json(msg)})
    return msg


async def note(db: Database, ticket_id: int, agent: store.Agent, text: str) -> store.TicketMessage:
    """An internal note: stays in the console, never reaches the customer."""
    text = text.strip()
    if not text:
        raise HandoffError("empty", 400)
    async with db.begin() as s:
        ticket = await store.get_ticket(s, ticket_id)
        if ticket is None or not can_view(ticket, agent):
            raise HandoffError("not_found" if ticket is None else "not_your_ticket", 404 if ticket is None else 403)
        msg = await store.add_message(s, ticket_id, store.NOTE, agent.username, text, utcnow())
    runtime(db).hub.publish({"type": "message", "ticket_id": ticket_id, "message": message_json(msg)})
    return msg


async def transfer(db: Database, ticket_id: int, agent: store.Agent, to_username: str) -> store.Ticket:
    """Hands an assigned ticket to another active agent (the owner or a supervisor may)."""
    async with db.begin() as s:
        target = await store.credentials(s, to_username)
        if target is None or not target.agent.active:
            raise HandoffError("unknown_agent", 400)
        ticket = await _open_for_agent(s, ticket_id, agent, need_owner=agent.role != "supervisor")
        if ticket.state != store.ASSIGNED:
            raise HandoffError("not_assigned", 409)
        owner = None if agent.role == "supervisor" else agent.username
        if not await store.transfer(s, ticket_id, owner, to_username):
            raise HandoffError("not_your_ticket", 403)
        await store.add_message(s, ticket_id, store.SYSTEM, agent.username, f"transferred to {to_username}", utcnow())
        ticket = await store.get_ticket(s, ticket_id)  # type: ignore[assignment]
        await audit.record(
            s, "agent_transfer", actor=_actor(agent), subject=f"conversation:{ticket.conversation_id}",
            details={"ticket": ticket_id, "to": audit.party(f"agent:{to_username}")}
        )
    runtime(db).hub.publish({"type": "queue"})
    return ticket


async def _close(db: Database, ticket_id: int, agent: store.Agent, state: str) -> store.Ticket:
    now = utcnow()
    async with db.begin() as s:
        ticket = await store.get_ticket(s, ticket_id)
        if ticket is None:
            raise HandoffError("not_found", 404)
        if not ticket.is_open:
            raise HandoffError("closed", 409)
        # A waiting ticket may be handed back by anyone (e.g. the customer found the answer);
        # an assigned one only by its owner or a supervisor.
        if ticket.state == store.ASSIGNED and ticket.agent != agent.username and agent.role != "supervisor":
            raise HandoffError("not_your_ticket", 403)
        if not await store.close(s, ticket_id, state, now):
            raise HandoffError("closed", 409)
        lang: Lang = ticket.lang  # type: ignore[assignment]
        if state == store.RESOLVED:
            out = Outgoing(
                text=locales.translate(lang, "handoff.resolved") + "\n" + locales.translate(lang, "handoff.rate_prompt"),
                buttons=rating_buttons(lang),
            )
        else:
            out = Outgoing(text=locales.translate(lang, "handoff.returned"))
        await store.add_message(s, ticket_id, store.SYSTEM, agent.username, state, now)
        queued = await _deliver(db, s, ticket, out, f"handoff:{ticket_id}:{state}")
        ticket = await store.get_ticket(s, ticket_id)  # type: ignore[assignment]
        kind = "agent_resolve" if state == store.RESOLVED else "agent_return"
        await audit.record(s, kind, actor=_actor(agent), subject=f"conversation:{ticket.conversation_id}", details={"ticket": ticket_id})
    await _after_commit(db, ticket, out, queued)
    runtime(db).hub.publish({"type": "queue"})
    return ticket


async def resolve(db: Database, ticket_id: int, agent: store.Agent) -> store.Ticket:
    """Closes the ticket; the customer is thanked and asked for a 1–5 rating."""
    return await _close(db, ticket_id, agent, store.RESOLVED)


async def return_to_bot(db: Database, ticket_id: int, agent: store.Agent) -> store.Ticket:
    """Closes the ticket without a human resolution: the bot answers again."""
    return await _close(db, ticket_id, agent, store.RETURNED)


async def take_over(
    db: Database,
    *,
    conversation_id: int,
    channel: str,
    sender: str,
    lang: Lang,
    agent: store.Agent,
    transcript: Any = (),
    customer_id: str | None = None,
) -> store.Ticket:
    """An agent picks a live conversation from the recent list: a ticket assigned to them."""
    now = utcnow()
    async with db.begin() as s:
        ticket, created = await store.open_ticket_row(
            s,
            conversation_id=conversation_id,
            channel=channel,
            sender=sender,
            lang=lang,
            reason="agent",
            intent=None,
            entities={},
            customer_id=customer_id,
            summary=None,
            transcript=_normalise_transcript(transcript),
            staffed=True,
            now=now,
            state=store.ASSIGNED,
            agent=agent.username,
        )
        if not created:
            if ticket.state == store.WAITING:
                await store.claim(s, ticket.id, agent.username, now)
            elif ticket.agent != agent.username:
                raise HandoffError("already_claimed", 409)
        ticket = await store.get_ticket(s, ticket.id)  # type: ignore[assignment]
        joined = Outgoing(text=locales.translate(lang, "handoff.agent_joined"))
        queued = await _deliver(db, s, ticket, joined, f"handoff:{ticket.id}:joined:{agent.username}")
        await audit.record(s, "agent_claim", actor=_actor(agent), subject=f"conversation:{conversation_id}", details={"ticket": ticket.id, "takeover": True})
    await _after_commit(db, ticket, joined, queued)
    runtime(db).hub.publish({"type": "queue"})
    return ticket


def parse_rate_payload(text: str) -> int | None:
    """``/rate{"score": 4}`` → 4 (for handlers that see the raw payload)."""
    m = re.fullmatch(r"\s*/rate(\{.*\})\s*", text, flags=re.S)
    if not m:
        return None
    try:
        score = json.loads(m.group(1)).get("score")
        return int(score)
    except (ValueError, TypeError, AttributeError):
        return None
