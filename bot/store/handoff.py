"""Tables and queries for the handoff area: tickets, their messages, agents and console sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import EncryptedJSON, EncryptedText
from bot.store.db import Base, as_utc, utcnow

# Ticket states. "returned" = handed back to the bot without a human resolution.
WAITING, ASSIGNED, RESOLVED, RETURNED = "waiting", "assigned", "resolved", "returned"
OPEN_STATES = (WAITING, ASSIGNED)

# Lower number = served first. Complaints and lockouts jump the queue (first-contact duty).
PRIORITY = {"complaint": 0, "lockout": 0, "customer_request": 1, "misunderstanding": 1, "agent": 2}

# Message kinds inside a ticket.
CUSTOMER, AGENT, NOTE, SYSTEM = "customer", "agent", "note", "system"


class HandoffTicketRow(Base):
    __tablename__ = "handoff_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(Integer, index=True)
    # Equal to conversation_id while the ticket is open, NULL afterwards: the unique index
    # is what guarantees "at most one open ticket per conversation", even under races.
    open_key: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lang: Mapped[str] = mapped_column(String(2))
    reason: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entities: Mapped[Any] = mapped_column(EncryptedJSON("handoff_tickets.entities"), default=dict)
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    summary: Mapped[Any] = mapped_column(EncryptedJSON("handoff_tickets.summary"), nullable=True)  # masked facts only
    transcript: Mapped[Any] = mapped_column(EncryptedJSON("handoff_tickets.transcript"), default=list)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default=WAITING, index=True)
    staffed: Mapped[bool] = mapped_column(Boolean, default=True)
    agent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class HandoffMessageRow(Base):
    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("handoff_tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(EncryptedText("handoff_messages.text"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HandoffAgentRow(Base):
    __tablename__ = "handoff_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HandoffSessionRow(Base):
    __tablename__ = "handoff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("handoff_agents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HandoffLoginFailureRow(Base):
    __tablename__ = "handoff_login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), index=True)  # "user:<name>" or "ip:<addr>"
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ---------------------------------------------------------------- dataclasses out


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    conversation_id: int
    channel: str
    sender: str | None
    lang: str
    reason: str
    intent: str | None
    entities: dict[str, Any]
    customer_id: str | None
    summary: dict[str, Any] | None
    transcript: list[dict[str, Any]]
    priority: int
    state: str
    staffed: bool
    agent: str | None
    created_at: datetime
    assigned_at: datetime | None
    first_reply_at: datetime | None
    closed_at: datetime | None
    rating: int | None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class TicketMessage:
    id: int
    ticket_id: int
    kind: str
    author: str | None
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    username: str
    role: str
    active: bool


@dataclass(frozen=True, slots=True)
class AgentCredentials:
    agent: Agent
    password_hash: str


def _ticket(row: HandoffTicketRow) -> Ticket:
    return Ticket(
        id=row.id,
        conversation_id=row.conversation_id,
        channel=row.channel,
        sender=row.sender,
        lang=row.lang,
        reason=row.reason,
        intent=row.intent,
        entities=dict(row.entities or {}),
        customer_id=row.customer_id,
        summary=dict(row.summary) if row.summary else None,
        transcript=list(row.transcript or []),
        priority=row.priority,
        state=row.state,
        staffed=bool(row.staffed),
        agent=row.agent,
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        assigned_at=as_utc(row.assigned_at),
        first_reply_at=as_utc(row.first_reply_at),
        closed_at=as_utc(row.closed_at),
        rating=row.rating,
    )


def _message(row: HandoffMessageRow) -> TicketMessage:
    return TicketMessage(
        id=row.id,
        ticket_id=row.ticket_id,
        kind=row.kind,
        author=row.author,
        text=row.text,
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
    )


def _agent(row: HandoffAgentRow) -> Agent:
    return Agent(id=row.id, username=row.username, role=row.role, active=bool(row.active))


# ---------------------------------------------------------------- tickets


async def open_ticket_row(
    session: AsyncSession,
    *,
    conversation_id: int,
    channel: str,
    sender: str | None,
    lang: str,
    reason: str,
    intent: str | None,
    entities: dict[str, Any],
    customer_id: str | None,
    summary: dict[str, Any] | None,
    transcript: list[dict[str, Any]],
    staffed: bool,
    now: datetime,
    state: str = WAITING,
    agent: str | None = None,
) -> tuple[Ticket, bool]:
    """Insert the open ticket of a conversation, or return the one already open.

    Returns (ticket, created). Uses a savepoint so a lost race on the unique ``open_key``
    leaves the caller's transaction usable."""
    existing = await open_ticket_for(session, conversation_id)
    if existing is not None:
        return existing, False
    row = HandoffTicketRow(
        conversation_id=conversation_id,
        open_key=conversation_id,
        channel=channel,
        sender=sender,
        lang=lang,
        reason=reason,
        intent=intent,
        entities=entities,
        customer_id=customer_id,
        summary=summary,
        transcript=transcript,
        priority=PRIORITY.get(reason, 1),
        state=state,
        staffed=staffed,
        agent=agent,
        created_at=now,
        assigned_at=now if state == ASSIGNED else None,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        existing = await open_ticket_for(session, conversation_id)
        if existing is None:  # pragma: no cover - the winner rolled back in between
            raise
        return existing, False
    return _ticket(row), True


async def open_ticket_for(session: AsyncSession, conversation_id: int) -> Ticket | None:
    row = (
        await session.execute(
            select(HandoffTicketRow).where(HandoffTicketRow.open_key == conversation_id)
        )
    ).scalar_one_or_none()
    return _ticket(row) if row else None


async def get_ticket(session: AsyncSession, ticket_id: int) -> Ticket | None:
    row = await session.get(HandoffTicketRow, ticket_id)
    return _ticket(row) if row else None


async def open_tickets(session: AsyncSession) -> list[Ticket]:
    """Every open ticket in queue order: priority first, then who waited longest."""
    rows = (
        await session.execute(
            select(HandoffTicketRow)
            .where(HandoffTicketRow.state.in_(OPEN_STATES))
            .order_by(HandoffTicketRow.priority, HandoffTicketRow.created_at, HandoffTicketRow.id)
        )
    ).scalars()
    return [_ticket(r) for r in rows]


async def queue_position(session: AsyncSession, ticket: Ticket) -> int:
    """1-based place among waiting tickets (ties broken by arrival)."""
    ahead = (
        await session.execute(
            select(func.count())
            .select_from(HandoffTicketRow)
            .where(HandoffTicketRow.state == WAITING)
            .where(
                (HandoffTicketRow.priority < ticket.priority)
                | (
                    (HandoffTicketRow.priority == ticket.priority)
                    & (
                        (HandoffTicketRow.created_at < ticket.created_at)
                        | (
                            (HandoffTicketRow.created_at == ticket.created_at)
                            & (HandoffTicketRow.id < ticket.id)
                        )
                    )
                )
            )
        )
    ).scalar_one()
    return int(ahead) + 1


async def set_summary(session: AsyncSession, ticket_id: int, summary: dict[str, Any]) -> None:
    await session.execute(
        update(HandoffTicketRow).where(HandoffTicketRow.id == ticket_id).values(summary=summary)
    )


async def claim(session: AsyncSession, ticket_id: int, agent: str, now: datetime) -> bool:
    """Waiting → assigned to ``agent``. False when someone else got there first."""
    result = await session.execute(
        update(HandoffTicketRow)
        .where(HandoffTicketRow.id == ticket_id, HandoffTicketRow.state == WAITING)
        .values(state=ASSIGNED, agent=agent, assigned_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def transfer(session: AsyncSession, ticket_id: int, from_agent: str | None, to_agent: str) -> bool:
    stmt = update(HandoffTicketRow).where(
        HandoffTicketRow.id == ticket_id, HandoffTicketRow.state == ASSIGNED
    )
    if from_agent is not None:
        stmt = stmt.where(HandoffTicketRow.agent == from_agent)
    result = await session.execute(stmt.values(agent=to_agent))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def close(session: AsyncSession, ticket_id: int, state: str, now: datetime) -> bool:
    """Open → resolved / returned; frees the conversation for a future ticket."""
    result = await session.execute(
        update(HandoffTicketRow)
        .where(HandoffTicketRow.id == ticket_id, HandoffTicketRow.state.in_(OPEN_STATES))
        .values(state=state, open_key=None, closed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_first_reply(session: AsyncSession, ticket_id: int, now: datetime) -> None:
    await session.execute(
        update(HandoffTicketRow)
        .where(HandoffTicketRow.id == ticket_id, HandoffTicketRow.first_reply_at.is_(None))
        .values(first_reply_at=now)
    )


async def rate_last_resolved(session: AsyncSession, conversation_id: int, score: int, now: datetime) -> bool:
    """Stores CSAT on the conversation's latest resolved, not yet rated ticket."""
    row = (
        await session.execute(
            select(HandoffTicketRow)
            .where(
                HandoffTicketRow.conversation_id == conversation_id,
                HandoffTicketRow.state == RESOLVED,
            )
            .order_by(HandoffTicketRow.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None or row.rating is not None:
        return False
    row.rating = score
    row.rated_at = now
    return True


async def add_message(
    session: AsyncSession, ticket_id: int, kind: str, author: str | None, text: str, now: datetime
) -> TicketMessage:
    row = HandoffMessageRow(ticket_id=ticket_id, kind=kind, author=author, text=text, created_at=now)
    session.add(row)
    await session.flush()
    return _message(row)


async def messages(session: AsyncSession, ticket_id: int) -> list[TicketMessage]:
    rows = (
        await session.execute(
            select(HandoffMessageRow)
            .where(HandoffMessageRow.ticket_id == ticket_id)
            .order_by(HandoffMessageRow.id)
        )
    ).scalars()
    return [_message(r) for r in rows]


async def tickets_between(session: AsyncSession, start: datetime, end: datetime) -> list[Ticket]:
    rows = (
        await session.execute(
            select(HandoffTicketRow)
            .where(HandoffTicketRow.created_at >= start, HandoffTicketRow.created_at < end)
            .order_by(HandoffTicketRow.id)
        )
    ).scalars()
    return [_ticket(r) for r in rows]


@dataclass(frozen=True, slots=True)
class RecentConversation:
    id: int
    channel: str
    sender: str
    lang: str
    linked: bool
    updated_at: datetime


async def recent_conversations(session: AsyncSession, limit: int = 30) -> list[RecentConversation]:
    """Latest active conversations (read from the engine's table) for the agent's pick list."""
    from bot.store.conversations import ConversationRow

    rows = (
        await session.execute(
            select(
                ConversationRow.id,
                ConversationRow.channel,
                ConversationRow.sender,
                ConversationRow.lang,
                ConversationRow.customer_id,
                ConversationRow.updated_at,
            )
            .order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        RecentConversation(
            id=r.id, channel=r.channel, sender=r.sender, lang=r.lang, linked=r.customer_id is not None,
            updated_at=as_utc(r.updated_at),  # type: ignore[arg-type]
        )
        for r in rows
    ]


async def conversation_counts(session: AsyncSession, start: datetime, end: datetime) -> tuple[int, int]:
    """(conversations active in the period, transcript lines of customers in the period)."""
    from bot.store.conversations import ConversationRow, TranscriptRow

    active = (
        await session.execute(
            select(func.count(func.distinct(TranscriptRow.conversation_id))).where(
                TranscriptRow.created_at >= start, TranscriptRow.created_at < end
            )
        )
    ).scalar_one()
    if not active:  # no transcript lines: fall back to conversations touched in the period
        active = (
            await session.execute(
                select(func.count()).select_from(ConversationRow).where(
                    ConversationRow.updated_at >= start, ConversationRow.updated_at < end
                )
            )
        ).scalar_one()
    turns = (
        await session.execute(
            select(func.count()).select_from(TranscriptRow).where(
                TranscriptRow.role == "customer", TranscriptRow.created_at >= start, TranscriptRow.created_at < end
            )
        )
    ).scalar_one()
    return int(active), int(turns)


async def intent_counts(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int] | None:
    """Customer turns per detected intent in the period, when the engine's transcript lines
    carry an ``intent`` column; None until they do (the dashboard then uses process metrics)."""
    from bot.store.conversations import TranscriptRow

    column = getattr(TranscriptRow, "intent", None)
    if column is None:
        return None
    rows = await session.execute(
        select(column, func.count())
        .where(
            TranscriptRow.role == "customer",
            TranscriptRow.created_at >= start,
            TranscriptRow.created_at < end,
            column.is_not(None),
        )
        .group_by(column)
    )
    return {str(intent): int(n) for intent, n in rows.all()}


# ---------------------------------------------------------------- agents and sessions


async def add_agent(session: AsyncSession, username: str, role: str, password_hash: str) -> Agent:
    row = HandoffAgentRow(username=username, role=role, password_hash=password_hash)
    session.add(row)
    await session.flush()
    return _agent(row)


async def replace_agent(session: AsyncSession, username: str, role: str, password_hash: str) -> Agent | None:
    """New role and password for an existing account, active again; its sessions end."""
    row = (await session.execute(select(HandoffAgentRow).where(HandoffAgentRow.username == username))).scalar_one_or_none()
    if row is None:
        return None
    row.role, row.password_hash, row.active = role, password_hash, True
    await session.execute(delete(HandoffSessionRow).where(HandoffSessionRow.agent_id == row.id))
    await session.flush()
    return _agent(row)


async def set_agent_password(session: AsyncSession, username: str, password_hash: str) -> bool:
    result = await session.execute(
        update(HandoffAgentRow).where(HandoffAgentRow.username == username).values(password_hash=password_hash)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_agent_active(session: AsyncSession, username: str, active: bool) -> bool:
    result = await session.execute(
        update(HandoffAgentRow).where(HandoffAgentRow.username == username).values(active=active)
    )
    if not active:
        agent_ids = select(HandoffAgentRow.id).where(HandoffAgentRow.username == username)
        await session.execute(delete(HandoffSessionRow).where(HandoffSessionRow.agent_id.in_(agent_ids)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def credentials(session: AsyncSession, username: str) -> AgentCredentials | None:
    row = (
        await session.execute(select(HandoffAgentRow).where(HandoffAgentRow.username == username))
    ).scalar_one_or_none()
    return AgentCredentials(_agent(row), row.password_hash) if row else None


async def list_agents(session: AsyncSession) -> list[Agent]:
    rows = (await session.execute(select(HandoffAgentRow).order_by(HandoffAgentRow.username))).scalars()
    return [_agent(r) for r in rows]


async def create_session(session: AsyncSession, token_hash: str, agent_id: int, expires_at: datetime) -> None:
    session.add(HandoffSessionRow(token_hash=token_hash, agent_id=agent_id, expires_at=expires_at))
    await session.flush()


async def session_agent(session: AsyncSession, token_hash: str, now: datetime) -> Agent | None:
    row = (
        await session.execute(
            select(HandoffAgentRow, HandoffSessionRow.expires_at)
            .join(HandoffSessionRow, HandoffSessionRow.agent_id == HandoffAgentRow.id)
            .where(HandoffSessionRow.token_hash == token_hash)
        )
    ).first()
    if row is None:
        return None
    agent_row, expires_at = row
    if as_utc(expires_at) <= now or not agent_row.active:  # type: ignore[operator]
        return None
    return _agent(agent_row)


async def delete_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(HandoffSessionRow).where(HandoffSessionRow.token_hash == token_hash))


async def record_login_failure(
    session: AsyncSession, keys: list[str], now: datetime, keep_since: datetime
) -> None:
    # Old failures no longer count: prune them here so the table stays small.
    await session.execute(delete(HandoffLoginFailureRow).where(HandoffLoginFailureRow.at < keep_since))
    for key in keys:
        session.add(HandoffLoginFailureRow(key=key, at=now))
    await session.flush()


async def recent_login_failures(session: AsyncSession, key: str, since: datetime) -> tuple[int, datetime | None]:
    """(count, oldest) of failures for ``key`` since ``since``."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(HandoffLoginFailureRow.at)).where(
                HandoffLoginFailureRow.key == key, HandoffLoginFailureRow.at >= since
            )
        )
    ).one()
    return int(count), as_utc(oldest)


async def clear_login_failures(session: AsyncSession, key: str) -> None:
    await session.execute(delete(HandoffLoginFailureRow).where(HandoffLoginFailureRow.key == key))
