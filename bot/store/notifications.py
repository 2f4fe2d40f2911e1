"""Notification tables: the event inbox, the transactional outbox, and per-chat preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import EncryptedJSON
from bot.store.db import Base, as_utc, utcnow

# Categories customers can switch; "security" and "risk" are duties to warn and cannot be off.
CATEGORIES = ("orders", "complaints", "marketing", "risk", "security")
ALWAYS_ON = frozenset({"risk", "security"})
DEFAULT_PREFS = {"orders": True, "complaints": True, "marketing": False, "risk": True, "security": True}


class InboxEventRow(Base):
    """Every platform event we accepted; the primary key makes a replay impossible to enqueue."""

    __tablename__ = "inbox_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[Any] = mapped_column(EncryptedJSON("inbox_events.payload"))
    outcome: Mapped[str] = mapped_column(String(32))  # enqueued | no_conversation | unknown_type | muted


class OutboxRow(Base):
    """A message waiting to reach a customer (notifications, agent replies)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    body: Mapped[Any] = mapped_column(EncryptedJSON("outbox_messages.body"))
    # One message per (event, chat): a retried transaction can never enqueue twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|sent|dead|blocked
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NotificationPrefsRow(Base):
    """What one chat wants to receive; absent row = defaults."""

    __tablename__ = "notification_prefs"

    conversation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    categories: Mapped[Any] = mapped_column(EncryptedJSON("notification_prefs.categories"))
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)  # channel said the bot is blocked
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class Prefs:
    categories: dict[str, bool]
    quiet_hours: bool
    blocked: bool

    def wants(self, category: str) -> bool:
        if category in ALWAYS_ON:
            return True
        return bool(self.categories.get(category, DEFAULT_PREFS.get(category, True)))


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    channel: str
    sender: str
    category: str
    body: dict[str, Any]
    attempts: int
    created_at: datetime


# --- inbox ----------------------------------------------------------------------------------


async def record_event(
    session: AsyncSession, *, event_id: str, type: str, customer_id: str,
    occurred_at: datetime, payload: dict[str, Any], outcome: str,
) -> bool:
    """Store an event; False when its id was seen before (a replay)."""
    if await session.get(InboxEventRow, event_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(InboxEventRow(event_id=event_id, type=type, customer_id=customer_id,
                                      occurred_at=occurred_at, payload=payload, outcome=outcome))
    except IntegrityError:  # a concurrent delivery of the same event won the race
        return False
    return True


async def set_event_outcome(session: AsyncSession, event_id: str, outcome: str) -> None:
    await session.execute(update(InboxEventRow).where(InboxEventRow.event_id == event_id)
                          .values(outcome=outcome))


# --- outbox ---------------------------------------------------------------------------------


async def add(
    session: AsyncSession, *, channel: str, sender: str, category: str, body: dict[str, Any],
    dedupe_key: str | None = None, not_before: datetime | None = None,
) -> bool:
    """Add a message in the caller's transaction; False when ``dedupe_key`` was already used."""
    if dedupe_key is not None:
        found = await session.scalar(select(OutboxRow.id).where(OutboxRow.dedupe_key == dedupe_key))
        if found is not None:
            return False
    try:
        async with session.begin_nested():
            session.add(OutboxRow(channel=channel, sender=sender, category=category, body=body,
                                  dedupe_key=dedupe_key, next_attempt_at=not_before or utcnow()))
    except IntegrityError:
        return False
    return True


async def claim_due(
    session: AsyncSession, *, limit: int, lease_s: float, skip_locked: bool,
    channels: list[str] | None = None,
) -> list[OutboxMessage]:
    """Lease up to ``limit`` due messages (pending, or sending with an expired lease)."""
    now = utcnow()
    query = (
        select(OutboxRow.id, OutboxRow.channel, OutboxRow.sender, OutboxRow.category,
               OutboxRow.body, OutboxRow.attempts, OutboxRow.created_at)
        .where(
            or_(
                (OutboxRow.status == "pending") & (OutboxRow.next_attempt_at <= now),
                (OutboxRow.status == "sending") & (OutboxRow.lease_until < now),
            )
        )
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
        .limit(limit)
    )
    if channels is not None:
        query = query.where(OutboxRow.channel.in_(channels))
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    rows = (await session.execute(query)).all()
    if rows:  # one statement, not one per row: this runs on the sender's hot path
        await session.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows]))
                              .values(status="sending", lease_until=now + timedelta(seconds=lease_s)))
    return [
        OutboxMessage(id=r.id, channel=r.channel, sender=r.sender, category=r.category,
                      body=r.body, attempts=r.attempts, created_at=as_utc(r.created_at) or now)
        for r in rows
    ]


async def mark_sent(session: AsyncSession, message_ids: list[int]) -> None:
    """One statement for a whole batch (the sender's hot path)."""
    if message_ids:
        await session.execute(update(OutboxRow).where(OutboxRow.id.in_(message_ids))
                              .values(status="sent", sent_at=utcnow(), lease_until=None, last_error=None))


async def mark_retry(session: AsyncSession, message_id: int, *, at: datetime, error: str,
                     count_attempt: bool = True) -> None:
    values: dict[str, Any] = {"status": "pending", "next_attempt_at": at, "lease_until": None,
                              "last_error": error[:500]}
    if count_attempt:
        values["attempts"] = OutboxRow.attempts + 1
    await session.execute(update(OutboxRow).where(OutboxRow.id == message_id).values(**values))


async def mark_final(session: AsyncSession, message_id: int, *, status: str, error: str) -> None:
    """``dead`` (gave up after retries) or ``blocked`` (the customer blocked the bot)."""
    await session.execute(update(OutboxRow).where(OutboxRow.id == message_id)
                          .values(status=status, lease_until=None, last_error=error[:500],
                                  attempts=OutboxRow.attempts + 1))


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
    return {status: int(n) for status, n in rows.all()}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    channel: str
    category: str
    attempts: int
    last_error: str | None
    created_at: datetime


async def dead_letters(session: AsyncSession, limit: int = 100) -> list[DeadLetter]:
    """Messages that could not be delivered (shown to supervisors)."""
    rows = await session.scalars(
        select(OutboxRow).where(OutboxRow.status.in_(("dead", "blocked")))
        .order_by(OutboxRow.id.desc()).limit(limit)
    )
    return [DeadLetter(r.id, r.channel, r.category, r.attempts, r.last_error,
                       as_utc(r.created_at) or utcnow()) for r in rows]


# --- preferences ----------------------------------------------------------------------------


async def get_prefs(session: AsyncSession, conversation_id: int) -> Prefs:
    row = await session.get(NotificationPrefsRow, conversation_id)
    if row is None:
        return Prefs(categories=dict(DEFAULT_PREFS), quiet_hours=False, blocked=False)
    merged = {**DEFAULT_PREFS, **(row.categories or {})}
    return Prefs(categories=merged, quiet_hours=row.quiet_hours, blocked=row.blocked)


async def set_prefs(
    session: AsyncSession, conversation_id: int, *, categories: dict[str, bool] | None = None,
    quiet_hours: bool | None = None, blocked: bool | None = None,
) -> Prefs:
    row = await session.get(NotificationPrefsRow, conversation_id)
    if row is None:
        row = NotificationPrefsRow(conversation_id=conversation_id, categories=dict(DEFAULT_PREFS),
                                   quiet_hours=False, blocked=False)
        session.add(row)
    if categories:
        merged = {**DEFAULT_PREFS, **(row.categories or {}), **categories}
        for always in ALWAYS_ON:
            merged[always] = True
        row.categories = merged
    if quiet_hours is not None:
        row.quiet_hours = quiet_hours
    if blocked is not None:
        row.blocked = blocked
    row.updated_at = utcnow()
    await session.flush()
    return await get_prefs(session, conversation_id)


async def conversation_id_for(session: AsyncSession, channel: str, sender: str) -> int | None:
    """The conversation behind an address (to mark a blocked chat)."""
    from bot.store.conversations import ConversationRow

    return await session.scalar(
        select(ConversationRow.id).where(ConversationRow.channel == channel,
                                         ConversationRow.sender == sender)
    )
