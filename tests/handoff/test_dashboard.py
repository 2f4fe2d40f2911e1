"""Dashboard numbers from the stores: containment, handoff rate, waits, CSAT, complaint SLA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.handoff import dashboard, service
from bot.settings import Settings
from bot.store import conversations
from bot.store import handoff as store
from bot.store.db import Database

pytestmark = pytest.mark.timeout(60)


async def test_metrics_over_a_period(db: Database, delivery, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    async with db.begin() as s:
        convs = [await conversations.get_or_create(s, "rest", f"d{i}", "zh") for i in range(4)]
        for c in convs:
            await conversations.append_transcript(s, c.id, "customer", "你好")
        agent = await store.add_agent(s, "ann", "agent", "x")
    # One conversation asks for a person and is served; one files a complaint nobody answers.
    served = await service.open_ticket(db, conversation_id=convs[0].id, reason="customer_request", intent="human_handoff",
                                       entities={}, lang="zh", channel="rest", sender="d0")
    late = await service.open_ticket(db, conversation_id=convs[1].id, reason="complaint", intent="file_complaint",
                                     entities={}, lang="zh", channel="rest", sender="d1")
    await service.claim(db, served.ticket_id, agent)
    await service.reply(db, served.ticket_id, agent, "您好")
    await service.resolve(db, served.ticket_id, agent)
    assert await service.record_rating(db, convs[0].id, 4)
    now = datetime.now(UTC)
    async with db.begin() as s:  # the complaint has waited 30 hours (> 24 h first-response limit)
        await s.execute(
            update(store.HandoffTicketRow).where(store.HandoffTicketRow.id == late.ticket_id)
            .values(created_at=now - timedelta(hours=30))
        )
    period = dashboard.Period.parse({}, now)
    m = await dashboard.compute(db, settings, period, now)
    assert m.conversations == 4 and m.handed_off == 2
    assert m.containment_rate == pytest.approx(0.5) and m.handoff_rate == pytest.approx(0.5)
    assert m.reasons == {"customer_request": 1, "complaint": 1}
    assert len(m.waits_s) == 1 and len(m.handles_s) == 1
    assert m.csat == 1.0 and m.avg_rating == 4
    assert m.sla_breaches == [late.ticket_id]
    csv_text = dashboard.to_csv(m, settings, now)
    assert csv_text.count("\n") == 3 and ",yes" in csv_text
    html = dashboard.render(m, "sue")
    assert "50.0%" in html and html.count("<svg") == 5
    # A period before any of this is empty, not an error.
    empty = await dashboard.compute(db, settings, dashboard.Period.parse({"from": "2020-01-01", "to": "2020-01-31"}, now), now)
    assert empty.tickets == [] and empty.containment_rate is None


def test_period_and_csv_cells() -> None:
    now = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 01:00 on the 26th in Shanghai
    p = dashboard.Period.parse({}, now)
    assert p.last.isoformat() == "2026-11-26" and len(p.days()) == 7
    for bad in ({"from": "2026-11-30", "to": "2026-11-01"}, {"from": "yesterday"}, {"from": "2020-01-01", "to": "2026-01-01"}):
        with pytest.raises(dashboard.PeriodError):
            dashboard.Period.parse(bad, now)
    assert [dashboard.safe_cell(v) for v in ("=1+1", "+1", "-2", "@SUM(A1)", "plain", 5, None)] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "plain", "5", "",
    ]


async def test_top_intents_and_fallbacks_come_from_recorded_turns(bot_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every customer turn is recorded with what the engine understood, per period."""
    from datetime import datetime as _dt

    from bot.app import DB as _DB
    from bot.app import SETTINGS as _SETTINGS
    from bot.handoff import dashboard as _dashboard
    from tests.support.sandbox import running_sandbox

    async with running_sandbox(tmp_dir=tmp_path) as sandbox:
        bot = await bot_server(backend_url=sandbox.base_url)
        for sender in ("a", "b"):
            await bot.say(sender, "/list_products")
        await bot.say("a", "/greet")
        today = _dt.now(_dashboard.SHANGHAI).date()
        m = await _dashboard.compute(bot.app[_DB], bot.app[_SETTINGS], _dashboard.Period(today, today))
    assert m.intents_source == "period"
    assert m.process_intents["list_products"] == 2 and m.process_intents["greet"] == 1
    assert m.process_turns == 3 and m.fallback_rate == 0.0
