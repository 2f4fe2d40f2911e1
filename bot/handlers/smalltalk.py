"""Small talk: greeting fallback, goodbye, thanks, yes/no outside a question, out of scope."""

from __future__ import annotations

from bot.dialogue.types import Context, Reply, Turn
from bot.types import Button, Outgoing

__all__ = ["affirm", "deny", "goodbye", "greet", "menu", "menu_buttons", "out_of_scope", "thank"]

MENU: tuple[tuple[str, str], ...] = (
    ("engine.intent.check_balance", "/check_balance"),
    ("engine.intent.list_products", "/list_products"),
    ("engine.intent.buy_product", "/buy_product"),
    ("engine.intent.redeem_product", "/redeem_product"),
    ("engine.intent.track_transaction", "/track_transaction"),
    ("engine.intent.human_handoff", "/human_handoff"),
)


def menu_buttons(ctx: Context) -> tuple[Button, ...]:
    return tuple(Button(title=ctx.t(k), payload=p) for k, p in MENU)


async def greet(turn: Turn, ctx: Context) -> Reply:
    """Used only when the greet handler (information area) is not installed."""
    key = "smalltalk.greet" if ctx.customer_id else "smalltalk.greet_unlinked"
    return [Outgoing(text=ctx.t(key), buttons=menu_buttons(ctx))]


async def goodbye(turn: Turn, ctx: Context) -> Reply:
    return [Outgoing(text=ctx.t("smalltalk.goodbye"))]


async def thank(turn: Turn, ctx: Context) -> Reply:
    return [Outgoing(text=ctx.t("smalltalk.thank"))]


async def affirm(turn: Turn, ctx: Context) -> Reply:
    """A "yes" with no question pending: say so and offer the menu."""
    return [Outgoing(text=ctx.t("smalltalk.affirm"), buttons=menu_buttons(ctx))]


async def deny(turn: Turn, ctx: Context) -> Reply:
    """A "no" with no question pending. 「不满意」 / "not satisfied" right after a complaint was
    answered is not a plain no: the customer gets the escalation path (QA F17)."""
    from bot.handlers import complaints

    if await complaints.unhappy_with_latest_result(turn, ctx):
        return [complaints.escalation(ctx)]
    return [Outgoing(text=ctx.t("smalltalk.deny"), buttons=menu_buttons(ctx))]


async def out_of_scope(turn: Turn, ctx: Context) -> Reply:
    """Say plainly what finbot can do, with the menu."""
    return [Outgoing(text=ctx.t("smalltalk.out_of_scope"), buttons=menu_buttons(ctx))]


async def menu(turn: Turn, ctx: Context) -> Reply:
    return [Outgoing(text=ctx.t("smalltalk.menu"), buttons=menu_buttons(ctx))]


async def handoff(turn: Turn, ctx: Context) -> Reply:
    """Used only until the handoff area's handler exists: open a ticket and say the wait."""
    from bot.handoff import service
    from bot.store import conversations as store

    reason = "lockout" if turn.nlu.first("reason") == "lockout" else "customer_request"
    async with ctx.db.begin() as s:
        lines = await store.recent_transcript(s, ctx.conversation_id, 20)
    info = await service.open_ticket(
        ctx.db,
        conversation_id=ctx.conversation_id,
        reason=reason,
        intent=turn.nlu.intent,
        entities={e.entity: e.value for e in turn.nlu.entities},
        lang=ctx.lang,
        channel=ctx.channel,
        transcript=[{"role": line.role, "text": line.text} for line in lines],
        sender=ctx.sender,
        customer_id=ctx.customer_id,
        now=await ctx.now(),
    )
    return [Outgoing(text=service.queue_message(ctx.lang, info))]
