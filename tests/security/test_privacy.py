"""Customer rights: export everything finbot holds about a chat, and erase it in one go."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.crypto import KeyRing, pseudonym
from bot.security import audit, privacy
from bot.store.channels import PendingRow
from bot.store.conversations import ConversationRow, OrderIntentRow, TranscriptRow
from bot.store.db import Database
from bot.store.handoff import HandoffMessageRow, HandoffTicketRow
from bot.store.notifications import InboxEventRow, NotificationPrefsRow, OutboxRow
from bot.store.security import AuditEvent

pytestmark = pytest.mark.timeout(60)

SENTENCE = "其实这笔钱是给我女儿上大学用的"
ID_NUMBER = "11010519491231002X"


async def _seed(db: Database) -> tuple[int, int]:
    """Two chats; the first (linked to C1001) has data in every area's tables."""
    from bot.store.db import utcnow

    async with db.begin() as s:
        me = ConversationRow(
            channel="rest",
            sender="alice",
            customer_id="C1001",
            lang="en",
            state={"slots": {"id": ID_NUMBER}},
            state_version=3,
        )
        other = ConversationRow(
            channel="rest", sender="bob", customer_id="C2002", lang="zh", state={}, state_version=0
        )
        s.add_all([me, other])
        await s.flush()
        s.add_all(
            [
                TranscriptRow(conversation_id=me.id, role="customer", text=SENTENCE),
                TranscriptRow(conversation_id=me.id, role="bot", text="noted"),
                TranscriptRow(conversation_id=other.id, role="customer", text="bob's line"),
                OrderIntentRow(
                    idempotency_key="k1",
                    conversation_id=me.id,
                    customer_id="C1001",
                    kind="buy",
                    product="BOND01",
                    amount=Decimal("5000.00"),
                ),
                NotificationPrefsRow(conversation_id=me.id, categories={"marketing": False}),
                OutboxRow(
                    channel="rest",
                    sender="alice",
                    category="orders",
                    body={"text": "order settled"},
                ),
                OutboxRow(
                    channel="rest", sender="bob", category="orders", body={"text": "bob's notice"}
                ),
                PendingRow(channel="rest", sender="alice", body={"text": "agent says hi"}),
                InboxEventRow(
                    event_id="e1",
                    type="order.status_changed",
                    customer_id="C1001",
                    occurred_at=utcnow(),
                    payload={"order_id": "D2026112500"},
                    outcome="enqueued",
                ),
            ]
        )
        ticket = HandoffTicketRow(
            conversation_id=me.id,
            channel="rest",
            sender="alice",
            lang="en",
            reason="complaint",
            customer_id="C1001",
            entities={"id_number": ID_NUMBER},
            transcript=[SENTENCE],
        )
        s.add(ticket)
        await s.flush()
        s.add(HandoffMessageRow(ticket_id=ticket.id, kind="customer", text=f"my id is {ID_NUMBER}"))
        await audit.record(s, "link", actor=f"conversation:{me.id}", subject="C1001", details={})
        return me.id, other.id


async def test_export_then_forget(db_url: str, ring: KeyRing) -> None:
    db = Database(db_url)
    try:
        me, other = await _seed(db)
        data = await privacy.export_customer_data(db, me)
        json.dumps(data)  # JSON-ready as it is
        assert (
            data["conversation"]["customer_id"] == "C1001" and data["conversation"]["lang"] == "en"
        )
        assert data["conversation"]["linked"] is True
        assert [t["text"] for t in data["transcripts"]] == [SENTENCE, "noted"]
        assert data["preferences"][0]["categories"] == {"marketing": False}
        assert {n["body"]["text"] for n in data["notifications"]} == {
            "order settled",
            "agent says hi",
        }
        assert data["tickets"][0]["entities"] == {"id_number": ID_NUMBER}
        assert data["handoff_messages"][0]["text"] == f"my id is {ID_NUMBER}"
        assert data["order_intents"][0]["amount"] == "5000.00"
        assert data["platform_events"][0]["payload"] == {"order_id": "D2026112500"}
        assert [a["kind"] for a in data["audit"]] == ["link"]
        assert "bob's line" not in json.dumps(data, ensure_ascii=False)
        assert await privacy.export_customer_data(db, 999_999) == {}

        report = await privacy.forget(db, me)
        assert report is not None
        assert report.deleted["transcripts"] == 2 and report.deleted["handoff_messages"] == 1
        assert report.deleted["outbox_messages"] == 1 and report.deleted["channel_pending"] == 1
        assert report.scrubbed == {"handoff_tickets": 1, "inbox_events": 1}

        after = await privacy.export_customer_data(db, me)
        assert after["conversation"]["customer_id"] is None and after["conversation"]["state"] == {}
        assert after["conversation"]["state_version"] == 4  # a stale save of the old state fails
        assert after["transcripts"] == [] and after["notifications"] == []
        dump = json.dumps(after, ensure_ascii=False)
        assert SENTENCE not in dump and ID_NUMBER not in dump and "C1001" not in dump

        async with db.begin() as s:
            ticket = (await s.execute(select(HandoffTicketRow))).scalar_one()
            event = (await s.execute(select(InboxEventRow))).scalar_one()
            bob_lines = (await s.execute(select(TranscriptRow.text))).scalars().all()
            kinds = (
                (await s.execute(select(AuditEvent.kind).order_by(AuditEvent.seq))).scalars().all()
            )
            erased = (
                await s.execute(select(AuditEvent).where(AuditEvent.kind == "data_erased"))
            ).scalar_one()
        # Statistics survive, personal parts do not; the other chat is untouched.
        assert ticket.reason == "complaint" and ticket.transcript == [] and ticket.sender is None
        assert event.event_id == "e1" and event.payload == {}
        assert event.customer_id == pseudonym("customer:C1001")
        assert bob_lines == ["bob's line"]
        assert kinds == ["link", "data_erased"]
        assert erased.subject == pseudonym("C1001") and "C1001" not in erased.details
        assert await audit.verify(db) is None
        assert await privacy.forget(db, 999_999) is None
    finally:
        await db.close()


async def test_forgotten_text_is_gone_from_the_sqlite_file(tmp_path: Path, ring: KeyRing) -> None:
    from tests.support.db import migrate

    path = tmp_path / "bot.sqlite"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    db = Database(url)
    try:
        me, _ = await _seed(db)
        await privacy.forget(db, me)
        async with db.begin() as s:
            await s.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        await db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("bot.sqlite*"))
    # Transcripts are encrypted anyway; the customer id was a plain column until erased.
    for secret in (SENTENCE, ID_NUMBER, "C1001"):
        assert secret.encode() not in raw


async def test_chat_replies_for_my_data_and_forget_me(sqlite_url: str, ring: KeyRing) -> None:
    from bot.locales import catalog

    zh = {k for k in catalog("zh") if k.startswith("security.")}
    assert zh and zh == {k for k in catalog("en") if k.startswith("security.")}
    db = Database(sqlite_url)
    try:
        me, _ = await _seed(db)
        data = await privacy.export_customer_data(db, me)
        en = privacy.export_message(data, "en")
        assert "2 transcript lines" in en.text and "(linked)" in en.text
        assert en.attachment is not None and en.attachment.content_type == "application/json"
        assert json.loads(en.attachment.data)["transcripts"][0]["text"] == SENTENCE
        assert SENTENCE not in en.text and ID_NUMBER not in en.text
        zh_reply = privacy.export_message(data, "zh")
        assert "对话记录 2 条" in zh_reply.text
        report = await privacy.erase_conversation(db, me)
        assert "已删除" in privacy.erased_message(report, "zh").text
        assert privacy.export_message({}, "en").text == "finbot keeps no data about this chat."
    finally:
        await db.close()
