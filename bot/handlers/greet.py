"""Greeting and help: what finbot can do, as a menu of buttons with Rasa-style payloads."""

from __future__ import annotations

import json

from bot.dialogue.types import Context, Reply, Turn
from bot.handlers.registry import Route
from bot.types import Button, Outgoing

__all__ = ["MENU", "ROUTES", "handle", "handle_help", "menu_buttons", "payload"]

# (locale key, payload). Intents of other areas are named as the NLU data names them.
MENU: tuple[tuple[str, str], ...] = (
    ("greet.menu.balance", "/check_balance"),
    ("greet.menu.products", "/list_products"),
    ("greet.menu.buy", "/buy_product"),
    ("greet.menu.redeem", "/redeem_product"),
    ("greet.menu.track", "/track_transaction"),
    ("greet.menu.history", "/transaction_history"),
    ("greet.menu.complaint", "/file_complaint"),
    ("greet.menu.faq", "/faq"),
    ("greet.menu.human", "/human_handoff"),
)


def payload(intent: str, **entities: str | int | bool) -> str:
    """A button payload in Rasa's convention: ``/intent`` or ``/intent{"key": "value"}``."""
    if not entities:
        return f"/{intent}"
    return f"/{intent}" + json.dumps(entities, ensure_ascii=False, separators=(",", ":"))


def menu_buttons(ctx: Context) -> tuple[Button, ...]:
    """The full main menu in the conversation's language."""
    return tuple(Button(title=ctx.t(key), payload=p) for key, p in MENU)


async def handle(turn: Turn, ctx: Context) -> Reply:
    """Hello: a short welcome (mentioning linking when the chat is not linked) and the menu."""
    intro = ctx.t("greet.hello") if ctx.customer_id else ctx.t("greet.hello_unlinked")
    return [Outgoing(text=intro, buttons=menu_buttons(ctx))]


async def handle_help(turn: Turn, ctx: Context) -> Reply:
    """Help: the list of things finbot does, the menu, and how to reach a person."""
    text = ctx.t("greet.help")
    if not ctx.customer_id:
        text += "\n" + ctx.t("greet.link_hint")
    return [Outgoing(text=text, buttons=menu_buttons(ctx))]


ROUTES = (Route("help", "bot.handlers.greet:handle_help", question=True),)
