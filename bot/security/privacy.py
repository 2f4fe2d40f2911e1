"""Customer rights (PIPL): export what finbot holds about a conversation, and erase it.

Which tables hold a conversation's data is discovered, so a new area is covered without
touching this file:

1. a table registered with ``register_personal_data(table, column_for_conversation, ...)``;
2. else a table with a ``conversation_id`` column (rows with that conversation's id);
3. else a table with ``channel`` and ``sender`` columns (rows sent to that chat address);
4. else a table with a foreign key to a table found by 1-3 (child rows, e.g. ticket messages);
5. else a table with a ``customer_id`` column (rows of the linked customer, erased only when
   no other conversation of that customer remains linked).

Erasure deletes matching rows unless the table is registered with ``erase="scrub"`` and the
values to overwrite (constants, or callables given the old value). The ``conversations`` row
itself is kept, so the chat keeps working, but unlinked, its state cleared and its
``state_version`` bumped (a stale save of the old state fails). The audit trail is never
touched: it holds pseudonyms only, and the erasure itself is recorded there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Column, Table, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.crypto import pseudonym
from bot.locales import translate
from bot.security import audit
from bot.store.db import Base, Database, as_utc, utcnow
from bot.types import Attachment, Lang, Outgoing

__all__ = [
    "ErasureReport",
    "PersonalData",
    "erase_conversation",
    "erased_message",
    "export_customer_data",
    "export_message",
    "forget",
    "personal_tables",
    "register_personal_data",
]

Scrub = Mapping[str, Any | Callable[[Any], Any]]

CONVERSATIONS = "conversations"
# Tables that are never a customer's data (or are handled on purpose elsewhere).
_NOT_PERSONAL = {"audit_log", "audit_head", "alembic_version", CONVERSATIONS}
# Columns never shown in an export: secrets and internal machinery, not the customer's data.
_EXPORT_EXCLUDE = {"token_hash", "password_hash", "open_key", "lease_until", "dedupe_key", "data"}


@dataclass(frozen=True, slots=True)
class PersonalData:
    """How one table's rows belong to a conversation, and how they are erased."""

    table: str
    conversation_column: str | None = None
    address_columns: tuple[str, str] | None = None  # (channel column, sender column)
    parent: tuple[str, str, str] | None = None  # (fk column, parent table, parent column)
    customer_column: str | None = None
    erase: Literal["delete", "scrub"] = "delete"
    scrub: Scrub = field(default_factory=dict)
    section: str | None = None  # where it appears in the export (default: the table name)


_registry: dict[str, PersonalData] = {}


def register_personal_data(
    table: Table | str,
    column_for_conversation: str | None = "conversation_id",
    *,
    address_columns: tuple[str, str] | None = None,
    parent: tuple[str, str, str] | None = None,
    customer_column: str | None = None,
    erase: Literal["delete", "scrub"] = "delete",
    scrub: Scrub | None = None,
    section: str | None = None,
) -> None:
    """Declare that ``table`` holds personal data of a conversation (see the module doc)."""
    name = table if isinstance(table, str) else table.name
    if erase == "scrub" and not scrub:
        raise ValueError("erase='scrub' needs the columns to overwrite")
    _registry[name] = PersonalData(
        table=name,
        conversation_column=column_for_conversation,
        address_columns=address_columns,
        parent=parent,
        customer_column=customer_column,
        erase=erase,
        scrub=dict(scrub or {}),
        section=section,
    )


def _customer_pseudonym(value: Any) -> Any:
    return None if value is None else pseudonym(f"customer:{value}")


# Defaults for tables of other areas where deleting would lose what is not personal:
# tickets keep timing, reason and rating for the supervisor's statistics; platform events
# keep their id (replay protection) but lose their payload and who they were about.
register_personal_data(
    "handoff_tickets",
    "conversation_id",
    erase="scrub",
    scrub={"sender": None, "customer_id": None, "entities": {}, "summary": None, "transcript": []},
    section="tickets",
)
register_personal_data(
    "inbox_events",
    None,
    customer_column="customer_id",
    erase="scrub",
    scrub={"payload": {}, "customer_id": _customer_pseudonym},
    section="platform_events",
)
register_personal_data("transcripts", "conversation_id", section="transcripts")
register_personal_data("notification_prefs", "conversation_id", section="preferences")
register_personal_data(
    "outbox_messages", None, address_columns=("channel", "sender"), section="notifications"
)
register_personal_data(
    "channel_pending", None, address_columns=("channel", "sender"), section="notifications"
)


def personal_tables() -> list[tuple[Table, PersonalData]]:
    """Every table holding conversation data, registered or found by convention, parents first."""
    from bot.store import models  # noqa: F401  (every area's tables)

    found: dict[str, tuple[Table, PersonalData]] = {}
    pending: list[Table] = []
    for table in Base.metadata.sorted_tables:  # sorted by dependency: parents come first
        if table.name in _NOT_PERSONAL:
            continue
        spec = _registry.get(table.name)
        cols = table.columns
        if spec is None:
            if "conversation_id" in cols:
                spec = PersonalData(table.name, conversation_column="conversation_id")
            elif "channel" in cols and "sender" in cols:
                spec = PersonalData(table.name, address_columns=("channel", "sender"))
            else:
                parent = _parent_link(table, found)
                if parent is not None:
                    spec = PersonalData(table.name, parent=parent)
                elif "customer_id" in cols:
                    spec = PersonalData(table.name, customer_column="customer_id")
        if spec is None:
            pending.append(table)
            continue
        found[table.name] = (table, spec)
    return list(found.values())


def _parent_link(table: Table, found: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for fk in table.foreign_keys:
        target = fk.column.table.name
        if target in found or target == CONVERSATIONS:
            return (fk.parent.name, target, fk.column.name)
    return None


@dataclass(frozen=True, slots=True)
class _Who:
    conversation_id: int
    channel: str
    sender: str
    customer_id: str | None
    customer_alone: bool  # no other conversation is linked to this customer


async def _who(session: AsyncSession, conversation_id: int) -> _Who | None:
    conv = Base.metadata.tables[CONVERSATIONS]
    row = (await session.execute(select(conv).where(conv.c.id == conversation_id))).one_or_none()
    if row is None:
        return None
    alone = True
    if row.customer_id is not None:
        others = (
            await session.execute(
                select(func.count()).where(
                    conv.c.customer_id == row.customer_id, conv.c.id != conversation_id
                )
            )
        ).scalar_one()
        alone = int(others) == 0
    return _Who(conversation_id, row.channel, row.sender, row.customer_id, alone)


def _where(
    table: Table, spec: PersonalData, who: _Who, located: Mapping[str, tuple[Table, PersonalData]]
) -> Any | None:
    """The SQL condition selecting this conversation's rows of ``table`` (None: no rows)."""
    c = table.c
    if spec.conversation_column:
        return c[spec.conversation_column] == who.conversation_id
    if spec.address_columns:
        ch, snd = spec.address_columns
        return and_(c[ch] == who.channel, c[snd] == who.sender)
    if spec.parent:
        fk_col, parent_name, parent_col = spec.parent
        if parent_name == CONVERSATIONS:
            return c[fk_col] == who.conversation_id
        if parent_name not in located:
            return None
        ptable, pspec = located[parent_name]
        pcond = _where(ptable, pspec, who, located)
        if pcond is None:
            return None
        return c[fk_col].in_(select(ptable.c[parent_col]).where(pcond))
    if spec.customer_column:
        if who.customer_id is None or not who.customer_alone:
            return None
        return c[spec.customer_column] == who.customer_id
    return None


def _plain(value: Any) -> Any:
    """JSON-ready values: Decimal as string, times in ISO 8601 (UTC)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return (as_utc(value) or value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _row(row: Any, columns: list[Column[Any]]) -> dict[str, Any]:
    return {c.name: _plain(getattr(row, c.name)) for c in columns if c.name not in _EXPORT_EXCLUDE}


async def export_customer_data(db: Database, conversation_id: int) -> dict[str, Any]:
    """What finbot holds about one conversation, decrypted (PIPL right of access).

    Sections: ``conversation`` (link, language, state), ``preferences``, ``transcripts``,
    ``tickets``, ``notifications``, ``platform_events``, any other table found, and
    ``audit`` (kinds and times of recorded operations). Empty dict when unknown."""
    async with db.sessions() as session:
        who = await _who(session, conversation_id)
        if who is None:
            return {}
        conv = Base.metadata.tables[CONVERSATIONS]
        crow = (await session.execute(select(conv).where(conv.c.id == conversation_id))).one()
        out: dict[str, Any] = {
            "generated_at": utcnow().isoformat(),
            "conversation": {
                **_row(crow, list(conv.columns)),
                "linked": who.customer_id is not None,
            },
            "preferences": [],
            "transcripts": [],
            "tickets": [],
            "notifications": [],
        }
        located = {t.name: (t, s) for t, s in personal_tables()}
        for table, spec in located.values():
            cond = _where(table, spec, who, located)
            if cond is None:
                continue
            order = list(table.primary_key.columns)
            rows = (await session.execute(select(table).where(cond).order_by(*order))).all()
            if not rows:
                continue
            section = spec.section or table.name
            items = [{"table": table.name, **_row(r, list(table.columns))} for r in rows]
            if section in ("transcripts", "preferences"):
                for item in items:
                    item.pop("table")
            out.setdefault(section, []).extend(items)
        actor = audit.party(f"conversation:{conversation_id}")
        subjects = [actor]
        if who.customer_id is not None:
            subjects.append(audit.party(who.customer_id))
        from bot.store.security import AuditEvent

        arows = (
            await session.execute(
                select(AuditEvent.seq, AuditEvent.at, AuditEvent.kind)
                .where((AuditEvent.actor == actor) | AuditEvent.subject.in_(subjects))
                .order_by(AuditEvent.seq)
            )
        ).all()
        out["audit"] = [{"seq": r.seq, "at": _plain(r.at), "kind": r.kind} for r in arows]
        return out


@dataclass(frozen=True, slots=True)
class ErasureReport:
    conversation_id: int
    deleted: dict[str, int]
    scrubbed: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.scrubbed.values())


async def forget(
    db: Database, conversation_id: int, *, actor: str | None = None
) -> ErasureReport | None:
    """Erase one conversation's transcripts and personal data in one transaction (PIPL).

    Returns what was erased (row counts per table), or None for an unknown conversation.
    The conversation row stays (unlinked, state cleared, version bumped); see the module
    doc for how other areas' tables are found and erased."""
    async with db.begin() as session:
        who = await _who(session, conversation_id)
        if who is None:
            return None
        deleted: dict[str, int] = {}
        scrubbed: dict[str, int] = {}
        tables = personal_tables()
        located = {t.name: (t, s) for t, s in tables}
        # Children before parents: a child's condition looks its parent's rows up.
        for table, spec in reversed(tables):
            cond = _where(table, spec, who, located)
            if cond is None:
                continue
            if spec.erase == "delete":
                result = await session.execute(delete(table).where(cond))
                if result.rowcount:  # type: ignore[attr-defined]
                    deleted[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
                continue
            n = await _scrub(session, table, spec, cond)
            if n:
                scrubbed[table.name] = n
        conv = Base.metadata.tables[CONVERSATIONS]
        values: dict[str, Any] = {"customer_id": None, "state": {}}
        for name in ("verified_at",):
            if name in conv.c:
                values[name] = None
        if "state_version" in conv.c:
            values["state_version"] = conv.c.state_version + 1
        if "updated_at" in conv.c:
            values["updated_at"] = utcnow()
        await session.execute(update(conv).where(conv.c.id == conversation_id).values(**values))
        await audit.record(
            session,
            "data_erased",
            actor=actor or f"conversation:{conversation_id}",
            subject=who.customer_id or f"conversation:{conversation_id}",
            details={"deleted": deleted, "scrubbed": scrubbed},
        )
        return ErasureReport(conversation_id, deleted, scrubbed)


async def _scrub(session: AsyncSession, table: Table, spec: PersonalData, cond: Any) -> int:
    constants = {k: v for k, v in spec.scrub.items() if not callable(v) and k in table.c}
    computed = {k: v for k, v in spec.scrub.items() if callable(v) and k in table.c}
    if not computed:
        result = await session.execute(update(table).where(cond).values(**constants))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    pk = list(table.primary_key.columns)
    rows = (await session.execute(select(*pk, *(table.c[k] for k in computed)).where(cond))).all()
    for row in rows:
        values = dict(constants)
        for k, fn in computed.items():
            values[k] = fn(getattr(row, k))
        match = [c == getattr(row, c.name) for c in pk]
        await session.execute(update(table).where(*match).values(**values))
    return len(rows)


# The engine's forget-me task looks for this name (bot/handlers/link.py).
erase_conversation = forget


def export_message(data: Mapping[str, Any], lang: Lang) -> Outgoing:
    """The chat reply to "我的数据" / "my data": a short summary plus the export as a JSON file."""
    if not data:
        return Outgoing(text=translate(lang, "security.nothing"))
    linked = data.get("conversation", {}).get("linked", False)
    text = translate(
        lang,
        "security.my_data.summary",
        linked=translate(
            lang, "security.my_data.linked" if linked else "security.my_data.unlinked"
        ),
        lang="中文" if data.get("conversation", {}).get("lang") == "zh" else "English",
        transcripts=len(data.get("transcripts", [])),
        tickets=len(data.get("tickets", [])),
        notifications=len(data.get("notifications", [])),
        audit=len(data.get("audit", [])),
    )
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    filename = translate(lang, "security.my_data.filename", date=utcnow().strftime("%Y%m%d"))
    return Outgoing(text=text, attachment=Attachment(filename, "application/json", body))


def erased_message(report: ErasureReport | None, lang: Lang) -> Outgoing:
    """The chat reply after ``forget``."""
    if report is None:
        return Outgoing(text=translate(lang, "security.nothing"))
    return Outgoing(text=translate(lang, "security.erased", rows=report.total))
