"""Buying (申购): product + amount → platform quote with suitability and disclosure → order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backend_client.errors import InsufficientFunds, NotFound, OutsideLimits, RiskMismatch
from backend_client.models import Quote
from bot.dialogue import values
from bot.dialogue.tasks import Executed, Prepared, Slot, TaskDef
from bot.dialogue.types import Context, Reply, Understanding
from bot.locales import date as fmt_date
from bot.locales import money
from bot.locales import shares as fmt_shares
from bot.normalize import names_non_positive_amount
from bot.security.stepup import ChallengeSpec
from bot.types import Button, Outgoing

__all__ = ["TASK", "product_name", "extract_product", "risk_mismatch_text"]

_REQUEST_INTENTS = {"buy_product", "redeem_product", "inform", "product_info"}



async def product_name(ctx: Context, code: str) -> str:
    for p in await values.catalog(ctx):
        if p.code == code:
            return str(p.name(ctx.lang))
    return code


async def extract_product(nlu: Understanding, ctx: Context, _slots: dict[str, Any]) -> str | None:
    """The `product` entity, else a product named in a bare answer (or in a request)."""
    value = nlu.first("product")
    if value:
        codes = {p.code.upper(): p.code for p in await values.catalog(ctx)}
        return codes.get(value.upper())
    if not nlu.text or nlu.text.startswith("/"):
        return None
    loose = nlu.intent in _REQUEST_INTENTS and nlu.intent != "inform"
    return await values.parse_product(nlu.text, ctx, loose=loose)


async def _extract_amount(nlu: Understanding, ctx: Context, _slots: dict[str, Any]) -> str | None:
    value = values.money_value(nlu.first("amount"))
    if value is not None:
        return str(value)
    if not nlu.text or nlu.text.startswith("/"):
        return None
    parsed = values.parse_number(nlu.text)
    if parsed is not None and parsed[1] == "shares":
        return None
    if (parsed is not None and parsed[0] <= 0) or names_non_positive_amount(nlu.text):
        ctx.extras["amount_not_positive"] = True  # the question that follows says why (QA F12)
        return None
    return None if parsed is None else str(parsed[0])


async def _ask_product(ctx: Context, _slots: dict[str, Any]) -> Reply:
    products = await values.catalog(ctx)
    return [
        Outgoing(
            text=ctx.t("buy.ask_product"),
            buttons=tuple(
                Button(
                    title=f"{p.name(ctx.lang)} ({p.risk})",
                    payload=f'/inform{{"product": "{p.code}"}}',
                )
                for p in products
            ),
        )
    ]


async def _ask_amount(ctx: Context, slots: dict[str, Any]) -> Reply:
    code = slots.get("product")
    minimum = next((p.min_amount for p in await values.catalog(ctx) if p.code == code), None)
    text = ctx.t("buy.ask_amount", product=await product_name(ctx, str(code)))
    if ctx.extras.pop("amount_not_positive", False):
        text = ctx.t("buy.amount_not_positive") + text
    if minimum is not None:
        text += ctx.t("buy.minimum", minimum=money(minimum, ctx.lang))
    return [Outgoing(text=text)]


def risk_mismatch_text(ctx: Context, name: str, product_risk: str, customer_risk: str) -> str:
    return ctx.t("buy.risk_mismatch", product=name, product_risk=product_risk, customer_risk=customer_risk)


async def _prepare(ctx: Context, slots: dict[str, Any]) -> Prepared:
    """Ask the platform for the quote; suitability, fees and dates are its decisions."""
    assert ctx.customer_id is not None  # the task needs a linked chat
    code = str(slots["product"])
    amount = Decimal(str(slots["amount"]))
    name = await product_name(ctx, code)
    try:
        quote = await ctx.backend.quote(ctx.customer_id, "subscribe", code, amount=amount)
    except RiskMismatch as exc:
        return Prepared(
            reply=[Outgoing(text=risk_mismatch_text(
                ctx, name, str(exc.details.get("product_risk", "?")), str(exc.details.get("customer_risk", "?"))
            ))],
            ok=False,
        )
    except OutsideLimits as exc:
        limit = exc.details.get("minimum") or exc.details.get("limit") or exc.details.get("remaining")
        text = ctx.t(f"buy.limit.{exc.code}", limit=money(Decimal(str(limit)), ctx.lang)) if limit else ctx.t("buy.limit.generic")
        return Prepared(reply=[Outgoing(text=text)], ok=False, retry_slot="amount")
    except InsufficientFunds as exc:
        available = exc.details.get("available")
        text = ctx.t("buy.insufficient_cash", available=money(Decimal(str(available or "0")), ctx.lang))
        return Prepared(reply=[Outgoing(text=text)], ok=False, retry_slot="amount")
    except NotFound:
        return Prepared(reply=[Outgoing(text=ctx.t("buy.unknown_product"))], ok=False, retry_slot="product")
    if not quote.suitability.ok:
        return Prepared(
            reply=[Outgoing(text=risk_mismatch_text(ctx, name, quote.suitability.product_risk, quote.suitability.customer_risk))],
            ok=False,
        )
    return Prepared(
        reply=[Outgoing(text=_summary(ctx, name, quote))],
        data={
            "product": code,
            "amount": str(amount),
            "fee": str(quote.fee),
            "estimated_shares": None if quote.estimated_shares is None else str(quote.estimated_shares),
            "confirm_date": quote.confirm_date.isoformat(),
            "trade_date": quote.trade_date.isoformat(),
        },
        challenge=ChallengeSpec(
            action="buy",
            product=code,
            amount=amount,
            label=ctx.t("buy.label", product=name, amount=money(amount, ctx.lang)),
        ),
    )


def _summary(ctx: Context, name: str, quote: Quote) -> str:
    amount = quote.amount if quote.amount is not None else Decimal("0")
    lines = [
        ctx.t("buy.summary.title"),
        ctx.t("buy.summary.product", product=name, code=quote.product, risk=quote.suitability.product_risk),
        ctx.t("buy.summary.amount", amount=money(amount, ctx.lang)),
        ctx.t(
            "buy.summary.fee",
            fee=money(quote.fee, ctx.lang),
            rate=_pct(quote.fee_rate),
        ),
        ctx.t("buy.summary.nav", nav=f"{quote.nav}"),
    ]
    if quote.estimated_shares is not None:
        lines.append(ctx.t("buy.summary.shares", shares=fmt_shares(quote.estimated_shares)))
    lines.append(ctx.t("buy.summary.confirm_date", date=_d(ctx, quote.confirm_date)))
    if quote.scheduled:
        lines.append(ctx.t("buy.summary.scheduled", date=_d(ctx, quote.trade_date)))
    lines.append(ctx.t("buy.summary.suitability", customer_risk=quote.suitability.customer_risk, product_risk=quote.suitability.product_risk))
    lines.append(ctx.t("buy.disclaimer"))
    return "\n".join(lines)


async def _execute(
    ctx: Context, slots: dict[str, Any], data: dict[str, Any], key: str, proof: dict[str, Any]
) -> Executed:
    assert ctx.customer_id is not None
    order = await ctx.backend.place_order(
        ctx.customer_id,
        key,
        "subscribe",
        str(data["product"]),
        str(proof.get("challenge_id", "")),
        amount=Decimal(str(data["amount"])),
    )
    name = await product_name(ctx, order.product)
    lines = [
        ctx.t("buy.done", order_id=order.order_id, product=name, amount=money(order.amount or Decimal(data["amount"]), ctx.lang)),
        ctx.t("buy.next", confirm_date=_d(ctx, order.confirm_date)),
    ]
    if order.scheduled:
        lines.append(ctx.t("buy.summary.scheduled", date=_d(ctx, order.trade_date)))
    return Executed(
        reply=[Outgoing(text="\n".join(lines))],
        order_id=order.order_id,
        result={"status": order.status},
    )


def _describe(ctx: Context, slots: dict[str, Any]) -> str:
    parts = [ctx.t("buy.what")]
    if slots.get("product"):
        parts.append(values.cached_name(ctx, str(slots["product"])))
    if slots.get("amount"):
        parts.append(money(Decimal(str(slots["amount"])), ctx.lang))
    return " ".join(parts)


def _pct(rate: Decimal | None) -> str:
    if rate is None:
        return "-"
    return f"{(rate * 100).normalize():f}%"


def _d(ctx: Context, day: Any) -> str:
    from datetime import datetime, time

    from bot.locales import SHANGHAI

    return fmt_date(datetime.combine(day, time(12, 0), SHANGHAI), ctx.lang)


TASK = TaskDef(
    name="buy",
    slots=(
        Slot("product", extract_product, _ask_product),
        Slot("amount", _extract_amount, _ask_amount),
    ),
    prepare=_prepare,
    execute=_execute,
    describe=_describe,
)
