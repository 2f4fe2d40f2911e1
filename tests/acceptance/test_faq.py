"""Every FAQ topic asked as customers ask it, in zh and en: on topic, with the rule's numbers."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import assert_en, assert_zh
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.nlu, pytest.mark.timeout(300)]

# topic: (zh question, what the zh answer must say), (en question, what the en answer must say)
FAQ: dict[str, tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]] = {
    "register": (("怎么注册账号啊", ("注册", "实名认证", "绑定")), ("how do i sign up", ("register", "link"))),
    "real_name": (("实名认证要啥资料", ("身份证号", "手机号")), ("what do i need for real name verification", ("ID number",))),
    "password_rules": (("密码有什么要求", ("大写", "小写", "数字", "符号")), ("what are the password requirements", ("upper", "digits", "symbols"))),
    "reset_password": (("密码忘了咋办", ("忘记密码", "5分钟")), ("forgot my password", ("Forgot password", "5 minutes"))),
    "bind_card": (("怎么绑银行卡", ("银行卡", "本人")), ("how to add a bank card", ("bank card", "your own name"))),
    "risk_assessment": (("风险测评怎么做", ("C1–C5", "R1–R5")), ("how do i take the risk questionnaire", ("C1–C5", "R1–R5"))),
    "trading_hours": (("几点可以交易", ("09:00", "17:00")), ("when can i trade", ("09:00", "17:00"))),
    "confirm_time": (("买了多久能确认份额", ("24小时",)), ("how long until my purchase is confirmed", ("24 hours",))),
    "arrival_time": (("赎回的钱多久到账", ("T+0", "T+1", "T+2", "2个工作日")), ("how long does a redemption take to arrive", ("T+0", "T+2"))),
    "fees": (("申购要手续费吗", ("申购费", "1.5%", "0.5%")), ("what fees do you charge", ("subscription fee", "1.5%"))),
    "redemption_fee": (("赎回费怎么收", ("7天", "1.5%", "0.5%", "0%")), ("is there a fee to redeem", ("7 days", "1.5%", "0.5%"))),
    "nav_calculation": (("净值是怎么算的", ("净值", "÷")), ("how is nav calculated", ("NAV", "÷"))),
    "limits": (("一天最多能买多少", ("起购", "单日")), ("what are the purchase limits", ("minimum", "daily"))),
    "order_status_meaning": (("已受理是什么意思", ("已受理", "已处理", "已到账")), ("what does processed status mean", ("accepted", "processed", "arrived"))),
    "failed_transaction": (("交易失败了怎么办", ("原因", "投诉")), ("what should i do if a transaction fails", ("reason", "complaint"))),
    "history_export": (("交易记录能导出吗", ("CSV", "PDF", "验证码")), ("can i download my statement", ("CSV", "PDF"))),
    "notifications_info": (("你们会发什么通知", ("订单", "22:00")), ("what notifications will i get", ("order", "22:00"))),
    "complaint_process": (("投诉流程是怎样的", ("24小时", "48小时", "7个工作日")), ("how do complaints work", ("24 hours", "48 hours", "7 working days"))),
    "complaint_time": (("投诉多久能处理", ("24小时", "48小时", "7个工作日")), ("how long does a complaint take", ("24 hours", "48 hours", "7 working days"))),
    "regulator": (("投诉结果不满意可以找监管吗", ("调解", "监管", "法院")), ("can i go to the regulator", ("mediation", "regulator", "court"))),
    "service_hours": (("客服几点上班", ("7×24", "09:00–21:00")), ("what are your service hours", ("7×24", "09:00–21:00"))),
    "product_types": (("你们有哪些类型的产品", ("货币", "债", "QDII")), ("what kinds of funds do you have", ("money market", "bond", "QDII"))),
    "returns_guarantee": (("保本吗", ("不保本",)), ("is it guaranteed", ("no product", "guarantee"))),
    "data_protection": (("我的个人信息安全吗", ("加密", "脱敏")), ("how do you protect my personal data", ("encrypted", "masked"))),
    "close_account": (("怎么注销账户", ("余额为零", "在途")), ("how do i close my account", ("balance must be zero", "pending"))),
    "security_tips": (("怎么防诈骗", ("验证码", "密码")), ("any tips to keep my account safe", ("password", "code"))),
    "change_phone": (("换手机号了怎么办", ("手机号", "验证码")), ("how do i change my phone number", ("phone", "code"))),
    "cancel_order": (("下单了能撤销吗", ("撤", "24小时")), ("can i cancel an order", ("cancel", "24 hours"))),
    "fund_safety": (("我的钱放你们这安全吗", ("托管", "风险准备金")), ("is my money safe", ("custodian", "risk reserve"))),
}


def test_every_domain_topic_is_covered() -> None:
    from bot.handlers.faq import TOPICS

    assert set(FAQ) == set(TOPICS) and len(FAQ) == 29


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_every_faq_topic_answers_on_topic_in_the_customers_language(stack: Stack, lang: str) -> None:
    chat = stack.chat()
    wrong: list[str] = []
    for topic, (zh, en) in FAQ.items():
        question, must = zh if lang == "zh" else en
        out = await chat.say(question)
        try:
            (assert_zh if lang == "zh" else assert_en)(out)
        except AssertionError as exc:
            wrong.append(f"{topic}: {question!r} → wrong language: {exc}")
            continue
        missing = [m for m in must if m.lower() not in out.text.lower()]
        if missing:
            wrong.append(f"{topic}: {question!r} → missing {missing}: {out.text[:160]!r}")
    assert not wrong, "\n".join(wrong)


async def test_a_faq_button_payload_answers_in_the_conversations_language(stack: Stack) -> None:
    chat = stack.chat()
    await chat.say("hello")
    out = await chat.say("/faq/limits")  # the payload of a did-you-mean button
    assert_en(out)
    assert "100 yuan" in out.text and "1000 yuan" in out.text, out.text
    await chat.say("你好")
    out = await chat.say("/faq/limits")
    assert_zh(out)
    assert "100元" in out.text and "1000元" in out.text, out.text
