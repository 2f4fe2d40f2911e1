"""The audit trail: append-only, hash-chained rows of sensitive operations with pseudonymous ids."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.crypto import pseudonym
from bot.security.masking import mask_text
from bot.store.db import Database, as_utc, utcnow
from bot.store.security import GENESIS_HASH, HEAD_ID, AuditEvent, AuditHead

__all__ = [
    "MIN_RETENTION",
    "AuditEntry",
    "AuditProblem",
    "check",
    "entries_for",
    "party",
    "purge",
    "record",
    "verify",
]

# F2 §5.2: audit logs of sensitive operations are kept at least three years.
MIN_RETENTION = timedelta(days=3 * 365)

# Actors that are roles, not people: stored as they are so an operator can read them.
ROLE_ACTORS = frozenset({"system", "bot", "platform", "operator", "cli", "scheduler"})
_PSEUDONYM = re.compile(r"^p[0-9a-f]{24}$")
# Detail keys that would carry personal data or secrets: their values never reach the log.
_REDACT_KEY = re.compile(
    r"phone|mobile|name|id_?number|idcard|card|text|message|transcript|password|passwd|"
    r"token|secret|code|cookie|authorization|address|email|birth",
    re.IGNORECASE,
)
# Keys that look like the above but only hold machine identifiers or enums.
_SAFE_KEYS = frozenset(
    {
        "order_id",
        "complaint_id",
        "ticket_id",
        "product",
        "product_code",
        "status",
        "reason",
        "channel",
        "lang",
        "intent",
        "side",
        "category",
        "kind",
        "risk_code",
        "key_id",
    }
)
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """Where and why the chain does not verify."""

    seq: int
    reason: Literal["edited", "missing", "broken_link", "no_head", "unrecorded_purge"]

    def describe(self) -> str:
        text = {
            "edited": "row content does not match its hash (edited)",
            "missing": "row is missing (deleted or gap in the sequence)",
            "broken_link": "row does not link to the previous row's hash",
            "no_head": "audit head row is missing",
            "unrecorded_purge": "rows before this one were removed without a recorded purge",
        }[self.reason]
        return f"seq {self.seq}: {text}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    kind: str
    actor: str
    subject: str | None
    details: dict[str, Any]


def party(value: str | None) -> str | None:
    """How an actor or subject is stored: roles as-is, pseudonyms as-is, anything else pseudonymised.

    Pass ids with a type prefix ("customer:C1001", "conversation:42", "agent:alice") so the
    same number in two namespaces never shares a pseudonym."""
    if value is None:
        return None
    if value in ROLE_ACTORS or _PSEUDONYM.match(value):
        return value
    return pseudonym(value)


async def record(
    session: AsyncSession,
    kind: str,
    *,
    actor: str,
    subject: str | None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one row in the caller's transaction (it commits or rolls back with the caller).

    Appends are serialised on the head row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
    single writer, taken by an UPDATE before any read so no stale snapshot is used)."""
    head = await _lock_head(session)
    seq = head.last_seq + 1
    when = (at or utcnow()).astimezone(UTC)
    row = {
        "seq": seq,
        "at": when,
        "kind": kind,
        "actor": party(actor) or "system",
        "subject": party(subject),
        "details": _canonical_details(details or {}),
        "prev_hash": head.last_hash,
    }
    row["hash"] = _hash(row)
    await session.execute(sa_insert(AuditEvent).values(**row))
    await session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_seq=seq, last_hash=row["hash"])
    )


@dataclass(slots=True)
class _Head:
    last_seq: int
    last_hash: str
    anchor_seq: int
    anchor_hash: str


async def _lock_head(session: AsyncSession) -> _Head:
    bind = session.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        # Take the write lock first: a read-then-write transaction could fail on a stale snapshot.
        result = await session.execute(
            update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_seq=AuditHead.last_seq)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await _create_head(session, dialect)
        stmt = select(AuditHead).where(AuditHead.id == HEAD_ID)
    else:
        stmt = select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
    head = (await session.execute(stmt)).scalar_one_or_none()
    if head is None:
        await _create_head(session, dialect)
        head = (await session.execute(stmt)).scalar_one()
    return _Head(head.last_seq, head.last_hash, head.anchor_seq, head.anchor_hash)


async def _create_head(session: AsyncSession, dialect: str) -> None:
    values = {
        "id": HEAD_ID,
        "last_seq": 0,
        "last_hash": GENESIS_HASH,
        "anchor_seq": 0,
        "anchor_hash": GENESIS_HASH,
    }
    # Two first appends may race to create the head: one inserts, the other waits on its lock.
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    await session.execute(insert(AuditHead).values(**values).on_conflict_do_nothing())


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def _clean(value: Any, key: str | None = None) -> Any:
    if key is not None and key not in _SAFE_KEYS and _REDACT_KEY.search(key):
        return "[redacted]"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _canonical_details(details: Mapping[str, Any]) -> str:
    cleaned = _clean(dict(details))
    return json.dumps(
        cleaned, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_json_default
    )


def _iso(value: datetime) -> str:
    return (as_utc(value) or value).astimezone(UTC).isoformat(timespec="microseconds")


def _hash(row: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        [
            row["seq"],
            _iso(row["at"]),
            row["kind"],
            row["actor"],
            row["subject"],
            row["details"],
            row["prev_hash"],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def _read_head(session: AsyncSession) -> _Head | None:
    head = (
        await session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID))
    ).scalar_one_or_none()
    if head is None:
        return None
    return _Head(head.last_seq, head.last_hash, head.anchor_seq, head.anchor_hash)


async def _walk(
    session: AsyncSession, start_seq: int, start_hash: str, upto: int
) -> tuple[AuditProblem | None, int, str]:
    """Check rows start_seq+1 .. upto; returns (problem, last good seq, its hash)."""
    expected, prev = start_seq + 1, start_hash
    while expected <= upto:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.seq >= expected, AuditEvent.seq <= upto)
                    .order_by(AuditEvent.seq)
                    .limit(_BATCH)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return AuditProblem(expected, "missing"), expected - 1, prev
        for row in rows:
            if row.seq != expected:
                return AuditProblem(expected, "missing"), expected - 1, prev
            data = {
                "seq": row.seq,
                "at": row.at,
                "kind": row.kind,
                "actor": row.actor,
                "subject": row.subject,
                "details": row.details,
                "prev_hash": row.prev_hash,
            }
            if _hash(data) != row.hash:
                return AuditProblem(row.seq, "edited"), expected - 1, prev
            if row.prev_hash != prev:
                return AuditProblem(row.seq, "broken_link"), expected - 1, prev
            prev = row.hash
            expected += 1
    return None, expected - 1, prev


async def check(db: Database) -> AuditProblem | None:
    """Walk the whole chain from the retention anchor to the head; the first problem or None."""
    async with db.sessions() as session:
        head = await _read_head(session)
        if head is None:
            first = (await session.execute(select(func.min(AuditEvent.seq)))).scalar()
            return None if first is None else AuditProblem(int(first), "no_head")
        if head.anchor_seq > 0 and not await _purge_recorded(session, head.anchor_seq):
            # Someone cut the oldest rows and moved the anchor by hand: a real purge always
            # appends an "audit_purged" row naming the anchor, and that row is in the chain.
            return AuditProblem(head.anchor_seq + 1, "unrecorded_purge")
        problem, last_seq, last_hash = await _walk(
            session, head.anchor_seq, head.anchor_hash, head.last_seq
        )
        if problem is not None:
            return problem
        if last_hash != head.last_hash:
            return AuditProblem(last_seq, "edited")
        return None


async def _purge_recorded(session: AsyncSession, anchor_seq: int) -> bool:
    details = (
        await session.execute(
            select(AuditEvent.details).where(
                AuditEvent.kind == "audit_purged", AuditEvent.seq > anchor_seq
            )
        )
    ).scalars()
    return any(json.loads(d).get("through_seq") == anchor_seq for d in details)


async def head_hash(db: Database) -> str | None:
    """The chain's newest hash: operators copy it elsewhere (ticket, WORM store) as a witness."""
    async with db.sessions() as session:
        head = await _read_head(session)
        return None if head is None else head.last_hash


async def verify(db: Database) -> int | None:
    """The seq of the first bad row (edited, missing, broken link), or None when the chain holds."""
    problem = await check(db)
    return None if problem is None else problem.seq


async def count(db: Database) -> tuple[int, int | None, int | None]:
    """(rows, first seq, last seq) of the stored chain, for operators."""
    async with db.sessions() as session:
        n, lo, hi = (
            await session.execute(
                select(func.count(), func.min(AuditEvent.seq), func.max(AuditEvent.seq))
            )
        ).one()
        return int(n), lo, hi


async def purge(db: Database, older_than: timedelta, *, now: datetime | None = None) -> int:
    """Delete the oldest rows recorded before ``now - older_than``; returns how many.

    Only a prefix of the chain goes (rows up to the first one that must be kept), the head
    stores the last purged row's seq and hash as the new anchor, and the purged span is
    verified first, so a purge can neither break the chain nor hide tampering. The purge
    itself is recorded. ``older_than`` below three years is refused (F2 §5.2)."""
    if older_than < MIN_RETENTION:
        raise ValueError("audit rows must be kept at least three years")
    cutoff = (now or utcnow()) - older_than
    async with db.begin() as session:
        head = await _lock_head(session)
        keep_from = (
            await session.execute(
                select(func.min(AuditEvent.seq)).where(
                    AuditEvent.seq > head.anchor_seq, AuditEvent.at >= cutoff
                )
            )
        ).scalar()
        cut = (int(keep_from) - 1) if keep_from is not None else head.last_seq
        if cut <= head.anchor_seq:
            return 0
        problem, _, cut_hash = await _walk(session, head.anchor_seq, head.anchor_hash, cut)
        if problem is not None:
            raise AuditChainError(problem)
        result = await session.execute(delete(AuditEvent).where(AuditEvent.seq <= cut))
        purged = int(result.rowcount or 0)  # type: ignore[attr-defined]
        await session.execute(
            update(AuditHead)
            .where(AuditHead.id == HEAD_ID)
            .values(anchor_seq=cut, anchor_hash=cut_hash, purged_at=utcnow())
        )
        await record(
            session,
            "audit_purged",
            actor="system",
            subject=None,
            details={"through_seq": cut, "rows": purged, "cutoff": cutoff.isoformat()},
        )
    return purged


class AuditChainError(Exception):
    """The chain failed verification where an operation needed it intact."""

    def __init__(self, problem: AuditProblem) -> None:
        super().__init__(problem.describe())
        self.problem = problem


async def entries_for(db: Database, subject: str, *, limit: int = 200) -> list[AuditEntry]:
    """Audit rows about or by one party (given in clear, e.g. "conversation:42"), newest first."""
    who = party(subject)
    async with db.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where((AuditEvent.subject == who) | (AuditEvent.actor == who))
                    .order_by(AuditEvent.seq.desc())
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        return [
            AuditEntry(
                r.seq, as_utc(r.at) or r.at, r.kind, r.actor, r.subject, json.loads(r.details)
            )
            for r in rows
        ]
