"""Every FAQ topic answers in zh and en with its rule's numbers and the matching action."""

from __future__ import annotations

import pytest

from backend_client.client import PlatformClient
from bot.handlers import faq
from bot.locales import catalog
from bot.settings import Settings
from tests.handlers.conftest import CtxFactory, payloads, place_order, turn
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(60)

# The numbers (or words) each answer must state, in both languages.
KEY_FACTS: dict[str, tuple[str, ...]] = {
    "register": ("8",),
    "real_name": (),
    "password_rules": (),
    "reset_password": ("5",),
    "bind_card": (),
    "risk_assessment": ("C1", "C5", "R1", "R5"),
    "trading_hours": ("09:00", "17:00"),
    "confirm_time": ("24",),
    "arrival_time": ("T+0", "T+1", "T+2", "2"),
    "fees": ("1.5%", "0.5%", "0%"),
    "redemption_fee": ("1.5%", "0.5%", "7"),
    "nav_calculation": ("1.5%", "0.5%"),
    "limits": ("1", "100", "1000"),
    "order_status_meaning": ("24", "2"),
    "failed_transaction": ("24",),
    "history_export": ("CSV", "PDF"),
    "notifications_info": ("22:00", "08:00"),
    "complaint_process": ("24", "48", "7"),
    "complaint_time": ("24", "48", "7"),
    "regulator": ("12378",),
    "service_hours": ("7×24", "09:00", "21:00", "24"),
    "product_types": ("T+0", "T+1", "T+2", "1–3%", "3–8%", "8–15%"),
    "returns_guarantee": ("1–3%", "3–8%", "8–15%"),
    "data_protection": ("PIPL", "TLS 1.2", "3"),
    "close_account": (),
    "security_tips": ("5",),
    "change_phone": (),
    "cancel_order": ("24",),
    "fund_safety": (),
}
ZH_WORDS: dict[str, tuple[str, ...]] = {
    "real_name": ("身份证号",),
    "password_rules": ("大写字母", "小写字母", "数字", "符号"),
    "bind_card": ("本人",),
    "returns_guarantee": ("不保本", "理财非存款，产品有风险，投资须谨慎。"),
    "fund_safety": ("隔离", "托管", "风险准备金", "理财非存款"),
    "close_account": ("余额为零", "在途订单"),
    "regulator": ("调解", "法院"),
    "data_protection": ("个人信息保护法", "最小必要", "知情同意"),
}
EN_WORDS: dict[str, tuple[str, ...]] = {
    "real_name": ("ID number",),
    "password_rules": ("upper-case", "lower-case", "digits", "symbols"),
    "returns_guarantee": ("no product", "Investments are not deposits and carry risk."),
    "fund_safety": ("separate", "custodian", "risk reserve", "not deposits"),
    "close_account": ("zero", "pending"),
    "regulator": ("mediation", "court"),
}
DOMAIN_TOPICS = (
    "register, real_name, password_rules, reset_password, bind_card, risk_assessment, "
    "trading_hours, confirm_time, arrival_time, fees, redemption_fee, nav_calculation, limits, "
    "order_status_meaning, failed_transaction, history_export, notifications_info, "
    "complaint_process, complaint_time, regulator, service_hours, product_types, "
    "returns_guarantee, data_protection, close_account, security_tips, change_phone, "
    "cancel_order, fund_safety"
)


def test_the_29_topics_of_the_domain_brief() -> None:
    assert faq.TOPICS == tuple(t.strip() for t in DOMAIN_TOPICS.split(","))
    assert len(faq.TOPICS) == 29
    assert set(faq.ACTIONS) == set(faq.TOPICS)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("topic", faq.TOPICS)
def test_every_topic_answers_with_its_numbers(topic: str, lang: str) -> None:
    values = faq.policy_values(Settings(_env_file=None))  # type: ignore[call-arg]
    text = faq.answer(lang, topic, values)  # type: ignore[arg-type]
    assert len(text) > 40, text
    assert "{" not in text and "}" not in text, f"unfilled placeholder: {text}"
    for fact in KEY_FACTS[topic]:
        assert fact in text, f"{lang}/{topic} lacks {fact!r}: {text}"
    words = ZH_WORDS if lang == "zh" else EN_WORDS
    for word in words.get(topic, ()):
        assert word in text, f"{lang}/{topic} lacks {word!r}: {text}"
    assert "保本保息" not in text.replace("不保本、不保息", "").replace("不保本保息", "")


def test_no_answer_promises_capital_or_returns() -> None:
    values = faq.policy_values(Settings(_env_file=None))  # type: ignore[call-arg]
    for topic in faq.TOPICS:
        zh = faq.answer("zh", topic, values)
        en = faq.answer("en", topic, values).lower()
        assert "保证收益" not in zh and "稳赚" not in zh
        assert "guaranteed return" not in en.replace("guaranteed returns?", "")


def test_policy_values_follow_configuration() -> None:
    s = Settings(_env_file=None, trading_hours="09:30-15:00", complaint_result_h=72)  # type: ignore[call-arg]
    values = faq.policy_values(s)
    assert "09:30" in faq.answer("zh", "trading_hours", values)
    assert "15:00" in faq.answer("en", "trading_hours", values)
    assert "72" in faq.answer("zh", "complaint_time", values)


def test_zh_and_en_have_the_same_keys() -> None:
    prefixes = ("faq.", "greet.", "products.", "track.", "history.", "complaints.")
    zh = {k for k in catalog("zh") if k.startswith(prefixes)}
    en = {k for k in catalog("en") if k.startswith(prefixes)}
    assert zh == en
    assert all(catalog("zh")[k].strip() and catalog("en")[k].strip() for k in zh)


async def test_handler_uses_the_platforms_fee_tiers_and_offers_the_action(
    make_ctx: CtxFactory,
) -> None:
    ctx = make_ctx("zh")
    reply = await faq.handle(turn("赎回费怎么算", "faq/redemption_fee"), ctx)
    assert "1.5%" in reply[0].text and "0.5%" in reply[0].text
    assert "/redeem_product" in payloads(reply)

    ctx = make_ctx("en")
    reply = await faq.handle(turn("is my money safe", "faq/fund_safety", "en"), ctx)
    assert "custodian" in reply[0].text and "risk reserve" in reply[0].text


async def test_bare_faq_shows_a_menu_and_unknown_topics_do_not_crash(make_ctx: CtxFactory) -> None:
    reply = await faq.handle(turn("/faq", "faq"), make_ctx("zh"))
    assert "/faq/trading_hours" in payloads(reply)
    assert "/human_handoff" in payloads(reply)
    reply = await faq.handle(turn("?", "faq/no_such_topic", "en"), make_ctx("en"))
    assert reply and "/human_handoff" in payloads(reply)


async def test_faq_answers_while_the_platform_is_down(make_ctx: CtxFactory) -> None:
    from backend_client.client import PlatformClient
    from tests.support.sandbox import free_port

    async with PlatformClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=0) as dead:
        ctx = make_ctx("en")
        ctx.backend = dead
        reply = await faq.handle(turn("redemption fee?", "faq/redemption_fee", "en"), ctx)
    assert "1.5%" in reply[0].text and "0.5%" in reply[0].text


async def test_an_export_command_under_the_faq_topic_starts_the_export(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    # The NLU files "导出CSV" / "export as pdf" under faq/history_export.
    await sandbox.set_clock("2026-11-25T10:00:00+08:00")
    c = await sandbox.create_customer()
    await place_order(sandbox, backend, c, "subscribe", "MMF01", amount="100")
    ctx = make_ctx("zh", customer_id=c["customer_id"])
    reply = await faq.handle(turn("导出CSV", "faq/history_export"), ctx)
    assert ctx.state["task"]["name"] == "export_history"
    assert ctx.state["task"]["slots"]["format"] == "csv"
    assert "共1笔" in reply[0].text and "/confirm" in payloads(reply)

    question = make_ctx("en", customer_id=c["customer_id"])
    reply = await faq.handle(turn("how do I export to pdf?", "faq/history_export", "en"), question)
    assert "task" not in question.state and "CSV" in reply[0].text
    assert '/export_history{"format":"pdf"}' in payloads(reply)
    unlinked = make_ctx("en")
    reply = await faq.handle(turn("export as pdf", "faq/history_export", "en"), unlinked)
    assert "task" not in unlinked.state and "one-time code" in reply[0].text
