"""Customer scenarios over REST, typed as customers type, against the real NLU and sandbox."""

from __future__ import annotations

import asyncio
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.conftest import BotFactory
from tests.e2e.harness import Stack, looks_broken

pytestmark = [pytest.mark.timeout(120), pytest.mark.nlu]

COMPLAINT_ID = re.compile(r"C\d{14}")
DISCLAIMER = {"zh": "理财非存款，产品有风险，投资须谨慎。", "en": "Investments are not deposits and carry risk."}


def _yuan(value: Decimal) -> str:
    return f"¥{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


async def _nav(stack: Stack, code: str) -> Decimal:
    async with stack.sandbox.http.get(f"{stack.sandbox.base_url}/sandbox/products") as r:
        products = await r.json()
    return Decimal(next(p["nav"] for p in products if p["code"] == code))


# ---------------------------------------------------------------- account


async def test_zh_link_and_balance(e2e: Stack) -> None:
    chat = e2e.chat()
    await e2e.linked(chat, cash="23456.78", holdings=[{"product": "MMF01", "shares": "1000"}])
    out = await chat.say("我账户里现在还有多少钱？")
    assert "¥23,456.78" in out.text and "稳盈货币A" in out.text, out.text
    assert looks_broken(out.text) is None


async def test_en_link_and_balance(e2e: Stack) -> None:
    chat = e2e.chat()
    await e2e.linked(chat, english=True, cash="9876.50")
    out = await chat.say("what's my balance?")
    assert "¥9,876.50" in out.text and "Available cash" in out.text, out.text


# ---------------------------------------------------------------- buying


async def test_zh_buy_with_double_tapped_confirm_places_one_order(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat)
    out = await chat.say("我想买5000元安心短债")
    assert "安心短债" in out.text and "¥5,000.00" in out.text and DISCLAIMER["zh"] in out.text, out.text
    before = await e2e.sms_count(cust)
    taps = await asyncio.gather(chat.say("确认"), chat.say("确认"))  # a double tap
    assert any("验证码" in t.text for t in taps), [t.text for t in taps]
    assert await e2e.sms_count(cust) == before + 1
    done = await chat.say(await e2e.code(cust))
    orders = await e2e.orders(cust)
    assert len(orders) == 1 and orders[0]["amount"] == "5000.00" and orders[0]["product"] == "BOND01"
    assert done.order_ids() == [orders[0]["order_id"]], done.text
    assert "申购已提交" in done.text


async def test_en_buy_with_double_tapped_confirm_places_one_order(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat, english=True)
    out = await chat.say("I want to buy 2000 yuan of the short-term bond")
    assert "Short-term Bond" in out.text and "¥2,000.00" in out.text and DISCLAIMER["en"] in out.text, out.text
    taps = await asyncio.gather(chat.say("confirm"), chat.say("confirm"))
    assert any("code" in t.text for t in taps)
    done = await chat.say(await e2e.code(cust))
    orders = await e2e.orders(cust)
    assert len(orders) == 1 and orders[0]["amount"] == "2000.00"
    assert orders[0]["order_id"] in done.text and "submitted" in done.text, done.text


@pytest.mark.parametrize(
    ("lang", "utterance", "words"),
    [("zh", "我要买一千块沪深300", ("R4", "C2", "风险测评")), ("en", "buy 1000 yuan of the CSI 300 index fund", ("R4", "C2"))],
)
async def test_risk_mismatch_places_no_order(e2e: Stack, lang: str, utterance: str, words: tuple[str, ...]) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat, english=lang == "en", risk_tolerance="C2")
    out = await chat.say(utterance)
    for word in words:
        assert word in out.text, out.text
    assert "/confirm" not in out.payloads
    nothing = await chat.say("确认" if lang == "zh" else "confirm")
    assert not nothing.order_ids()
    assert await e2e.orders(cust) == []


async def test_zh_correction_then_cancel_mid_task(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat)
    asked = await chat.say("我想买点安心短债")
    assert "多少" in asked.text, asked.text
    first = await chat.say("5000")
    assert "¥5,000.00" in first.text, first.text
    fixed = await chat.say("改成3000吧")
    assert "¥3,000.00" in fixed.text and "¥5,000.00" not in fixed.text, fixed.text
    gone = await chat.say("算了不买了")
    assert "取消" in gone.text and "没有下单" in gone.text, gone.text
    assert not (await chat.say("确认")).order_ids()
    assert await e2e.orders(cust) == []


async def test_en_correction_then_cancel_mid_task(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat, english=True)
    await chat.say("I'd like to buy the money market fund")
    first = await chat.say("3000")
    assert "¥3,000.00" in first.text, first.text
    fixed = await chat.say("actually make it 1500")
    assert "¥1,500.00" in fixed.text, fixed.text
    gone = await chat.say("cancel")
    assert "ancel" in gone.text and await e2e.orders(cust) == []


async def test_zh_faq_mid_purchase_then_resume(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat)
    await chat.say("我想买均衡混合")
    faq = await chat.say("对了，交易时间是几点？")
    assert "09:00" in faq.text and "17:00" in faq.text, faq.text
    assert "均衡混合" in faq.text and "/resume" in faq.payloads, faq.text  # the reminder
    back = await chat.say("继续")
    assert "多少" in back.text and "均衡混合" in back.text, back.text
    summary = await chat.say("2000")
    assert "¥2,000.00" in summary.text and "R3" in summary.text, summary.text
    await chat.say("确认")
    done = await chat.say(await e2e.code(cust))
    orders = await e2e.orders(cust)
    assert len(orders) == 1 and orders[0]["order_id"] in done.text


async def test_en_faq_mid_purchase_then_resume(e2e: Stack) -> None:
    chat = e2e.chat()
    await e2e.linked(chat, english=True)
    await chat.say("I want to buy the balanced hybrid fund")
    faq = await chat.say("wait, how much is the redemption fee?")
    assert "%" in faq.text and "/resume" in faq.payloads, faq.text
    back = await chat.say("continue")
    assert "How much" in back.text or "how much" in back.text, back.text


# ---------------------------------------------------------------- redeeming


@pytest.mark.parametrize(("lang", "utterance"), [("zh", "我想赎回2000份安心短债"), ("en", "redeem 2000 shares of the short-term bond")])
async def test_redeem_by_shares_shows_shares_times_nav_minus_fee(e2e: Stack, lang: str, utterance: str) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(
        chat, english=lang == "en",
        holdings=[{"product": "BOND01", "shares": "10000", "acquired_at": "2026-06-01"}],  # 177 days: 0.5 %
    )
    nav = await _nav(e2e, "BOND01")
    gross = Decimal(2000) * nav
    fee = (gross * Decimal("0.005")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    out = await chat.say(utterance)
    assert "2,000.00" in out.text, out.text
    assert _yuan(gross) in out.text and _yuan(fee) in out.text and _yuan(gross - fee) in out.text, out.text
    await chat.say("确认" if lang == "zh" else "confirm")
    done = await chat.say(await e2e.code(cust))
    orders = await e2e.orders(cust)
    assert len(orders) == 1 and orders[0]["side"] == "redeem" and orders[0]["shares"].startswith("2000")
    assert orders[0]["order_id"] in done.text, done.text


# ---------------------------------------------------------------- restart


async def test_restart_mid_task_resumes(e2e: Stack, bot_server: BotFactory) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat)
    summary = await chat.say("帮我买3000块的稳盈货币A")
    assert "¥3,000.00" in summary.text, summary.text
    settings = e2e.bot.settings
    await e2e.bot.stop()
    bot = await bot_server(
        port=settings.port, database_url=settings.database_url, keys_file=settings.keys_file,
        backend_url=settings.backend_url, nlu_url=settings.nlu_url,
    )
    e2e.bot = bot
    sent = await chat.say("确认")
    assert "验证码" in sent.text, sent.text
    done = await chat.say(await e2e.code(cust))
    orders = await e2e.orders(cust)
    assert len(orders) == 1 and orders[0]["amount"] == "3000.00" and orders[0]["order_id"] in done.text


# ---------------------------------------------------------------- orders after the fact


async def test_zh_track_history_and_status_notice(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat)
    await chat.say("我想买5000元安心短债")
    await chat.say("确认")
    done = await chat.say(await e2e.code(cust))
    (order_id,) = done.order_ids()
    track = await chat.say("我的订单到哪了")
    assert order_id in track.text and "已提交" in track.text, track.text
    by_id = await chat.say(f"帮我查一下订单{order_id}")
    assert order_id in by_id.text and "¥5,000.00" in by_id.text, by_id.text
    history = await chat.say("看看最近的交易记录")
    assert order_id in history.text and "申购" in history.text, history.text
    await e2e.sandbox.set_clock("2026-11-26T10:00:00+08:00")  # the platform confirms the shares
    pushed = await chat.wait_pushed(rf"{order_id}[^\n]*已确认")
    assert "已确认" in pushed.text, pushed.text


async def test_en_track_and_history(e2e: Stack) -> None:
    chat = e2e.chat()
    cust = await e2e.linked(chat, english=True)
    await chat.say("buy 1000 yuan of the money market fund")
    await chat.say("confirm")
    done = await chat.say(await e2e.code(cust))
    (order_id,) = done.order_ids()
    track = await chat.say("where is my order?")
    assert order_id in track.text and "submitted" in track.text, track.text
    history = await chat.say("show me my transaction history")
    assert order_id in history.text, history.text


# ---------------------------------------------------------------- service


async def test_zh_complaint_filed_and_followed(e2e: Stack) -> None:
    chat = e2e.chat()
    await e2e.linked(chat)
    draft = await chat.say("我要投诉，客服态度太差了")
    assert "服务态度" in draft.text and "/confirm" in draft.payloads, draft.text
    filed = await chat.say("确认")
    ids = COMPLAINT_ID.findall(filed.text)
    assert "已受理" in filed.text and ids, filed.text
    complaint_id = ids[0]
    status = await chat.say("我的投诉处理得怎么样了")
    assert complaint_id in status.text and "服务态度" in status.text, status.text
    await e2e.sandbox.answer_complaint(complaint_id, "经核实，已对相关客服进行培训并致歉。")
    pushed = await chat.wait_pushed("已对相关客服进行培训")
    assert complaint_id in pushed.text, pushed.text
    assert "已对相关客服进行培训" in pushed.text, pushed.text


async def test_en_complaint_filed_and_followed(e2e: Stack) -> None:
    chat = e2e.chat()
    await e2e.linked(chat, english=True)
    draft = await chat.say("I want to file a complaint, the customer service was rude")
    assert "service attitude" in draft.text, draft.text
    filed = await chat.say("confirm")
    ids = COMPLAINT_ID.findall(filed.text)
    assert ids, filed.text
    status = await chat.say("what's the status of my complaint?")
    assert ids[0] in status.text and "service attitude" in status.text, status.text
    await e2e.sandbox.answer_complaint(ids[0], "We apologised and retrained the agent.")
    pushed = await chat.wait_pushed("retrained the agent")
    assert ids[0] in pushed.text, pushed.text
    assert "retrained the agent" in pushed.text, pushed.text


@pytest.mark.parametrize(("lang", "utterance", "words"), [("zh", "我要找人工客服", "人工"), ("en", "can I talk to a real person please", "agent")])
async def test_handoff_request(e2e: Stack, lang: str, utterance: str, words: str) -> None:
    chat = e2e.chat()
    await e2e.linked(chat, english=lang == "en")
    out = await chat.say(utterance)
    assert words in out.text.lower() or words in out.text, out.text
    assert any(ch.isdigit() for ch in out.text), out.text  # a ticket number / queue place


async def test_en_faq(e2e: Stack) -> None:
    chat = e2e.chat()
    out = await chat.say("what are the trading hours?")
    assert "09:00" in out.text and "17:00" in out.text and "working days" in out.text, out.text
    fees = await chat.say("is my money safe with you?")
    assert "custod" in fees.text.lower() or "segregat" in fees.text.lower(), fees.text


async def test_zh_faq_without_linking(e2e: Stack) -> None:
    chat = e2e.chat()
    out = await chat.say("赎回费怎么收？")
    assert "1.5%" in out.text and "0.5%" in out.text, out.text


@pytest.mark.parametrize(("utterance", "lang"), [("你好", "zh"), ("hello", "en"), ("帮助", "zh"), ("help", "en")])
async def test_greeting_and_help_menu(e2e: Stack, utterance: str, lang: str) -> None:
    out = await e2e.chat().say(utterance)
    assert {"/check_balance", "/buy_product", "/human_handoff"} <= set(out.payloads), out.payloads
    has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in out.text)
    assert has_cjk == (lang == "zh"), out.text


@pytest.mark.parametrize(("utterance", "lang"), [("今天天气怎么样", "zh"), ("tell me a joke", "en")])
async def test_out_of_scope(e2e: Stack, utterance: str, lang: str) -> None:
    out = await e2e.chat().say(utterance)
    assert ("帮不上" in out.text) if lang == "zh" else ("can't help" in out.text), out.text
    assert "/check_balance" in out.payloads


@pytest.mark.parametrize(
    ("lang", "listing", "about", "expect"),
    [
        ("zh", "有哪些理财产品可以买？", "介绍一下均衡混合", ("均衡混合", "R3", "1.5230")),
        ("en", "what products do you have?", "tell me about the global tech QDII fund", ("Global Tech QDII", "R5", "1.8760")),
    ],
)
async def test_products_and_product_info(
    e2e: Stack, lang: str, listing: str, about: str, expect: tuple[str, ...]
) -> None:
    chat = e2e.chat()
    out = await chat.say(listing)
    for code in ("MMF01", "BOND01", "MIX01", "IDX300", "QDII01"):
        assert code in out.text, out.text
    assert DISCLAIMER[lang] in out.text
    info = await chat.say(about)
    for word in expect:
        assert word in info.text, info.text
    assert DISCLAIMER[lang] in info.text


async def test_zero_or_negative_amount_is_asked_again_with_the_reason(e2e: Stack) -> None:
    """QA F12: 「0」 or 「-5000」 was met with the bare amount question again."""
    chat = e2e.chat()
    cust = await e2e.linked(chat)
    out = await chat.say("我想买安心短债")
    assert "多少" in out.text and "大于 0" not in out.text, out.text
    for typed in ("0", "-5000", "0元"):
        out = await chat.say(typed)
        assert "金额需大于 0" in out.text and "多少" in out.text, out.text
        assert "/confirm" not in out.payloads
    out = await chat.say("5000")
    assert "¥5,000.00" in out.text and "/confirm" in out.payloads, out.text
    assert await e2e.orders(cust) == []
