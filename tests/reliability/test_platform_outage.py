"""The platform down or slow: a clear "try again later" within 2.5 s, nothing stuck, then it works."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Replies, RestChat, Stack, looks_broken

pytestmark = pytest.mark.timeout(120)

LIMIT_S = 2.5
TRY_LATER = {"zh": "稍后", "en": "try again"}
KEPT = {"zh": "已保留", "en": "kept"}


async def _outage(stack: Stack, mode: str, only: str | None = None) -> None:
    proxy = stack.backend_proxy
    assert proxy is not None
    if mode == "refuse":
        await proxy.refuse(only=only)
    elif mode == "delay":
        await proxy.delay(5.0, only=only)  # answers after 5 s (and still does the work)
    else:
        await proxy.error(500, only=only)


def _fast_and_polite(out: Replies, lang: str) -> None:
    assert out.elapsed_s < LIMIT_S, f"{out.elapsed_s:.2f}s: {out.text}"
    assert TRY_LATER[lang] in out.text.lower(), out.text
    assert looks_broken(out.text) is None, out.text


@pytest.mark.parametrize("mode", ["refuse", "delay", "error"])
@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_balance_during_outage_says_try_later_then_works(stack: Stack, mode: str, lang: str) -> None:
    chat = stack.chat(f"balance-{mode}-{lang}")
    await stack.linked(chat, english=lang == "en", cash="12345.67")
    await _outage(stack, mode)
    out = await chat.say("/check_balance")
    _fast_and_polite(out, lang)
    # Still down: a second message is answered the same way (the chat is not wedged).
    _fast_and_polite(await chat.say("/check_balance"), lang)

    await stack.backend_proxy.passthrough()  # type: ignore[union-attr]
    out = await chat.say("/check_balance")
    assert "12,345.67" in out.text, out.text
    assert TRY_LATER[lang] not in out.text


@pytest.mark.parametrize("mode", ["refuse", "delay"])
async def test_outage_on_the_confirm_tap_keeps_the_purchase(stack: Stack, mode: str) -> None:
    chat = stack.chat(f"confirm-{mode}")
    cust = await stack.linked(chat)
    summary = await chat.say('/buy_product{"product": "BOND01", "amount": "3000"}')
    assert "/confirm" in summary.payloads, summary.text

    await _outage(stack, mode)
    out = await chat.say("/confirm")
    _fast_and_polite(out, "zh")
    assert KEPT["zh"] in out.text and "/resume" in out.payloads, out.text

    await stack.backend_proxy.passthrough()  # type: ignore[union-attr]
    sms_before = await stack.sms_count(cust)
    await _finish_purchase(stack, chat, cust, out.payload_for("继续"), sms_before)


@pytest.mark.parametrize("mode", ["refuse", "delay"])
async def test_outage_on_the_code_places_one_order_after_recovery(stack: Stack, mode: str) -> None:
    chat = stack.chat(f"code-{mode}")
    cust = await stack.linked(chat)
    await chat.say('/buy_product{"product": "BOND01", "amount": "3000"}')
    sent = await chat.say("/confirm")
    assert "验证码" in sent.text, sent.text
    code = await stack.code(cust)

    await _outage(stack, mode)
    out = await chat.say(code)
    _fast_and_polite(out, "zh")

    await stack.backend_proxy.passthrough()  # type: ignore[union-attr]
    await _settle(stack, chat, cust, code)


@pytest.mark.parametrize("mode", ["refuse", "delay"])
async def test_outage_on_order_placement_after_a_good_code(stack: Stack, mode: str) -> None:
    """The code is verified, then the order call fails or hangs: resuming places it once."""
    chat = stack.chat(f"place-{mode}")
    cust = await stack.linked(chat)
    await chat.say('/buy_product{"product": "BOND01", "amount": "3000"}')
    await chat.say("/confirm")
    code = await stack.code(cust)

    await _outage(stack, mode, only=r"/api/v1/customers/[^/]+/orders$")
    out = await chat.say(code)
    _fast_and_polite(out, "zh")

    await stack.backend_proxy.passthrough()  # type: ignore[union-attr]
    await _settle(stack, chat, cust, code)


async def _settle(stack: Stack, chat: RestChat, cust: dict[str, str], code: str) -> None:
    """The platform is back: the customer taps 继续 and, when asked, types the same code again.
    The purchase completes exactly once and the customer sees its order id."""
    out = await chat.say("/resume")
    if not out.order_ids():
        assert "验证码" in out.text, out.text
        out = await chat.say(code)
    assert looks_broken(out.text) is None, out.text
    orders = await stack.orders(cust)
    assert len(orders) == 1, (orders, [(m, r.text) for m, r in chat.history])
    assert orders[0]["amount"] == "3000.00"
    assert out.order_ids() == [orders[0]["order_id"]], out.text
    # Nothing left hanging: a new request starts cleanly, and the code cannot buy again.
    again = await chat.say(code)
    assert orders[0]["order_id"] in again.text and len(await stack.orders(cust)) == 1, again.text
    fresh = await chat.say("/check_balance")
    assert "/resume" not in fresh.payloads, fresh.text


async def _finish_purchase(
    stack: Stack, chat: RestChat, cust: dict[str, str], resume: str, sms_before: int
) -> None:
    out = await chat.say(resume)
    if "/confirm" in out.payloads:  # the quote is taken again after a pause
        out = await chat.say("/confirm")
    assert "验证码" in out.text, out.text
    code = await stack.code(cust, after=sms_before)
    done = await chat.say(code)
    orders = await stack.orders(cust)
    assert len(orders) == 1, orders
    assert orders[0]["order_id"] in done.text, done.text


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_link_code_typed_during_outage_can_be_sent_again(stack: Stack, lang: str) -> None:
    cust = await stack.customer()
    chat = stack.chat(f"link-{lang}")
    typed = f"绑定 {cust['link_code']}" if lang == "zh" else f"link {cust['link_code']}"
    await stack.backend_proxy.refuse()  # type: ignore[union-attr]
    out = await chat.say(typed)
    _fast_and_polite(out, lang)
    await stack.backend_proxy.passthrough()  # type: ignore[union-attr]
    linked = await chat.say(typed)  # the code was not spent by the failed attempt
    assert ("绑定成功" if lang == "zh" else "Linked") in linked.text, linked.text
