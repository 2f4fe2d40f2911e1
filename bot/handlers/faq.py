"""FAQ: one answer per `faq/<topic>` in zh and en, with the policy numbers and an action button."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from backend_client.errors import PlatformError
from backend_client.models import FeeTier
from bot.dialogue import tasks
from bot.dialogue.types import Context, Reply, Turn
from bot.handlers.greet import payload
from bot.locales import has, translate
from bot.settings import Settings
from bot.types import Button, Lang, Outgoing

__all__ = ["ACTIONS", "MENU_TOPICS", "TOPICS", "answer", "handle", "policy_values"]

# The 29 topics of DOMAIN.md (the NLU's retrieval intents faq/<topic>).
TOPICS: tuple[str, ...] = (
    "register",
    "real_name",
    "password_rules",
    "reset_password",
    "bind_card",
    "risk_assessment",
    "trading_hours",
    "confirm_time",
    "arrival_time",
    "fees",
    "redemption_fee",
    "nav_calculation",
    "limits",
    "order_status_meaning",
    "failed_transaction",
    "history_export",
    "notifications_info",
    "complaint_process",
    "complaint_time",
    "regulator",
    "service_hours",
    "product_types",
    "returns_guarantee",
    "data_protection",
    "close_account",
    "security_tips",
    "change_phone",
    "cancel_order",
    "fund_safety",
)

# Where the customer can act on the answer: (locale key of the title, payload).
_LINK = ("faq.action.link", payload("link_account"))
_PRODUCTS = ("faq.action.products", payload("list_products"))
_SUITABLE = ("faq.action.suitable", payload("list_products", risk_level="mine"))
_BUY = ("faq.action.buy", payload("buy_product"))
_REDEEM = ("faq.action.redeem", payload("redeem_product"))
_TRACK = ("faq.action.track", payload("track_transaction"))
_HISTORY = ("faq.action.history", payload("transaction_history"))
_EXPORT_CSV = ("faq.action.export_csv", payload("export_history", format="csv"))
_EXPORT_PDF = ("faq.action.export_pdf", payload("export_history", format="pdf"))
_COMPLAIN = ("faq.action.complaint", payload("file_complaint"))
_MY_COMPLAINTS = ("faq.action.my_complaints", payload("complaint_status"))
_HUMAN = ("faq.action.human", payload("human_handoff"))
_BALANCE = ("faq.action.balance", payload("check_balance"))
_NOTIFY = ("faq.action.notifications", payload("notification_settings"))

ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "register": (_LINK,),
    "real_name": (),
    "password_rules": (),
    "reset_password": (),
    "bind_card": (),
    "risk_assessment": (_SUITABLE,),
    "trading_hours": (_BUY,),
    "confirm_time": (_TRACK,),
    "arrival_time": (_TRACK, _REDEEM),
    "fees": (_PRODUCTS,),
    "redemption_fee": (_REDEEM,),
    "nav_calculation": (_PRODUCTS,),
    "limits": (_PRODUCTS,),
    "order_status_meaning": (_TRACK,),
    "failed_transaction": (_TRACK, _COMPLAIN),
    "history_export": (_HISTORY, _EXPORT_CSV, _EXPORT_PDF),
    "notifications_info": (_NOTIFY,),
    "complaint_process": (_COMPLAIN, _MY_COMPLAINTS),
    "complaint_time": (_MY_COMPLAINTS,),
    "regulator": (_MY_COMPLAINTS, _HUMAN),
    "service_hours": (_HUMAN,),
    "product_types": (_PRODUCTS,),
    "returns_guarantee": (_PRODUCTS,),
    "data_protection": (),
    "close_account": (_BALANCE, _REDEEM),
    "security_tips": (),
    "change_phone": (),
    "cancel_order": (_TRACK,),
    "fund_safety": (_PRODUCTS,),
}

# The FAQ menu (payload "/faq"): the questions customers ask most.
MENU_TOPICS: tuple[str, ...] = (
    "trading_hours",
    "arrival_time",
    "redemption_fee",
    "fees",
    "fund_safety",
    "returns_guarantee",
    "complaint_process",
    "service_hours",
)


@dataclass(frozen=True, slots=True)
class _Tiers:
    short_days: int
    fee_short: str
    fee_mid: str
    fee_long: str


def _pct(rate: Decimal) -> str:
    text = f"{(rate * 100).normalize():f}"
    return f"{text}%"


def _tiers_from(tiers: tuple[FeeTier, ...] | list[FeeTier]) -> _Tiers | None:
    """The three holding-time tiers (short / up to a year / longer) as shown in answers."""
    ordered = sorted(tiers, key=lambda t: t.min_days)
    if len(ordered) < 3:
        return None
    return _Tiers(
        short_days=ordered[1].min_days,
        fee_short=_pct(ordered[0].rate),
        fee_mid=_pct(ordered[1].rate),
        fee_long=_pct(ordered[-1].rate),
    )


def _tiers_from_settings(settings: Settings) -> _Tiers | None:
    tiers: list[FeeTier] = []
    for part in settings.redemption_fee_tiers.split(","):
        span, _, rate = part.strip().partition(":")
        low, _, high = span.partition("-")
        tiers.append(FeeTier(int(low), int(high) if high else None, Decimal(rate)))
    return _tiers_from(tiers)


def _span(text: str) -> tuple[str, str]:
    start, _, end = text.partition("-")
    return start.strip(), end.strip()


def policy_values(
    settings: Settings, tiers: tuple[FeeTier, ...] | None = None
) -> dict[str, str | int]:
    """Every number an answer may show, from configuration (and the platform's fee tiers)."""
    t = (_tiers_from(tiers) if tiers else None) or _tiers_from_settings(settings)
    open_time, close_time = _span(settings.trading_hours)
    staffed_from, staffed_to = _span(settings.staffed_hours)
    quiet_from, quiet_to = _span(settings.quiet_hours)
    values: dict[str, str | int] = {
        "open_time": open_time,
        "close_time": close_time,
        "confirm_h": settings.trade_confirm_hours,
        "settle_days": settings.settlement_max_working_days,
        "otp_minutes": settings.one_time_code_minutes,
        "first_h": settings.complaint_first_response_h,
        "result_h": settings.complaint_result_h,
        "final_days": settings.complaint_final_working_days,
        "staffed_hours": f"{staffed_from}–{staffed_to}",
        "offline_h": settings.handoff_offline_answer_hours,
        "quiet_hours": f"{quiet_from}–{quiet_to}",
    }
    if t is not None:
        values.update(
            short_days=t.short_days, fee_short=t.fee_short, fee_mid=t.fee_mid, fee_long=t.fee_long
        )
    return values


def answer(lang: Lang, topic: str, values: dict[str, str | int]) -> str:
    """The answer text of one topic in one language (KeyError for an unknown topic)."""
    if topic not in TOPICS:
        raise KeyError(topic)
    return translate(lang, f"faq.{topic}", **values)


async def _platform_tiers(ctx: Context) -> tuple[FeeTier, ...] | None:
    try:
        products = await ctx.backend.list_products()
    except PlatformError:
        return None  # answer from configuration; the FAQ must work while the platform is down
    for p in products:
        if p.redemption_fee_tiers:
            return p.redemption_fee_tiers
    return None


def _menu(ctx: Context, text_key: str) -> Reply:
    return [
        Outgoing(
            text=ctx.t(text_key),
            buttons=tuple(
                Button(ctx.t(f"faq.title.{topic}"), payload(f"faq/{topic}"))
                for topic in MENU_TOPICS
            )
            + (Button(ctx.t("faq.action.human"), payload("human_handoff")),),
        )
    ]


_QUESTION = re.compile(
    r"[?？]|吗|么|怎么|怎样|如何|能不能|可不可以|可以.{0,8}吗|是否|哪里|在哪|\bhow\b|\bcan i\b|"
    r"\bcan you\b|\bis it\b|\bwhere\b|\bwhat\b|\bdo you\b|\bwhether\b",
    re.I,
)
_EXPORT_VERB = re.compile(r"导出|下载|export|download|csv|pdf|excel", re.I)


def _export_command(turn: Turn) -> bool:
    text = turn.message.text
    return bool(_EXPORT_VERB.search(text)) and not _QUESTION.search(text)


async def handle(turn: Turn, ctx: Context) -> Reply:
    """faq/<topic>: the answer and its action buttons; bare "faq": the menu of questions."""
    _, _, topic = turn.nlu.intent.partition("/")
    if not topic:
        return _menu(ctx, "faq.menu")
    if topic not in TOPICS or not has(ctx.lang, f"faq.{topic}"):
        return _menu(ctx, "faq.unknown")
    if topic == "history_export" and ctx.customer_id and _export_command(turn):
        # "导出CSV" / "export as pdf" reach the FAQ's history_export topic; a command (not a
        # question) starts the export itself.
        from bot.handlers import history

        return await tasks.start(history.EXPORT_TASK, turn, ctx)
    values = policy_values(ctx.settings, await _platform_tiers(ctx))
    text = answer(ctx.lang, topic, values)
    buttons = tuple(Button(ctx.t(key), p) for key, p in ACTIONS.get(topic, ()))
    return [Outgoing(text=text, buttons=buttons)]
