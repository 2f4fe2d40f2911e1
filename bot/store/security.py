"""Tables of the security area: the hash-chained audit log and its head (lock row + anchor)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base

# SQLite only treats INTEGER PRIMARY KEY specially; BIGINT elsewhere.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

GENESIS_HASH = "0" * 64
HEAD_ID = 1


class AuditEvent(Base):
    """One audit row. Append-only: ``hash`` = SHA-256(canonical row + ``prev_hash``).

    ``actor`` and ``subject`` are keyed pseudonyms (bot.crypto.pseudonym), ``details`` a
    canonical JSON object without personal data, so the log may be kept for years."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(48), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single lock row appends serialise on, the chain's tip and the retention anchor.

    After a purge, ``anchor_seq`` / ``anchor_hash`` are the seq and hash of the last purged
    row: the first kept row must link to them, so the shortened chain stays verifiable."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(SeqType, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    anchor_seq: Mapped[int] = mapped_column(SeqType, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


SECURITY_TABLES = [AuditEvent.__table__, AuditHead.__table__]
