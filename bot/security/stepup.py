"""Step-up verification: one policy table, SMS challenges bound to one action, lockout."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from backend_client.errors import ChallengeFailed, PlatformError
from bot.dialogue.types import Context, Reply, buttons
from bot.locales import money
from bot.locales import shares as fmt_shares
from bot.types import Outgoing

log = logging.getLogger(__name__)

Level = Literal["view", "fresh"]

# The one policy table. "view": a verification (link or SMS code) within
# settings.stepup_view_minutes is enough; "fresh": a new code bound to this exact action.
POLICY: dict[str, Level] = {
    "view_balance": "view",
    "view_holdings": "view",
    "view_history": "view",
    "view_complaints": "view",
    "view_my_data": "view",
    "buy": "fresh",
    "redeem": "fresh",
    "export_history": "fresh",
    "change_contact": "fresh",
    "unlink": "fresh",
    "forget_me": "fresh",
}

# Our action names → the platform's challenge actions; the SMS names the action (and, for
# orders, product and amount), and the bot binds each code to its task and idempotency key.
PLATFORM_ACTION: dict[str, str] = {
    "view_balance": "view",
    "view_holdings": "view",
    "view_history": "view",
    "view_complaints": "view",
    "view_my_data": "view",
    "buy": "subscribe",
    "redeem": "redeem",
    "export_history": "export_history",
    "unlink": "unlink",
    "forget_me": "erase_data",
    "change_contact": "change_contact",
}


@dataclass(frozen=True, slots=True)
class ChallengeSpec:
    """What a one-time code authorises: the action and, for orders, product and amount."""

    action: str  # a key of POLICY
    product: str | None = None
    amount: Decimal | None = None
    shares: Decimal | None = None
    all: bool = False
    label: str = ""  # how the bot names it to the customer ("购买 安心短债 ¥5,000.00")

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "product": self.product,
            "amount": None if self.amount is None else str(self.amount),
            "shares": None if self.shares is None else str(self.shares),
            "all": self.all,
            "label": self.label,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChallengeSpec:
        return cls(
            action=str(d["action"]),
            product=d.get("product"),
            amount=None if d.get("amount") is None else Decimal(str(d["amount"])),
            shares=None if d.get("shares") is None else Decimal(str(d["shares"])),
            all=bool(d.get("all")),
            label=str(d.get("label") or ""),
        )


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """The result of a code the customer sent. ``proof`` authorises the bound action."""

    status: Literal["ok", "wrong", "locked", "expired", "none", "void"]
    reply: Reply
    purpose: dict[str, Any]
    proof: dict[str, Any]


def level(action: str) -> Level:
    return POLICY[action]


def recently_verified(ctx: Context, now: datetime) -> bool:
    """A verification (link or code) within ``stepup_view_minutes`` of the platform's now."""
    if ctx.verified_at is None:
        return False
    age = now - ctx.verified_at
    return timedelta(0) - timedelta(minutes=1) <= age <= timedelta(
        minutes=ctx.settings.stepup_view_minutes
    )


def pending(ctx: Context) -> dict[str, Any] | None:
    raw = ctx.state.get("challenge")
    return raw if isinstance(raw, dict) else None


def locked_until(ctx: Context, now: datetime) -> datetime | None:
    raw = (ctx.state.get("stepup") or {}).get("locked_until")
    if not raw:
        return None
    until = datetime.fromisoformat(raw)
    return until if until > now else None


def void(ctx: Context) -> bool:
    """Forget the pending code (amount changed, task cancelled); True when there was one."""
    had = ctx.state.pop("challenge", None)
    if had:
        ctx.state["voided_challenge"] = True
    return bool(had)


async def send(
    ctx: Context, spec: ChallengeSpec, idempotency_key: str, purpose: dict[str, Any]
) -> Reply:
    """Ask the platform to text a code bound to ``spec`` and ``idempotency_key``."""
    now = await ctx.now()
    until = locked_until(ctx, now)
    if until is not None:
        return _locked_reply(ctx, until)
    if ctx.customer_id is None:  # callers check the link first; never send a code to nobody
        return [Outgoing(text=ctx.t("engine.link.needed"))]
    try:
        challenge = await ctx.backend.create_challenge(
            ctx.customer_id,
            PLATFORM_ACTION.get(spec.action, "view"),
            idempotency_key,
            product=spec.product,
            amount=spec.amount,
            shares=spec.shares,
            all=spec.all,
            lang=ctx.lang,
        )
    except ChallengeFailed as exc:
        if exc.code == "locked":
            return await _lock(ctx, now, _platform_until(exc, now, ctx))
        raise
    ctx.state.pop("voided_challenge", None)
    ctx.state["challenge"] = {
        "id": challenge.challenge_id,
        "expires_at": challenge.expires_at.isoformat(),
        "spec": spec.to_json(),
        "idem": idempotency_key,
        "purpose": purpose,
    }
    await _audit(
        ctx,
        "challenge_sent",
        {"action": spec.action, "product": spec.product, "challenge_id": challenge.challenge_id},
    )
    return [
        Outgoing(
            text=ctx.t(
                "engine.stepup.code_sent",
                what=spec.label or describe(ctx, spec),
                minutes=max(1, int((challenge.expires_at - now).total_seconds() // 60)),
            ),
            buttons=buttons((ctx.t("engine.button.cancel"), "/cancel")),
        )
    ]


async def resend(ctx: Context) -> Reply:
    """A new code for the same pending action (after an expired one)."""
    last = ctx.state.get("last_challenge")
    if not isinstance(last, dict):
        return [Outgoing(text=ctx.t("engine.stepup.nothing_pending"))]
    spec = ChallengeSpec.from_json(last["spec"])
    return await send(ctx, spec, str(last["idem"]), dict(last.get("purpose") or {}))


async def check(ctx: Context, code: str) -> CodeOutcome:
    """Verify a bare 6-digit code against the pending challenge (the platform decides)."""
    now = await ctx.now()
    until = locked_until(ctx, now)
    if until is not None:
        return CodeOutcome("locked", _locked_reply(ctx, until), {}, {})
    challenge = pending(ctx)
    if challenge is None:
        if ctx.state.pop("voided_challenge", None):
            return CodeOutcome(
                "void", [Outgoing(text=ctx.t("engine.stepup.code_void"))], {}, {}
            )
        return CodeOutcome("none", [], {}, {})
    purpose = dict(challenge.get("purpose") or {})
    try:
        await ctx.backend.verify_challenge(str(challenge["id"]), code)
    except ChallengeFailed as exc:
        if exc.code == "wrong_code":
            return await _wrong(ctx, now, exc, purpose)
        if exc.code == "locked":  # the platform counted this wrong code as the last one
            await _audit(ctx, "challenge_failed", {"reason": "locked"})
            reply = await _lock(ctx, now, _platform_until(exc, now, ctx))
            return CodeOutcome("locked", reply, purpose, {})
        if exc.code == "expired":
            ctx.state["last_challenge"] = ctx.state.pop("challenge")
            await _audit(ctx, "challenge_failed", {"reason": "expired"})
            return CodeOutcome(
                "expired",
                [
                    Outgoing(
                        text=ctx.t("engine.stepup.expired"),
                        buttons=buttons(
                            (ctx.t("engine.button.new_code"), "/resend_code"),
                            (ctx.t("engine.button.cancel"), "/cancel"),
                        ),
                    )
                ],
                purpose,
                {},
            )
        if exc.code != "already_used":
            ctx.state.pop("challenge", None)
            return CodeOutcome("void", [Outgoing(text=ctx.t("engine.stepup.code_void"))], purpose, {})
        # already_used: only this chat ever sent codes for this challenge, so an earlier
        # verification whose answer was lost (timeout) was this customer's. Carry on: the
        # order call re-checks the challenge, and a repeated key returns the first order.
        recovered = True
    else:
        recovered = False
    ctx.state.pop("challenge", None)
    ctx.state.pop("last_challenge", None)
    ctx.state["stepup"] = {"wrong": 0}
    ctx.verified_at = now
    await _audit(ctx, "challenge_verified", {"challenge_id": challenge["id"], "recovered": recovered})
    return CodeOutcome(
        "ok",
        [Outgoing(text=ctx.t("engine.stepup.verified"))],
        purpose,
        {"challenge_id": challenge["id"]},
    )


async def _wrong(
    ctx: Context, now: datetime, exc: PlatformError, purpose: dict[str, Any]
) -> CodeOutcome:
    record = dict(ctx.state.get("stepup") or {})
    wrong = int(record.get("wrong", 0)) + 1
    record["wrong"] = wrong
    ctx.state["stepup"] = record
    limit = ctx.settings.stepup_max_wrong
    platform_left = exc.details.get("attempts_left")
    left = limit - wrong
    if isinstance(platform_left, int):
        left = min(left, platform_left)
    await _audit(ctx, "challenge_failed", {"reason": "wrong_code", "wrong": wrong})
    if left <= 0:
        reply = await _lock(ctx, now, now + timedelta(minutes=ctx.settings.stepup_lock_minutes))
        return CodeOutcome("locked", reply, purpose, {})
    return CodeOutcome(
        "wrong", [Outgoing(text=ctx.t("engine.stepup.wrong", left=left))], purpose, {}
    )


async def _lock(ctx: Context, now: datetime, until: datetime) -> Reply:
    """Five wrong codes: no more codes for a while, the task is dropped, a human is offered."""
    ctx.state["stepup"] = {"wrong": 0, "locked_until": until.isoformat()}
    ctx.state.pop("challenge", None)
    ctx.state.pop("task", None)
    await _audit(ctx, "stepup_locked", {"until": until.isoformat()})
    log.warning("stepup_locked", extra={"conversation_id": ctx.conversation_id})
    return _locked_reply(ctx, until)


def _locked_reply(ctx: Context, until: datetime) -> Reply:
    from bot.locales import date as fmt_date

    return [
        Outgoing(
            text=ctx.t("engine.stepup.locked", until=fmt_date(until, ctx.lang, with_time=True)),
            buttons=buttons(
                (ctx.t("engine.button.human"), '/human_handoff{"reason": "lockout"}'),
            ),
        )
    ]


def _platform_until(exc: PlatformError, now: datetime, ctx: Context) -> datetime:
    raw = exc.details.get("locked_until")
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if value.tzinfo is not None:
                return value
        except ValueError:
            pass
    return now + timedelta(minutes=ctx.settings.stepup_lock_minutes)


def describe(ctx: Context, spec: ChallengeSpec) -> str:
    """A plain label for the action a code authorises."""
    what = ctx.t(f"engine.action.{spec.action}")
    parts = [what]
    if spec.product:
        parts.append(spec.product)
    if spec.amount is not None:
        parts.append(money(spec.amount, ctx.lang))
    if spec.shares is not None:
        parts.append(ctx.t("engine.units.shares", shares=fmt_shares(spec.shares)))
    return " ".join(parts)


async def _audit(ctx: Context, kind: str, details: dict[str, Any]) -> None:
    try:
        from bot.security import audit
    except ImportError:  # the security area's audit log is not there yet
        return
    async with ctx.db.begin() as s:
        await audit.record(
            s,
            kind,
            actor=f"conversation:{ctx.conversation_id}",
            subject=ctx.customer_id,
            details=details,
        )
