"""Redeeming (赎回): by shares, by amount or all; estimate = shares × NAV − fee, from the quote."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from backend_client.errors import InsufficientFunds, NotFound, OutsideLimits
from backend_client.models import Quote
from bot.dialogue import values
from bot.dialogue.tasks import Executed, Prepared, Slot, TaskDef
from bot.dialogue.types import Context, Reply, Understanding
from bot.handlers.buy import _d, _pct, extract_product, product_name
from bot.locales import money
from bot.locales import shares as fmt_shares
from bot.security.stepup import ChallengeSpec
from bot.types import Button, Outgoing

__all__ = ["TASK"]


async def _extract_qty(nlu: Understanding, ctx: Context, _slots: dict[str, Any]) -> dict[str, Any] | None:
    """{"all": True} | {"shares": "1000"} | {"amount": "500"} from entities or a bare answer."""
    if (nlu.first("all") or "").lower() == "true":
        return {"all": True}
    shares = values.money_value(nlu.first("shares"))
    if shares is not None:
        return {"shares": str(shares)}
    amount = values.money_value(nlu.first("amount"))
    if amount is not None:
        return {"amount": str(amount)}
    if not nlu.text or nlu.text.startswith("/"):
        return None
    if values.parse_all(nlu.text):
        return {"all": True}
    if values.parse_half(nlu.text, loose=True):
        return {"half": True}
    parsed = values.parse_number(nlu.text)
    if parsed is None or parsed[0] <= 0:
        return None
    value, kind = parsed
    # A bare number means shares (funds are redeemed in shares; the question says so).
    return {"amount": str(value)} if kind == "yuan" else {"shares": str(value)}


async def _ask_product(ctx: Context, _slots: dict[str, Any], *, autofill: bool = True) -> Reply:
    """Which holding to redeem; one holding is taken as meant, unless the customer just named
    another fund (then they choose: never redeem a fund they did not name)."""
    assert ctx.customer_id is not None
    portfolio = await ctx.backend.get_portfolio(ctx.customer_id)
    if not portfolio.holdings:
        ctx.state.pop("task", None)  # nothing to redeem: the task ends here
        return [Outgoing(text=ctx.t("redeem.no_holdings"))]
    if len(portfolio.holdings) == 1 and autofill:  # one holding: no need to ask which
        _slots["product"] = portfolio.holdings[0].product
        return await _ask_qty(ctx, _slots)
    return [
        Outgoing(
            text=ctx.t("redeem.ask_product"),
            buttons=tuple(
                Button(
                    title=f"{h.name_en if ctx.lang == 'en' else h.name_zh} ({fmt_shares(h.shares)})",
                    payload=f'/inform{{"product": "{h.product}"}}',
                )
                for h in portfolio.holdings
            ),
        )
    ]


async def _ask_qty(ctx: Context, slots: dict[str, Any]) -> Reply:
    assert ctx.customer_id is not None
    code = str(slots.get("product"))
    portfolio = await ctx.backend.get_portfolio(ctx.customer_id)
    holding = next((h for h in portfolio.holdings if h.product == code), None)
    name = await product_name(ctx, code)
    if holding is None:
        slots["product"] = None
        return [Outgoing(text=ctx.t("redeem.not_held", product=name)),
                *await _ask_product(ctx, slots, autofill=False)]
    return [
        Outgoing(
            text=ctx.t(
                "redeem.ask_qty",
                product=name,
                shares=fmt_shares(holding.shares),
                value=money(holding.market_value, ctx.lang),
            ),
            buttons=(Button(title=ctx.t("redeem.all_button"), payload='/inform{"all": true}'),),
        )
    ]


def _order_args(qty: dict[str, Any]) -> dict[str, Any]:
    if qty.get("all"):
        return {"all": True}
    if qty.get("shares") is not None:
        return {"shares": Decimal(str(qty["shares"]))}
    return {"amount": Decimal(str(qty["amount"]))}


async def _prepare(ctx: Context, slots: dict[str, Any]) -> Prepared:
    assert ctx.customer_id is not None
    code = str(slots["product"])
    qty = dict(slots["qty"])
    name = await product_name(ctx, code)
    if qty.get("half"):
        # Half of the holding, in shares (rounded down to the platform's 2 places).
        portfolio = await ctx.backend.get_portfolio(ctx.customer_id)
        held = next((h.shares for h in portfolio.holdings if h.product == code), None)
        if held is None:
            return Prepared(reply=[Outgoing(text=ctx.t("redeem.not_held", product=name))], ok=False, retry_slot="product")
        qty = {"shares": str((held / 2).quantize(Decimal("0.01"), rounding=ROUND_DOWN))}
        slots["qty"] = qty
    try:
        quote = await ctx.backend.quote(ctx.customer_id, "redeem", code, **_order_args(qty))
    except InsufficientFunds as exc:
        available = Decimal(str(exc.details.get("available") or "0"))
        return Prepared(
            reply=[Outgoing(text=ctx.t("redeem.insufficient_shares", available=fmt_shares(available)))],
            ok=False,
            retry_slot="qty",
        )
    except OutsideLimits:
        return Prepared(reply=[Outgoing(text=ctx.t("redeem.limit"))], ok=False, retry_slot="qty")
    except NotFound:
        return Prepared(reply=[Outgoing(text=ctx.t("redeem.not_held", product=name))], ok=False, retry_slot="product")
    args = _order_args(qty)
    return Prepared(
        reply=[Outgoing(text=_summary(ctx, name, quote))],
        data={
            "product": code,
            "qty": qty,
            "shares": None if quote.shares is None else str(quote.shares),
            "amount": None if quote.estimated_amount is None else str(quote.estimated_amount),
            "arrival_date": quote.arrival_date.isoformat(),
        },
        challenge=ChallengeSpec(
            action="redeem",
            product=code,
            amount=args.get("amount"),
            shares=args.get("shares"),
            all=bool(args.get("all")),
            label=ctx.t("redeem.label", product=name, what=_qty_text(ctx, qty)),
        ),
    )


def _qty_text(ctx: Context, qty: dict[str, Any]) -> str:
    if qty.get("all"):
        return ctx.t("redeem.qty_all")
    if qty.get("half"):
        return ctx.t("redeem.qty_half")
    if qty.get("shares") is not None:
        return ctx.t("engine.units.shares", shares=fmt_shares(Decimal(str(qty["shares"]))))
    return money(Decimal(str(qty["amount"])), ctx.lang)


def _fee_rule(ctx: Context, quote: Quote) -> str:
    rule = quote.fee_rule
    key = f"redeem.fee_rule.{rule}"
    from bot.locales import has

    text = ctx.t(key) if has(ctx.lang, key) else rule
    if rule != "mixed" and quote.holding_days is not None:
        text += ctx.t("redeem.held_days", days=quote.holding_days)
    if rule == "mixed" and quote.fee_lines:
        parts = [
            ctx.t(
                "redeem.fee_line",
                shares=fmt_shares(line.shares),
                days=line.holding_days,
                rate=_pct(line.rate),
                fee=money(line.fee, ctx.lang),
            )
            for line in quote.fee_lines
        ]
        text += "：" if ctx.lang == "zh" else ": "
        text += "；".join(parts) if ctx.lang == "zh" else "; ".join(parts)
    return text


def _summary(ctx: Context, name: str, quote: Quote) -> str:
    shares = quote.shares or Decimal("0")
    gross = quote.amount if quote.amount is not None else shares * quote.nav
    net = quote.estimated_amount if quote.estimated_amount is not None else gross - quote.fee
    lines = [
        ctx.t("redeem.summary.title"),
        ctx.t("redeem.summary.product", product=name, code=quote.product),
        ctx.t(
            "redeem.summary.gross",
            shares=fmt_shares(shares),
            nav=f"{quote.nav}",
            gross=money(gross, ctx.lang),
        ),
        ctx.t("redeem.summary.fee", fee=money(quote.fee, ctx.lang), rule=_fee_rule(ctx, quote)),
        ctx.t("redeem.summary.net", net=money(net, ctx.lang)),
        ctx.t("redeem.summary.arrival", date=_d(ctx, quote.arrival_date)),
    ]
    if quote.scheduled:
        lines.append(ctx.t("buy.summary.scheduled", date=_d(ctx, quote.trade_date)))
    lines.append(ctx.t("buy.disclaimer"))
    return "\n".join(lines)


async def _execute(
    ctx: Context, slots: dict[str, Any], data: dict[str, Any], key: str, proof: dict[str, Any]
) -> Executed:
    assert ctx.customer_id is not None
    order = await ctx.backend.place_order(
        ctx.customer_id,
        key,
        "redeem",
        str(data["product"]),
        str(proof.get("challenge_id", "")),
        **_order_args(dict(data["qty"])),
    )
    name = await product_name(ctx, order.product)
    lines = [
        ctx.t(
            "redeem.done",
            order_id=order.order_id,
            product=name,
            shares=fmt_shares(order.shares or Decimal("0")),
        ),
        ctx.t("redeem.next", date=_d(ctx, order.arrival_date)),
    ]
    if order.scheduled:
        lines.append(ctx.t("buy.summary.scheduled", date=_d(ctx, order.trade_date)))
    return Executed(reply=[Outgoing(text="\n".join(lines))], order_id=order.order_id, result={"status": order.status})


def _describe(ctx: Context, slots: dict[str, Any]) -> str:
    parts = [ctx.t("redeem.what")]
    if slots.get("product"):
        parts.append(values.cached_name(ctx, str(slots["product"])))
    if slots.get("qty"):
        parts.append(_qty_text(ctx, dict(slots["qty"])))
    return " ".join(parts)


TASK = TaskDef(
    name="redeem",
    slots=(
        Slot("product", extract_product, _ask_product),
        Slot("qty", _extract_qty, _ask_qty),
    ),
    prepare=_prepare,
    execute=_execute,
    describe=_describe,
)
