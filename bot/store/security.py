"""Tables of the security area: the hash-chained audit log and its head (lock row + anchor)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import DecryptionError, EncryptedJSON, EncryptedText, KeyRing
from bot.store.db import Base, Database

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


# ---- key rotation: re-encrypt every encrypted column of every table ----


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """A column of some area's table whose type is one of bot.crypto's encrypted types."""

    table: Table
    column: Column[Any]

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


@dataclass(slots=True)
class ReencryptReport:
    columns: list[str] = field(default_factory=list)
    rows_scanned: int = 0
    reencrypted: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0  # a writer updated the value between our read and our write
    unreadable: int = 0  # could not be decrypted with any key: left as it is, reported
    skipped_tables: list[str] = field(default_factory=list)  # no primary key


def encrypted_columns(metadata: MetaData | None = None) -> list[EncryptedColumn]:
    """Every encrypted column, found by type, so other areas' tables are covered automatically."""
    found: list[EncryptedColumn] = []
    for table in (metadata or Base.metadata).sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedJSON):
                found.append(EncryptedColumn(table, column))
    return found


def _key_id(stored: str) -> str | None:
    try:
        return KeyRing.key_id_of(base64.b64decode(stored, validate=True))
    except (ValueError, DecryptionError):
        return None


async def reencrypt_all(
    db: Database,
    ring: KeyRing,
    *,
    metadata: MetaData | None = None,
    batch_size: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> ReencryptReport:
    """Seal every encrypted value not yet under the primary key again, in committed batches.

    Each update is a compare-and-swap on the old ciphertext, so a value the application
    rewrote meanwhile is never overwritten with stale data. Safe to run again (resumes)."""
    report = ReencryptReport()
    by_table: dict[str, list[EncryptedColumn]] = {}
    for ec in encrypted_columns(metadata):
        by_table.setdefault(ec.table.name, []).append(ec)
        report.columns.append(ec.name)
    for cols in by_table.values():
        table = cols[0].table
        pk = list(table.primary_key.columns)
        if not pk:
            report.skipped_tables.append(table.name)
            continue
        raw = [type_coerce(ec.column, Text()).label(f"c{i}") for i, ec in enumerate(cols)]
        last: tuple[Any, ...] | None = None
        while True:
            stmt = select(*pk, *raw).order_by(*pk).limit(batch_size)
            if last is not None:
                stmt = stmt.where(tuple_(*pk) > tuple_(*last))
            async with db.begin() as session:
                rows = (await session.execute(stmt)).all()
                if not rows:
                    break
                for row in rows:
                    report.rows_scanned += 1
                    keys = tuple(row[: len(pk)])
                    for i, ec in enumerate(cols):
                        stored = row[len(pk) + i]
                        if stored is None:
                            continue
                        kid = _key_id(stored)
                        if kid == ring.primary_id:
                            report.already_current += 1
                            continue
                        try:
                            sealer = cast(EncryptedText | EncryptedJSON, ec.column.type)
                            fresh = sealer.reencrypt(stored)
                        except DecryptionError:
                            report.unreadable += 1
                            continue
                        target = type_coerce(ec.column, Text())
                        cond = [c == v for c, v in zip(pk, keys, strict=True)]
                        result = await session.execute(
                            update(table)
                            .where(*cond, target == type_coerce(stored, Text()))
                            .values({ec.column.name: type_coerce(fresh, Text())})
                        )
                        if result.rowcount:  # type: ignore[attr-defined]
                            report.reencrypted += 1
                        else:
                            report.changed_meanwhile += 1
                last = tuple(rows[-1][: len(pk)])
            if progress is not None:
                progress(table.name, len(rows))
    return report


async def key_usage(db: Database, metadata: MetaData | None = None) -> dict[str, int]:
    """How many stored values each key id protects (operators check a rotation finished)."""
    usage: dict[str, int] = {}
    async with db.sessions() as session:
        for ec in encrypted_columns(metadata):
            col = type_coerce(ec.column, Text())
            result = await session.stream(select(col).where(ec.column.isnot(None)))
            async for (stored,) in result:
                kid = _key_id(stored) or "unreadable"
                usage[kid] = usage.get(kid, 0) + 1
    return usage
