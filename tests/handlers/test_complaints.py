"""Complaints through the real engine and sandbox: category, own words, order, SLA, status."""

from __future__ import annotations

import pytest

from backend_client.client import PlatformClient
from bot.handlers import complaints, smalltalk
from bot.handlers.complaints import extract_description, infer_category
from tests.handlers.conftest import ChatFactory, CtxFactory, payloads, place_order, texts, turn
from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(60)

WED_10 = "2026-11-25T10:00:00+08:00"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("客服态度太差了，爱答不理", "service_attitude"),
        ("the agent was rude to me", "service_attitude"),
        ("App一直闪退，打不开", "system_fault"),
        ("you charged me twice for the same order", "system_fault"),
        ("这个基金亏了好多，当初说是低风险", "product_use"),
        ("i was misled about the risk of this fund", "product_use"),
        ("赎回费的规则没解释清楚", "policy_explanation"),
        ("your policy on limits is unclear", "policy_explanation"),
        ("我要投诉", None),
        ("i want to file a complaint", None),
    ],
)
def test_category_is_inferred_only_when_clear(text: str, category: str | None) -> None:
    assert infer_category(text) == category


def test_description_is_the_customers_words_beyond_i_want_to_complain() -> None:
    assert extract_description("我要投诉") is None
    assert extract_description("file a complaint") is None
    assert extract_description("我要投诉，App一直闪退") == "我要投诉，App一直闪退"
    assert extract_description("complaint: the app crashed during my redemption") is not None
    assert extract_description("I want to discuss my complaint with a person") is None


async def test_file_a_complaint_in_chinese_with_buttons(
    sandbox: SandboxServer, backend: PlatformClient, linked_chat: ChatFactory
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer()
    order_id = await place_order(sandbox, backend, c, "subscribe", "BOND01", amount="1000")
    chat = await linked_chat(c)

    ask = await chat.say(f'/file_complaint{{"order_id":"{order_id}"}}')
    assert "哪一类" in texts(ask)
    assert set(payloads(ask)) >= {
        '/inform{"category":"service_attitude"}',
        '/inform{"category":"product_use"}',
        '/inform{"category":"system_fault"}',
        '/inform{"category":"policy_explanation"}',
        "/human_handoff",
    }
    ask = await chat.say('/inform{"category":"system_fault"}')  # the button
    assert "描述" in texts(ask) and "系统故障" in texts(ask)
    assert len(ask) == 1  # the next question only, no "we were in the middle of" reminder
    summary = await chat.say("昨天下午App闪退，订单提交后一直没有反应")
    text = texts(summary)
    assert "类别：系统故障" in text and "昨天下午App闪退" in text and order_id in text
    assert "24小时" in text and "48小时" in text and "7个工作日" in text
    assert "/confirm" in payloads(summary)
    assert not (await backend.list_complaints(c["customer_id"])).items  # nothing before confirm

    done = await chat.say("/confirm")
    text = texts(done)
    filed = (await backend.list_complaints(c["customer_id"])).items
    assert len(filed) == 1
    ticket = filed[0]
    assert ticket.category == "system_fault" and ticket.order_id == order_id
    assert ticket.description.startswith("昨天下午App闪退")
    assert f"工单号 {ticket.complaint_id}" in text
    assert "2026年11月26日 10:00 前（24小时内）" in text
    assert "2026年11月27日 10:00 前（48小时内）" in text
    assert "（7个工作日内）" in text and "2026年12月4日" in text
    # A second confirm does not open a second ticket.
    again = await chat.say("/confirm")
    assert len((await backend.list_complaints(c["customer_id"])).items) == 1
    assert ticket.complaint_id in texts(again) or "已" in texts(again)
    assert "订单" not in texts(again), texts(again)  # a complaint is not an order


async def test_file_a_complaint_in_english_asks_for_the_description(
    sandbox: SandboxServer, linked_chat: ChatFactory, backend: PlatformClient
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer()
    chat = await linked_chat(c, lang="en")
    ask = await chat.say('/file_complaint{"category":"service_attitude"}')
    assert "in your own words" in texts(ask)
    summary = await chat.say("The agent hung up on me twice this morning.")
    assert "Category: service attitude" in texts(summary)
    assert "The agent hung up on me twice this morning." in texts(summary)
    done = await chat.say("/confirm")
    text = texts(done)
    assert "Ticket number C" in text and "within 24 hours" in text and "within 48 hours" in text
    assert "within 7 working days" in text
    [ticket] = (await backend.list_complaints(c["customer_id"])).items
    assert ticket.description == "The agent hung up on me twice this morning."


async def test_another_customers_order_is_not_attached(
    sandbox: SandboxServer, backend: PlatformClient, linked_chat: ChatFactory
) -> None:
    await sandbox.set_clock(WED_10)
    owner = await sandbox.create_customer()
    other = await sandbox.create_customer()
    theirs = await place_order(sandbox, backend, owner, "subscribe", "MMF01", amount="100")
    chat = await linked_chat(other)
    await chat.say(f'/file_complaint{{"order_id":"{theirs}","category":"product_use"}}')
    summary = await chat.say("收益和宣传的不一样，想要一个解释")
    assert "没有找到订单" in texts(summary)
    await chat.say("/confirm")
    [ticket] = (await backend.list_complaints(other["customer_id"])).items
    assert ticket.order_id is None


async def test_status_result_escalation_and_handoff(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer()
    ticket = await backend.file_complaint(
        c["customer_id"], "policy_explanation", "赎回费规则不清楚"
    )
    ctx = make_ctx("zh", customer_id=c["customer_id"])

    reply = await complaints.status(turn("我的投诉", "complaint_status"), ctx)
    assert ticket.complaint_id in reply[0].text and "政策解释" in reply[0].text
    assert "首次响应" in reply[0].text

    await sandbox.answer_complaint(
        ticket.complaint_id, "已为您说明赎回费按持有天数计算，并补偿手续费。"
    )
    reply = await complaints.status(
        turn(ticket.complaint_id, "complaint_status", complaint_id=ticket.complaint_id), ctx
    )
    assert "已答复" in reply[0].text and "补偿手续费" in reply[0].text
    unsatisfied = [p for p in payloads(reply) if '"escalate":true' in p]
    assert unsatisfied

    reply = await complaints.status(turn("我对处理结果不满意", "complaint_status"), ctx)
    for step in ("复核", "调解", "监管", "法院"):
        assert step in reply[0].text
    en = make_ctx("en", customer_id=c["customer_id"])
    reply = await complaints.status(
        turn("I want to discuss my complaint with a person", "complaint_status", "en"), en
    )
    assert "/human_handoff" in payloads(reply) and "person" in reply[0].text

    reply = await complaints.status(
        turn("C20261125999999", "complaint_status", "en", complaint_id="C20261125999999"), en
    )
    assert "couldn't find complaint" in reply[0].text

    other = await sandbox.create_customer()
    reply = await complaints.status(
        turn(ticket.complaint_id, "complaint_status", "en", complaint_id=ticket.complaint_id),
        make_ctx("en", customer_id=other["customer_id"]),
    )
    assert "couldn't find complaint" in reply[0].text and "赎回费" not in reply[0].text


async def test_numbers_in_the_description_are_masked(
    sandbox: SandboxServer, linked_chat: ChatFactory, backend: PlatformClient
) -> None:
    await sandbox.set_clock(WED_10)
    c = await sandbox.create_customer()
    chat = await linked_chat(c)
    await chat.say('/file_complaint{"category":"service_attitude"}')
    summary = await chat.say("客服让我把银行卡号6222021234567890123和手机13812345678发给他")
    assert "6222021234567890123" not in texts(summary) and "13812345678" not in texts(summary)
    await chat.say("/confirm")
    [ticket] = (await backend.list_complaints(c["customer_id"])).items
    assert "6222021234567890123" not in ticket.description
    assert "13812345678" not in ticket.description
    assert ticket.description.startswith("客服让我把银行卡号")


async def test_unhappy_with_the_result_gets_the_escalation_path_not_a_new_ticket(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    c = await sandbox.create_customer()
    ctx = make_ctx("zh", customer_id=c["customer_id"])
    reply = await complaints.file(turn("我对投诉的处理结果不满意", "file_complaint"), ctx)
    assert all(step in reply[0].text for step in ("复核", "调解", "监管", "法院"))
    assert "task" not in ctx.state  # no complaint form was started
    en = make_ctx("en", customer_id=c["customer_id"])
    reply = await complaints.file(
        turn("can I talk to a person about my complaint", "file_complaint", "en"), en
    )
    assert "/human_handoff" in payloads(reply) and "task" not in en.state
    reply = await complaints.file(turn("i want to file a complaint", "file_complaint", "en"), en)
    assert "What is the complaint about?" in reply[0].text and "task" in en.state
    assert not (await backend.list_complaints(c["customer_id"])).items


async def test_not_satisfied_after_an_answer_gets_the_escalation_path_not_a_plain_no(
    sandbox: SandboxServer, backend: PlatformClient, make_ctx: CtxFactory
) -> None:
    """QA F17: 「不满意」 after the result was pushed was read as a bare "no"."""
    c = await sandbox.create_customer()
    ctx = make_ctx("zh", customer_id=c["customer_id"])
    ticket = await backend.file_complaint(c["customer_id"], "service_attitude", "客服不回消息")
    before = await smalltalk.deny(turn("不满意", "deny"), ctx)
    assert "复核" not in before[0].text  # not answered yet: an ordinary no
    await sandbox.answer_complaint(ticket.complaint_id, "已提醒客服及时回复。")
    after = await smalltalk.deny(turn("不满意", "deny"), ctx)
    assert all(step in after[0].text for step in ("复核", "调解", "监管", "法院")), after[0].text
    assert "/human_handoff" in payloads(after)
    plain = await smalltalk.deny(turn("不用了", "deny"), ctx)
    assert "复核" not in plain[0].text
    en = make_ctx("en", customer_id=c["customer_id"])
    reply = await smalltalk.deny(turn("no, I'm not satisfied", "deny", "en"), en)
    assert "mediation" in reply[0].text.lower() or "regulator" in reply[0].text.lower(), reply[0].text
    unlinked = await smalltalk.deny(turn("不满意", "deny"), make_ctx("zh"))
    assert "复核" not in unlinked[0].text
