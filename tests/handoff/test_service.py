"""The handoff service as the engine uses it: tickets, queue, ownership, relay, rating."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.handoff import service
from bot.security import audit
from bot.settings import Settings
from bot.store import handoff as store
from bot.store.db import Database

pytestmark = pytest.mark.timeout(60)


async def _agent(db: Database, name: str = "alice", role: str = "agent") -> store.Agent:
    async with db.begin() as s:
        return await store.add_agent(s, name, role, "x")


async def _open(db: Database, conv: int, reason: str = "customer_request", sender: str | None = None):
    return await service.open_ticket(
        db,
        conversation_id=conv,
        reason=reason,
        intent="human_handoff",
        entities={},
        lang="zh",
        channel="rest",
        transcript=[{"role": "customer", "text": "我的手机号13812345678，转人工"}],
        sender=sender or f"user{conv}",
    )


async def test_one_ticket_per_conversation_and_queue_order(db: Database, delivery) -> None:
    first = await _open(db, 1)
    again = await _open(db, 1)
    assert first.created and not again.created and again.ticket_id == first.ticket_id
    assert first.position == 1 and first.eta_minutes >= 1 and first.staffed
    second = await _open(db, 2)
    assert second.position == 2
    # A lockout jumps ahead of the ordinary requests (complaints and lockouts first).
    urgent = await _open(db, 3, reason="lockout")
    assert urgent.position == 1
    async with db.begin() as s:
        queue = await store.open_tickets(s)
        ticket = await store.get_ticket(s, first.ticket_id)
    assert [t.conversation_id for t in queue] == [3, 1, 2]
    # The transcript snapshot never carries a full phone number.
    assert "13812345678" not in str(ticket.transcript)


async def test_fifty_concurrent_requests_open_one_ticket(db: Database, delivery) -> None:
    infos = await asyncio.gather(*(_open(db, 42) for _ in range(50)))
    assert len({i.ticket_id for i in infos}) == 1
    assert sum(i.created for i in infos) == 1
    async with db.begin() as s:
        assert len([t for t in await store.open_tickets(s) if t.conversation_id == 42]) == 1


async def test_agent_owns_relay_reply_resolve_and_rating(db: Database, delivery) -> None:
    info = await _open(db, 7, sender="cust7")
    agent = await _agent(db)
    assert not await service.agent_owns(db, 7)
    await service.claim(db, info.ticket_id, agent)
    assert await service.agent_owns(db, 7)
    await service.relay_from_customer(db, 7, "你好，我的钱没到账")
    await service.reply(db, info.ticket_id, agent, "请稍等，我帮您查一下")
    await service.note(db, info.ticket_id, agent, "客户情绪稳定")
    await delivery.flush()
    texts = delivery.texts("cust7")
    assert "请稍等，我帮您查一下" in texts
    assert not any("客户情绪稳定" in t for t in texts)  # notes never reach the customer
    assert not await service.record_rating(db, 7, 5)  # nothing resolved yet
    await service.resolve(db, info.ticket_id, agent)
    assert not await service.agent_owns(db, 7)
    await delivery.flush()
    last = delivery.sent[-1][2]
    assert [b.payload for b in last.buttons] == [f'/rate{{"score": {n}}}' for n in range(1, 6)]
    assert not await service.record_rating(db, 7, 9)
    assert await service.record_rating(db, 7, 4)
    assert not await service.record_rating(db, 7, 5)  # rated once
    async with db.begin() as s:
        ticket = await store.get_ticket(s, info.ticket_id)
        kinds = [m.kind for m in await store.messages(s, info.ticket_id)]
    assert ticket.rating == 4 and ticket.state == store.RESOLVED
    assert kinds.count("customer") == 1 and kinds.count("agent") == 1 and kinds.count("note") == 1
    # The sensitive steps are in the audit trail, under pseudonyms only.
    entries = await audit.entries_for(db, "conversation:7")
    assert [e.kind for e in reversed(entries)] == ["handoff_opened", "agent_claim", "agent_reply", "agent_resolve"]
    assert all("alice" not in e.actor for e in entries)
    # After resolution the conversation may open a new ticket.
    assert (await _open(db, 7)).created


async def test_only_the_owner_replies_and_claims_do_not_race(db: Database, delivery) -> None:
    info = await _open(db, 8)
    alice, bob = await _agent(db, "alice"), await _agent(db, "bob")
    results = await asyncio.gather(
        service.claim(db, info.ticket_id, alice), service.claim(db, info.ticket_id, bob), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, store.Ticket)]
    losers = [r for r in results if isinstance(r, service.HandoffError)]
    assert len(winners) == 1 and len(losers) == 1 and losers[0].reason == "already_claimed"
    owner = alice if winners[0].agent == "alice" else bob
    other = bob if owner is alice else alice
    with pytest.raises(service.HandoffError) as exc:
        await service.reply(db, info.ticket_id, other, "hi")
    assert exc.value.status == 403
    moved = await service.transfer(db, info.ticket_id, owner, other.username)
    assert moved.agent == other.username
    with pytest.raises(service.HandoffError):
        await service.reply(db, info.ticket_id, owner, "still mine?")


async def test_outside_staffed_hours_the_ticket_is_kept(db: Database, tmp_path) -> None:
    settings = Settings(staffed_hours="09:00-21:00", keys_file=tmp_path / "k.json", _env_file=None)  # type: ignore[call-arg]
    service.install(db, settings)
    # 23:30 in Shanghai.
    night = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    info = await service.open_ticket(
        db, conversation_id=9, reason="customer_request", intent=None, entities={}, lang="en",
        channel="rest", transcript=[], sender="night", now=night,
    )
    assert not info.staffed and info.answer_within_hours == 24
    assert info.next_staffed_at is not None and info.next_staffed_at.astimezone(UTC) == datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    text = service.queue_message("en", info)
    assert "24 hours" in text and str(info.ticket_id) in text
    async with db.begin() as s:
        assert (await store.open_ticket_for(s, 9)) is not None
