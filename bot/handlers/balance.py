"""Balance and holdings: cash, each holding (shares × NAV = market value), total, masked card."""

from __future__ import annotations

from bot.dialogue.types import Context, Reply, Turn
from bot.locales import date as fmt_date
from bot.locales import money, shares
from bot.security.masking import mask_card
from bot.types import Button, Outgoing

__all__ = ["handle"]


async def handle(turn: Turn, ctx: Context) -> Reply:
    """The linked, recently verified customer's portfolio (the engine checked both)."""
    assert ctx.customer_id is not None
    portfolio = await ctx.backend.get_portfolio(ctx.customer_id)
    customer = await ctx.backend.get_customer(ctx.customer_id)
    lines = [ctx.t("balance.title", as_of=fmt_date(portfolio.as_of, ctx.lang, with_time=True))]
    lines.append(ctx.t("balance.cash", cash=money(portfolio.cash, ctx.lang)))
    if portfolio.holdings:
        lines.append(ctx.t("balance.holdings_title"))
        for h in portfolio.holdings:
            lines.append(
                ctx.t(
                    "balance.holding",
                    product=h.name_en if ctx.lang == "en" else h.name_zh,
                    code=h.product,
                    shares=shares(h.shares),
                    nav=f"{h.nav}",
                    value=money(h.market_value, ctx.lang),
                )
            )
    else:
        lines.append(ctx.t("balance.no_holdings"))
    lines.append(ctx.t("balance.total", total=money(portfolio.total, ctx.lang)))
    # The platform masks already; masking again guarantees no full number ever reaches a chat.
    lines.append(ctx.t("balance.card", bank=customer.bank_name, card=mask_card(customer.bank_card_masked)))
    return [
        Outgoing(
            text="\n".join(lines),
            buttons=(
                Button(title=ctx.t("engine.intent.buy_product"), payload="/buy_product"),
                Button(title=ctx.t("engine.intent.redeem_product"), payload="/redeem_product"),
            ),
        )
    ]
