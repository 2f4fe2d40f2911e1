"""Tables and queries of the channels: pending pushed messages, one-time files, long button payloads."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import EncryptedJSON, EncryptedText
from bot.store.db import Base, as_utc, utcnow

__all__ = [
    "PendingMessage",
    "StoredFile",
    "button_payload",
    "delete_expired",
    "save_button",
    "store_file",
    "store_pending",
    "take_file",
    "take_pending",
]


class PendingRow(Base):
    """A message pushed to a REST or web chat sender who was not connected; delivered once."""

    __tablename__ = "channel_pending"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(128))
    body: Mapped[Any] = mapped_column(EncryptedJSON("channel_pending.body"))  # the rendered message (text, buttons)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_channel_pending_addr", "channel", "sender", "id"),)


class FileRow(Base):
    """A one-time download: found by the SHA-256 of its token, so a DB dump holds no live link."""

    __tablename__ = "channel_files"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    data: Mapped[str] = mapped_column(EncryptedText("channel_files.data"))  # base64 of the bytes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ButtonRow(Base):
    """A button payload longer than Telegram's 64-byte callback_data, kept under a short key."""

    __tablename__ = "channel_buttons"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class PendingMessage:
    id: int
    body: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredFile:
    channel: str
    sender: str
    filename: str
    content_type: str
    data: bytes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def store_pending(
    session: AsyncSession, channel: str, sender: str, body: dict[str, Any]
) -> int:
    row = PendingRow(channel=channel, sender=sender, body=body, created_at=utcnow())
    session.add(row)
    await session.flush()
    return row.id


async def take_pending(
    session: AsyncSession, channel: str, sender: str, limit: int = 100
) -> list[PendingMessage]:
    """The oldest pending messages of one address, removed as they are read (each once, even
    when several processes read at the same time: only the rows this DELETE removed count)."""
    rows = (
        await session.execute(
            select(PendingRow.id, PendingRow.body, PendingRow.created_at)
            .where(PendingRow.channel == channel, PendingRow.sender == sender)
            .order_by(PendingRow.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return []
    taken = set(
        (
            await session.execute(
                delete(PendingRow)
                .where(PendingRow.id.in_([r.id for r in rows]))
                .returning(PendingRow.id)
            )
        ).scalars()
    )
    return [
        PendingMessage(id=r.id, body=r.body, created_at=as_utc(r.created_at) or utcnow())
        for r in rows
        if r.id in taken
    ]


async def store_file(
    session: AsyncSession,
    *,
    token: str,
    channel: str,
    sender: str,
    filename: str,
    content_type: str,
    data: bytes,
    ttl: timedelta,
) -> None:
    now = utcnow()
    session.add(
        FileRow(
            token_hash=token_hash(token),
            channel=channel,
            sender=sender,
            filename=filename,
            content_type=content_type,
            data=base64.b64encode(data).decode("ascii"),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()


async def peek_file_owner(session: AsyncSession, token: str) -> tuple[str, str] | None:
    """(channel, sender) of a live file, without consuming it."""
    row = (
        await session.execute(
            select(FileRow.channel, FileRow.sender, FileRow.expires_at).where(
                FileRow.token_hash == token_hash(token)
            )
        )
    ).first()
    if row is None or (as_utc(row.expires_at) or utcnow()) <= utcnow():
        return None
    return row.channel, row.sender


async def take_file(session: AsyncSession, token: str) -> StoredFile | None:
    """The file behind a token, deleted in the same step (single download); None when unknown,
    expired or already downloaded."""
    h = token_hash(token)
    row = (await session.execute(select(FileRow).where(FileRow.token_hash == h))).scalar_one_or_none()
    if row is None:
        return None
    expired = (as_utc(row.expires_at) or utcnow()) <= utcnow()
    result = await session.execute(delete(FileRow).where(FileRow.token_hash == h))
    if expired or result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return StoredFile(
        channel=row.channel,
        sender=row.sender,
        filename=row.filename,
        content_type=row.content_type,
        data=base64.b64decode(row.data),
    )


async def delete_expired(session: AsyncSession, older_than: timedelta = timedelta(days=7)) -> int:
    """Housekeeping: expired files, and pending messages nobody collected for a long time."""
    now = utcnow()
    files = await session.execute(delete(FileRow).where(FileRow.expires_at <= now))
    pending = await session.execute(delete(PendingRow).where(PendingRow.created_at <= now - older_than))
    buttons = await session.execute(delete(ButtonRow).where(ButtonRow.created_at <= now - older_than))
    return int(files.rowcount + pending.rowcount + buttons.rowcount)  # type: ignore[attr-defined]


async def save_button(session: AsyncSession, key: str, payload: str) -> None:
    session.add(ButtonRow(key=key, payload=payload, created_at=utcnow()))
    await session.flush()


async def button_payload(session: AsyncSession, key: str) -> str | None:
    return (
        await session.execute(select(ButtonRow.payload).where(ButtonRow.key == key))
    ).scalar_one_or_none()
