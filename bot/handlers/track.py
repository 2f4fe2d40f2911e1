"""Order tracking: one order by id (or the latest), its status history and next step."""

from __future__ import annotations

import re

from backend_client.errors import InvalidRequest, NotFound, PlatformError
from backend_client.models import Order
from bot.dialogue.types import Context, Reply, Turn
from bot.handlers.greet import payload
from bot.locales import date as fmt_date
from bot.locales import money, shares
from bot.types import Button, Outgoing

__all__ = ["find_order_id", "handle", "describe_order", "status_word"]

# Platform order ids: "D" + digits (customers may type a lower-case d).
ORDER_ID = re.compile(r"(?<![A-Za-z0-9])([Dd]\d{8,20})(?!\d)")
_REDEEM_WORDS = re.compile(r"赎回|卖出|redeem|redemption|sold|sell", re.I)
_BUY_WORDS = re.compile(r"申购|买|购买|subscri|purchase|bought|buy", re.I)


def find_order_id(turn: Turn) -> str | None:
    """The order id from the `order_id` entity, else from the text."""
    value = turn.nlu.first("order_id")
    if value:
        return value.strip().upper()
    m = ORDER_ID.search(turn.message.text)
    return m.group(1).upper() if m else None


def status_word(ctx: Context, status: str) -> str:
    key = f"track.status.{status}"
    try:
        return ctx.t(key)
    except KeyError:
        return status


def _reason(ctx: Context, reason: str | None) -> str:
    if not reason:
        return ctx.t("track.reason_unknown")
    try:
        return ctx.t(f"track.reason.{reason}")
    except KeyError:
        return reason  # the platform's own words


def _advice(ctx: Context, reason: str | None) -> str:
    hours = ctx.settings.complaint_first_response_h
    try:
        return ctx.t(f"track.advice.{reason}", first_h=hours)
    except KeyError:
        return ctx.t("track.advice_default", first_h=hours)


def describe_order(order: Order, ctx: Context, product_name: str) -> str:
    """The order in plain words: what, status, each step with its time, what comes next."""
    lang = ctx.lang
    if order.side == "redeem":
        what = ctx.t(
            "track.what_redeem",
            product=product_name,
            shares=shares(order.shares) if order.shares is not None else "-",
        )
        if order.amount is not None:
            what += ctx.t("track.what_redeem_amount", amount=money(order.amount, lang))
    else:
        what = ctx.t(
            "track.what_subscribe",
            product=product_name,
            amount=money(order.amount, lang) if order.amount is not None else "-",
        )
    lines = [
        ctx.t("track.title", order_id=order.order_id),
        what,
        ctx.t("track.current", status=status_word(ctx, order.status)),
    ]
    if order.history:
        lines.append(ctx.t("track.steps"))
        for change in order.history:
            lines.append(
                ctx.t(
                    "track.step_failed" if change.status == "failed" else "track.step",
                    status=status_word(ctx, change.status),
                    at=fmt_date(change.at, lang, with_time=True),
                )
            )
    if order.status == "failed":
        lines.append(ctx.t("track.failed", reason=_reason(ctx, order.reason)))
        lines.append(_advice(ctx, order.reason))
    elif order.next_step is not None:
        lines.append(
            ctx.t(
                "track.next",
                status=status_word(ctx, order.next_step.status),
                at=fmt_date(order.next_step.expected_at, lang, with_time=True),
            )
        )
        if order.scheduled and order.status in ("submitted", "accepted"):
            lines.append(ctx.t("track.scheduled", trade_date=order.trade_date.isoformat()))
    else:
        lines.append(ctx.t("track.done"))
    return "\n".join(lines)


def _buttons(order: Order, ctx: Context) -> tuple[Button, ...]:
    out: list[Button] = []
    if order.status == "failed":
        intent = "redeem_product" if order.side == "redeem" else "buy_product"
        out.append(Button(ctx.t("track.retry_button"), payload(intent, product=order.product)))
        out.append(
            Button(
                ctx.t("track.complain_button"), payload("file_complaint", order_id=order.order_id)
            )
        )
        out.append(Button(ctx.t("track.human_button"), payload("human_handoff")))
    else:
        out.append(Button(ctx.t("track.history_button"), payload("transaction_history")))
        if not order.is_final:
            out.append(
                Button(
                    ctx.t("track.complain_button"),
                    payload("file_complaint", order_id=order.order_id),
                )
            )
    return tuple(out)


async def _product_name(ctx: Context, code: str) -> str:
    try:
        return (await ctx.backend.get_product(code)).name(ctx.lang)
    except PlatformError:
        return code


async def handle(turn: Turn, ctx: Context) -> Reply:
    """track_transaction: by order id, else the latest order (of a product or side if said)."""
    if not ctx.customer_id:
        return [Outgoing(text=ctx.t("track.need_link"))]
    order_id = find_order_id(turn)
    try:
        if order_id:
            try:
                order = await ctx.backend.get_order(ctx.customer_id, order_id)
            except (NotFound, InvalidRequest):
                # Another customer's id is "not found" too: never confirm that it exists.
                return [
                    Outgoing(
                        text=ctx.t("track.not_found", order_id=order_id),
                        buttons=(
                            Button(ctx.t("track.latest_button"), payload("track_transaction")),
                            Button(ctx.t("track.history_button"), payload("transaction_history")),
                        ),
                    )
                ]
        else:
            side = None
            if _REDEEM_WORDS.search(turn.message.text):
                side = "redeem"
            elif _BUY_WORDS.search(turn.message.text):
                side = "subscribe"
            product = turn.nlu.first("product")
            page = await ctx.backend.list_orders(
                ctx.customer_id, product=product, side=side, page=1, page_size=1
            )
            if not page.items and (product or side):
                page = await ctx.backend.list_orders(ctx.customer_id, page=1, page_size=1)
            if not page.items:
                return [
                    Outgoing(
                        text=ctx.t("track.no_orders"),
                        buttons=(Button(ctx.t("track.products_button"), payload("list_products")),),
                    )
                ]
            order = page.items[0]
        name = await _product_name(ctx, order.product)
    except PlatformError:
        return [Outgoing(text=ctx.t("track.unavailable"))]
    text = describe_order(order, ctx, name)
    if not order_id:
        text = ctx.t("track.latest_intro") + "\n" + text
    return [Outgoing(text=text, buttons=_buttons(order, ctx))]
