"""Conversations, transcripts and order intents: the engine's tables and their queries."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import EncryptedJSON, EncryptedText
from bot.store.db import Base, as_utc, utcnow
from bot.types import Address, ChannelName, Lang


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "sender", name="uq_conversations_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    state: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON("conversations.state"), default=dict
    )
    state_version: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TranscriptRow(Base):
    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # customer | bot | agent
    text: Mapped[str] = mapped_column(EncryptedText("transcripts.text"))
    # What the engine understood a customer line as (the supervisors' top intents, fallback rate).
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrderIntentRow(Base):
    __tablename__ = "order_intents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The unique key is what makes "execute exactly once" hold across taps, retries and processes.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[int] = mapped_column(Integer, index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # buy | redeem | export | ...
    product: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2), nullable=True)
    shares: Mapped[Decimal | None] = mapped_column(Numeric(18, 4), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One chat (channel + sender) and what the bot remembers about it."""

    id: int
    channel: ChannelName
    sender: str
    customer_id: str | None
    lang: Lang
    state: dict[str, Any]
    state_version: int
    verified_at: datetime | None
    created_at: datetime

    @property
    def address(self) -> Address:
        return Address(channel=self.channel, sender=self.sender)


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    role: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderIntent:
    idempotency_key: str
    conversation_id: int
    customer_id: str
    kind: str
    product: str | None
    amount: Decimal | None
    shares: Decimal | None
    status: str
    order_id: str | None
    result: dict[str, Any] | None


class StaleState(Exception):
    """Another writer saved this conversation since we read it (optimistic locking)."""


def _conv(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        channel=row.channel,  # type: ignore[arg-type]
        sender=row.sender,
        customer_id=row.customer_id,
        lang="en" if row.lang == "en" else "zh",
        state=copy.deepcopy(row.state or {}),
        state_version=row.state_version,
        verified_at=as_utc(row.verified_at),
        created_at=as_utc(row.created_at) or utcnow(),
    )


def _intent(row: OrderIntentRow) -> OrderIntent:
    return OrderIntent(
        idempotency_key=row.idempotency_key,
        conversation_id=row.conversation_id,
        customer_id=row.customer_id,
        kind=row.kind,
        product=row.product,
        amount=row.amount,
        shares=row.shares,
        status=row.status,
        order_id=row.order_id,
        result=row.result,
    )


async def get_or_create(
    session: AsyncSession, channel: ChannelName, sender: str, lang: Lang = "zh"
) -> Conversation:
    """The conversation of ``(channel, sender)``, created on first contact."""
    stmt = select(ConversationRow).where(
        ConversationRow.channel == channel, ConversationRow.sender == sender
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is not None:
        return _conv(row)
    try:
        async with session.begin_nested():
            row = ConversationRow(
                channel=channel, sender=sender, lang=lang, state={}, state_version=0
            )
            session.add(row)
            await session.flush()
    except IntegrityError:  # a concurrent first message from another process created it
        row = (await session.execute(stmt)).scalar_one()
    return _conv(row)


async def get_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    row = await session.get(ConversationRow, conversation_id)
    return _conv(row) if row is not None else None


async def find_by_customer(session: AsyncSession, customer_id: str) -> list[Address]:
    """Every chat linked to a platform customer (where notifications go), oldest first."""
    stmt = (
        select(ConversationRow.channel, ConversationRow.sender)
        .where(ConversationRow.customer_id == customer_id)
        .order_by(ConversationRow.id)
    )
    return [Address(channel=c, sender=s) for c, s in (await session.execute(stmt)).all()]  # type: ignore[arg-type]


async def conversations_of_customer(session: AsyncSession, customer_id: str) -> list[Conversation]:
    stmt = (
        select(ConversationRow)
        .where(ConversationRow.customer_id == customer_id)
        .order_by(ConversationRow.id)
    )
    return [_conv(r) for r in (await session.execute(stmt)).scalars()]


async def save(
    session: AsyncSession,
    conversation_id: int,
    *,
    expected_version: int,
    state: dict[str, Any],
    lang: Lang,
    customer_id: str | None,
    verified_at: datetime | None,
) -> int:
    """Write the state if nobody else did since ``expected_version``; returns the new version."""
    result = await session.execute(
        update(ConversationRow)
        .where(
            ConversationRow.id == conversation_id,
            ConversationRow.state_version == expected_version,
        )
        .values(
            state=state,
            state_version=expected_version + 1,
            lang=lang,
            customer_id=customer_id,
            # SQLite keeps no offset: store UTC so every reader gets the same instant back.
            verified_at=None if verified_at is None else verified_at.astimezone(UTC),
            updated_at=utcnow(),
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleState(conversation_id)
    return expected_version + 1


async def append_transcript(
    session: AsyncSession, conversation_id: int, role: str, text: str, intent: str | None = None
) -> None:
    session.add(TranscriptRow(conversation_id=conversation_id, role=role, text=text,
                              intent=intent[:64] if intent else None))


async def recent_transcript(
    session: AsyncSession, conversation_id: int, n: int = 20
) -> list[TranscriptLine]:
    """The last ``n`` lines of a conversation, oldest first."""
    stmt = (
        select(TranscriptRow)
        .where(TranscriptRow.conversation_id == conversation_id)
        .order_by(TranscriptRow.id.desc())
        .limit(n)
    )
    rows = list((await session.execute(stmt)).scalars())
    rows.reverse()
    return [
        TranscriptLine(role=r.role, text=r.text, created_at=as_utc(r.created_at) or utcnow())
        for r in rows
    ]


async def erase_conversation(session: AsyncSession, conversation_id: int) -> None:
    """Forget a chat: transcripts deleted, state cleared, link removed (the row stays as an address)."""
    await session.execute(delete(TranscriptRow).where(TranscriptRow.conversation_id == conversation_id))
    await session.execute(
        update(ConversationRow)
        .where(ConversationRow.id == conversation_id)
        .values(
            state={},
            customer_id=None,
            verified_at=None,
            state_version=ConversationRow.state_version + 1,
            updated_at=utcnow(),
        )
    )


async def claim_order_intent(
    session: AsyncSession,
    *,
    idempotency_key: str,
    conversation_id: int,
    customer_id: str,
    kind: str,
    product: str | None,
    amount: Decimal | None,
    shares: Decimal | None,
) -> tuple[bool, OrderIntent]:
    """Insert the intent; ``(False, existing)`` when the key was already claimed."""
    existing = await get_order_intent(session, idempotency_key)
    if existing is not None:
        return False, existing
    try:
        async with session.begin_nested():
            row = OrderIntentRow(
                idempotency_key=idempotency_key,
                conversation_id=conversation_id,
                customer_id=customer_id,
                kind=kind,
                product=product,
                amount=amount,
                shares=shares,
                status="pending",
            )
            session.add(row)
            await session.flush()
    except IntegrityError:
        found = await get_order_intent(session, idempotency_key)
        if found is None:  # pragma: no cover - the unique violation names this key
            raise
        return False, found
    return True, _intent(row)


async def get_order_intent(session: AsyncSession, idempotency_key: str) -> OrderIntent | None:
    stmt = select(OrderIntentRow).where(OrderIntentRow.idempotency_key == idempotency_key)
    row = (await session.execute(stmt)).scalar_one_or_none()
    return _intent(row) if row is not None else None


async def finish_order_intent(
    session: AsyncSession,
    idempotency_key: str,
    *,
    status: str,
    order_id: str | None,
    result: dict[str, Any] | None,
) -> None:
    await session.execute(
        update(OrderIntentRow)
        .where(OrderIntentRow.idempotency_key == idempotency_key)
        .values(status=status, order_id=order_id, result=result, updated_at=utcnow())
    )


async def order_intents_of(session: AsyncSession, customer_id: str) -> list[OrderIntent]:
    stmt = (
        select(OrderIntentRow)
        .where(OrderIntentRow.customer_id == customer_id)
        .order_by(OrderIntentRow.id)
    )
    return [_intent(r) for r in (await session.execute(stmt)).scalars()]
