"""notification_settings: switch categories and quiet hours on or off, or show the menu."""

from __future__ import annotations

import json
import re

from bot.dialogue.types import Context, Reply, Turn
from bot.store import notifications as store
from bot.types import Button, Outgoing

# Words customers use, checked in this order (the first category that matches wins).
_CATEGORY_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("quiet", re.compile(r"免打扰|勿扰|夜间|晚上|quiet|do not disturb|dnd|night", re.I)),
    ("marketing", re.compile(r"营销|推广|广告|促销|活动|marketing|promo|offers?|ads?\b|advert", re.I)),
    ("complaints", re.compile(r"投诉|complaint", re.I)),
    ("risk", re.compile(r"风险|risk", re.I)),
    ("security", re.compile(r"安全|security|login alert", re.I)),
    ("orders", re.compile(r"订单|交易|到账|申购|赎回|order|trade|transaction|arriv|updates?", re.I)),
)
_OFF = re.compile(r"关闭|关掉|关了|取消|不要|别再|别发|停止|停掉|屏蔽|退订|turn off|switch off|stop|disable|"
                  r"mute|unsubscribe|no more|don'?t send|opt out", re.I)
_ON = re.compile(r"开启|打开|开通|订阅|恢复|接收|turn on|switch on|enable|subscribe|resume|opt in|start", re.I)


def _payload(category: str, enabled: bool) -> str:
    return "/notification_settings" + json.dumps({"category": category, "enabled": str(enabled).lower()})


def _what(turn: Turn) -> tuple[str | None, bool | None]:
    """(category or "quiet", on/off) from button entities or the customer's words."""
    category = turn.nlu.first("category")
    enabled = turn.nlu.first("enabled")
    if category is not None and enabled is not None:
        return category, enabled.lower() == "true"
    text = turn.message.text
    found = next((name for name, pattern in _CATEGORY_WORDS if pattern.search(text)), None)
    if _OFF.search(text):
        return found, False
    if _ON.search(text):
        return found, True
    return found, None


async def _menu(ctx: Context, prefs: store.Prefs, lead: str | None = None) -> Reply:
    t = ctx.t
    lines = [lead] if lead else []
    lines.append(t("notifications.settings.title"))
    buttons: list[Button] = []
    for category in store.CATEGORIES:
        name = t(f"notifications.category.{category}")
        if category in store.ALWAYS_ON:
            state = t("notifications.settings.always")
        else:
            on = prefs.wants(category)
            state = t("notifications.settings.state_on" if on else "notifications.settings.state_off")
            action = t("notifications.settings.state_off" if on else "notifications.settings.state_on")
            buttons.append(Button(title=f"{name}: {action}", payload=_payload(category, not on)))
        lines.append(t("notifications.settings.line", name=name, state=state))
    hours = ctx.settings.quiet_hours
    quiet_state = t("notifications.settings.state_on" if prefs.quiet_hours else "notifications.settings.state_off")
    lines.append(t("notifications.settings.quiet_line", hours=hours, state=quiet_state))
    quiet_action = t("notifications.settings.state_off" if prefs.quiet_hours else "notifications.settings.state_on")
    buttons.append(Button(title=f"{t('notifications.settings.quiet_line', hours=hours, state=quiet_action)}",
                          payload=_payload("quiet", not prefs.quiet_hours)))
    return [Outgoing(text="\n".join(lines), buttons=tuple(buttons))]


async def handle(turn: Turn, ctx: Context) -> Reply:
    """Change one preference when the message says which; otherwise show all of them."""
    category, enabled = _what(turn)
    async with ctx.db.begin() as session:
        prefs = await store.get_prefs(session, ctx.conversation_id)
        if category is None or enabled is None:
            return await _menu(ctx, prefs)
        t = ctx.t
        if category == "quiet":
            prefs = await store.set_prefs(session, ctx.conversation_id, quiet_hours=enabled)
            state = t("notifications.settings.state_on" if enabled else "notifications.settings.state_off")
            return await _menu(ctx, prefs, t("notifications.settings.quiet_changed",
                                             hours=ctx.settings.quiet_hours, state=state))
        if category not in store.CATEGORIES:
            return await _menu(ctx, prefs)
        name = t(f"notifications.category.{category}")
        if category in store.ALWAYS_ON:
            return await _menu(ctx, prefs, t("notifications.settings.always_on", name=name))
        prefs = await store.set_prefs(session, ctx.conversation_id, categories={category: enabled})
    state = t("notifications.settings.state_on" if enabled else "notifications.settings.state_off")
    lead = t("notifications.settings.changed", name=name, state=state)
    if category == "marketing" and enabled:
        lead += "\n" + t("notifications.settings.marketing_consent")
    return await _menu(ctx, prefs, lead)
