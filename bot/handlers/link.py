"""Linking a chat to a platform customer (link code), unlinking, "my data" and "forget me"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend_client.errors import LinkCodeInvalid
from bot.dialogue import values
from bot.dialogue.tasks import Executed, Prepared, TaskDef
from bot.dialogue.types import Context, Reply, Turn, buttons
from bot.security.stepup import ChallengeSpec
from bot.types import Outgoing

__all__ = ["FORGET_TASK", "UNLINK_TASK", "handle", "link_with_code", "my_data"]


def _recent_wrong(ctx: Context, now: datetime) -> list[str]:
    window = timedelta(minutes=ctx.settings.link_wrong_window_minutes)
    kept = []
    for stamp in ctx.state.get("link_wrong") or []:
        try:
            at = datetime.fromisoformat(stamp)
        except (TypeError, ValueError):
            continue
        if timedelta(0) <= now - at <= window:
            kept.append(stamp)
    return kept


async def link_with_code(code: str, ctx: Context) -> Reply:
    """Redeem a link code: the chat belongs to that customer and counts as verified now."""
    now = await ctx.now()
    wrong = _recent_wrong(ctx, now)
    ctx.state["link_wrong"] = wrong
    if len(wrong) >= ctx.settings.link_max_wrong:
        return [Outgoing(text=ctx.t("link.too_many", minutes=ctx.settings.link_wrong_window_minutes))]
    try:
        result = await ctx.backend.redeem_link_code(code)
    except LinkCodeInvalid as exc:
        wrong.append(now.isoformat())
        ctx.state["link_wrong"] = wrong
        await _audit(ctx, "link_failed", {"reason": exc.code})
        key = f"link.invalid.{exc.code}"
        from bot.locales import has

        return [Outgoing(text=ctx.t(key if has(ctx.lang, key) else "link.invalid.link_code_unknown"))]
    previous = ctx.customer_id
    if previous and previous != result.customer_id:
        # Another customer's code: nothing of the previous customer's session carries over.
        for key in ("task", "challenge", "last_done", "last_challenge", "stepup"):
            ctx.state.pop(key, None)
    ctx.customer_id = result.customer_id
    ctx.verified_at = now
    ctx.state["link_wrong"] = []
    await _audit(ctx, "link", {"channel": ctx.channel, "relinked": bool(previous)})
    from bot.handlers.smalltalk import menu_buttons

    return [Outgoing(text=ctx.t("link.done"), buttons=menu_buttons(ctx))]


async def handle(turn: Turn, ctx: Context) -> Reply:
    """"I want to link my account": how to get a link code (or use the one in the message)."""
    for candidate in (turn.nlu.first("link_code"), *turn.message.text.split()):
        if candidate:
            code = values.link_code(candidate)
            if code:
                return await link_with_code(code, ctx)
    if ctx.customer_id:
        return [
            Outgoing(
                text=ctx.t("link.already"),
                buttons=buttons((ctx.t("link.unlink_button"), "/unlink_account")),
            )
        ]
    return [Outgoing(text=ctx.t("engine.link.needed"))]


# --- unlink: behind a fresh code ---------------------------------------------------------


async def _unlink_prepare(ctx: Context, _slots: dict[str, Any]) -> Prepared:
    return Prepared(
        reply=[Outgoing(text=ctx.t("link.unlink_summary"))],
        challenge=ChallengeSpec(action="unlink", label=ctx.t("engine.action.unlink")),
    )


async def _unlink_execute(
    ctx: Context, _slots: dict[str, Any], _data: dict[str, Any], _key: str, _proof: dict[str, Any]
) -> Executed:
    ctx.customer_id = None
    ctx.verified_at = None
    for key in ("last_done", "last_challenge"):
        ctx.state.pop(key, None)
    return Executed(reply=[Outgoing(text=ctx.t("link.unlinked"))])


UNLINK_TASK = TaskDef(
    name="unlink",
    slots=(),
    prepare=_unlink_prepare,
    execute=_unlink_execute,
    describe=lambda ctx, _s: ctx.t("engine.action.unlink"),
    audit_kind="unlink",
)


# --- my data and forget me ----------------------------------------------------------------


async def my_data(turn: Turn, ctx: Context) -> Reply:
    """What finbot keeps about this chat (PIPL right of access) as a JSON file, and how to erase it."""
    import json

    from bot.security import privacy
    from bot.types import Attachment

    data = await privacy.export_customer_data(ctx.db, ctx.conversation_id)
    lines = len(data.get("transcripts") or [])
    await _audit(ctx, "data_export", {"sections": sorted(data)})
    text = ctx.t(
        "link.my_data",
        linked=ctx.t("link.yes") if ctx.customer_id else ctx.t("link.no"),
        lines=lines,
        lang=ctx.lang,
    )
    blob = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    return [
        Outgoing(
            text=text,
            buttons=buttons((ctx.t("link.forget_button"), "/forget_me")),
            attachment=Attachment(filename="finbot-my-data.json", content_type="application/json", data=blob),
        )
    ]


async def _forget_prepare(ctx: Context, _slots: dict[str, Any]) -> Prepared:
    # A linked chat proves it is the customer with a fresh code; an unlinked one has no phone
    # to send it to and holds no personal data beyond its own transcript.
    spec = ChallengeSpec(action="forget_me", label=ctx.t("engine.action.forget_me")) if ctx.customer_id else None
    return Prepared(reply=[Outgoing(text=ctx.t("link.forget_summary"))], challenge=spec)


async def _forget_execute(
    ctx: Context, _slots: dict[str, Any], _data: dict[str, Any], _key: str, _proof: dict[str, Any]
) -> Executed:
    from bot.security import privacy

    # privacy.forget erases every area's rows of this chat and records "data_erased".
    await privacy.forget(ctx.db, ctx.conversation_id)
    ctx.extras["erased"] = True
    ctx.customer_id = None
    ctx.verified_at = None
    ctx.state.clear()
    return Executed(reply=[Outgoing(text=ctx.t("link.forgotten"))])


FORGET_TASK = TaskDef(
    name="forget_me",
    slots=(),
    prepare=_forget_prepare,
    execute=_forget_execute,
    describe=lambda ctx, _s: ctx.t("engine.action.forget_me"),
    needs_link=False,
    audit_kind=None,  # privacy.forget records the erasure itself
)


async def _audit(ctx: Context, kind: str, details: dict[str, Any]) -> None:
    from bot.security import audit

    async with ctx.db.begin() as s:
        await audit.record(
            s, kind, actor=f"conversation:{ctx.conversation_id}", subject=ctx.customer_id, details=details
        )
