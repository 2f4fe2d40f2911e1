"""The engine's own behaviour: privacy between chats, recognisers, language, limits, handoff."""

from __future__ import annotations

import asyncio

import pytest

from bot.dialogue.engine import clean_text, detect_lang, parse_payload
from tests.dialogue.conftest import World, joined, payloads

pytestmark = pytest.mark.timeout(60)


async def test_unlinked_chat_is_told_how_to_link_and_sees_no_personal_data(world: World) -> None:
    await world.customer(name="李四", cash="88888.88")
    chat = world.chat("stranger-1")
    for ask in ("/check_balance", "/buy_product", '/redeem_product{"product": "BOND01"}', "/transaction_history"):
        text = joined(await chat.say(ask))
        assert "绑定码" in text, (ask, text)
        assert "¥88,888.88" not in text and "李四" not in text


async def test_customer_a_never_sees_customer_b(world: World) -> None:
    a, cust_a = await world.linked_chat("alice", cash="11111.11")
    b, cust_b = await world.linked_chat("bob", cash="22222.22")
    text_a = joined(await a.say("/check_balance"))
    text_b = joined(await b.say("/check_balance"))
    assert "¥11,111.11" in text_a and "¥22,222.22" not in text_a
    assert "¥22,222.22" in text_b and "¥11,111.11" not in text_b
    # A's pending code cannot authorise anything in B's chat.
    await a.say('/buy_product{"product": "MMF01", "amount": "100"}')
    await a.say("/confirm")
    code_a = await world.code(cust_a)
    out_b = joined(await b.say(code_a))
    assert "订单号" not in out_b
    assert await world.sandbox.orders(cust_b["customer_id"]) == []
    assert await world.sandbox.orders(cust_a["customer_id"]) == []


async def test_link_code_forms_and_wrong_codes_are_rate_limited(world: World) -> None:
    cust = await world.customer()
    code = cust["link_code"]
    dashed = f"{code[:4]}-{code[4:]}"
    chat = world.chat("linker-1")
    assert "绑定成功" in joined(await chat.say(f"绑定 {dashed.lower()}"))
    other = await world.customer()
    tg = world.chat("linker-2")
    assert "绑定成功" in joined(await tg.say("/start", start_param=other["link_code"]))
    spammer = world.chat("linker-3")
    for _ in range(world.settings.link_max_wrong):
        assert "not valid" in joined(await spammer.say("link ABCD-EFGH"))  # "link" is English
    third = await world.customer()
    blocked = joined(await spammer.say(third["link_code"]))
    assert "Too many" in blocked and "Linked" not in blocked


async def test_button_payloads_and_fast_paths_work_without_the_nlu(world: World) -> None:
    chat, _ = await world.linked_chat("fast-1")
    out = await chat.say("随便聊聊")  # free text while the NLU is down: apology + menu
    assert "按钮" in joined(out) and "/check_balance" in payloads(out)
    assert "/human_handoff" in payloads(out)
    out = await chat.say("转人工")
    assert out and "排队" in joined(out) or "人工" in joined(out)
    out = await chat.say("never mind")
    assert out and out[0].text.isascii()  # an English fast path answers in English


async def test_long_messages_are_refused_politely_and_control_characters_stripped(world: World) -> None:
    chat = world.chat("long-1")
    out = await chat.say("买" * (world.settings.max_message_chars + 1))
    assert "太长" in joined(out)
    assert clean_text("a\x00b\u202ec\x1b[31m") == "a b c [31m"
    out = await chat.say("\x00\x07/check_balance\x1f")
    assert "绑定码" in joined(out)  # the payload still works once cleaned


def test_language_detection_rules() -> None:
    assert detect_lang("我想买基金", "en") == "zh"
    assert detect_lang("buy some funds", "zh") == "en"
    assert detect_lang("5000", "en") == "en" and detect_lang("5000", "zh") == "zh"
    assert detect_lang("/confirm", "en") == "en"
    assert detect_lang("7KQ4M2XD", "en") == "en" and detect_lang("7KQ4M2XD", "zh") == "zh"
    assert detect_lang("link 7KQ4M2XD", "zh") == "en" and detect_lang("绑定 7KQ4M2XD", "en") == "zh"
    assert detect_lang("买 BOND01", "en") == "zh"
    assert parse_payload('/rate{"score": 4}') == ("rate", {"score": 4})
    assert parse_payload("/faq/trading_hours") == ("faq/trading_hours", {})
    assert parse_payload("/buy{not json") is None


async def test_button_payload_keeps_the_conversation_language(world: World) -> None:
    chat = world.chat("en-1")
    await chat.say("hello")
    out = await chat.say("/check_balance")
    assert "link code" in joined(out)


async def test_code_messages_never_reach_the_transcript(world: World) -> None:
    chat, cust = await world.linked_chat("secret-1")
    await chat.say('/buy_product{"product": "MMF01", "amount": "100"}')
    await chat.say("/confirm")
    code = await world.code(cust)
    await chat.say(code)
    from sqlalchemy import select, text

    from bot.store.conversations import TranscriptRow

    async with world.db.begin() as s:
        lines = [r.text for r in (await s.execute(select(TranscriptRow))).scalars()]
        raw = [r[0] for r in await s.execute(text("SELECT text FROM transcripts"))]
    assert code not in "\n".join(lines) and "••••••" in lines
    assert all("MMF01" not in r for r in raw)  # encrypted at rest


async def test_concurrent_messages_of_one_chat_are_serialised(world: World) -> None:
    chat, cust = await world.linked_chat("burst-1")
    await chat.say('/buy_product{"product": "MMF01", "amount": "100"}')
    outs = await asyncio.gather(*(chat.say("/confirm") for _ in range(5)))
    assert await world.sms_count(cust) == 1  # one code for five taps
    assert sum("验证码已经发送" in joined(o) for o in outs) == 4


async def test_agent_owned_conversation_is_relayed_and_the_bot_stays_silent(world: World) -> None:
    from bot.handoff import service
    from bot.store import handoff as hstore
    from bot.store.db import utcnow

    chat, _ = await world.linked_chat("handoff-1")
    await chat.say("转人工")
    async with world.db.begin() as s:
        from bot.store.conversations import get_or_create

        conv = await get_or_create(s, "rest", "handoff-1")
        ticket = await hstore.open_ticket_for(s, conv.id)
        assert ticket is not None
        await hstore.add_agent(s, "agent1", "agent", "x")
        await hstore.claim(s, ticket.id, "agent1", utcnow())
    assert await service.agent_owns(world.db, conv.id)
    out = await chat.say("我的钱什么时候到账？")
    assert out == []
    assert await chat.say("123456") == []  # a code typed to the agent is not passed on
    async with world.db.begin() as s:
        texts = [m.text for m in await hstore.messages(s, ticket.id)]
    assert any("什么时候到账" in t for t in texts)
    assert not any("123456" in t for t in texts) and "••••••" in texts


async def test_a_crashing_handler_gets_an_apology_and_the_chat_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.handlers import registry

    async def broken(turn: object, ctx: object) -> list[object]:
        raise RuntimeError("secret 13812345678 inside")

    registry.routes()
    monkeypatch.setitem(registry._resolved, "bot.handlers.smalltalk:thank", broken)
    chat, _ = await world.linked_chat("crash-1")
    await chat.say('/buy_product{"product": "BOND01"}')
    out = await chat.say("/thank")
    assert "出了点问题" in joined(out) and "Traceback" not in joined(out)
    assert "13812345678" not in caplog.text
    failed = [r for r in caplog.records if r.getMessage() == "engine_failed"]
    assert failed and getattr(failed[0], "conversation_id", None) is not None
    text = joined(await chat.say("3000"))  # the purchase in progress is intact
    assert "¥3,000.00" in text


async def test_turns_are_counted_per_intent_for_the_dashboard(world: World) -> None:
    from bot.metrics import REGISTRY

    def turns(intent: str) -> float:
        value = REGISTRY.get_sample_value("finbot_turns_total", {"channel": "rest", "intent": intent})
        return value or 0.0

    before_buy, before_inform = turns("buy_product"), turns("inform")
    count_before = REGISTRY.get_sample_value("finbot_turn_seconds_count", {"channel": "rest"}) or 0.0
    chat, _ = await world.linked_chat("metrics-1")
    await chat.say('/buy_product{"product": "BOND01"}')
    await chat.say("2000")
    assert turns("buy_product") == before_buy + 1 and turns("inform") == before_inform + 1
    assert (REGISTRY.get_sample_value("finbot_turn_seconds_count", {"channel": "rest"}) or 0) >= count_before + 3


async def test_a_telegram_deep_link_links_in_the_app_language(world: World) -> None:
    cust = await world.customer()
    chat = world.chat("tg-en-1")
    chat.channel = "telegram"
    out = await chat.say(f"/start {cust['link_code']}", start_param=cust["link_code"], language_code="en-GB")
    assert "Linked" in joined(out)
    assert out[0].delete_message_id is not None  # the code message is removed from the chat
