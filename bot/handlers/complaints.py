"""Complaints: file one (category, the customer's words, related order), and follow its status."""

from __future__ import annotations

import re
from typing import Any

from backend_client.errors import InvalidRequest, NotFound, PlatformError
from backend_client.models import Complaint
from bot.dialogue import tasks
from bot.dialogue.tasks import Executed, Prepared, Slot, TaskDef, register_task
from bot.dialogue.types import Context, Reply, Turn, Understanding
from bot.handlers.greet import payload
from bot.handlers.registry import Route
from bot.handlers.track import ORDER_ID
from bot.locales import date as fmt_date
from bot.security.masking import mask_text
from bot.types import Button, Outgoing

__all__ = [
    "CATEGORIES",
    "escalation",
    "unhappy_with_latest_result",
    "TASK",
    "ROUTES",
    "extract_description",
    "file",
    "infer_category",
    "status",
]

CATEGORIES = ("service_attitude", "product_use", "system_fault", "policy_explanation")
COMPLAINT_ID = re.compile(r"(?<![A-Za-z0-9])([Cc]\d{14})(?!\d)")
MAX_DESCRIPTION = 1000  # characters sent to the platform; longer texts are cut

# Words that point at one category. "Clear" = exactly one category matches.
_CATEGORY_WORDS: dict[str, str] = {
    "service_attitude": (
        r"态度|不耐烦|不礼貌|骂|敷衍|不理人|爱答不理|服务(太|很|真)?差|客服(太|很|真)?差|"
        r"rude|attitude|impolite|unhelpful|unfriendly|worst service|bad service|service was|"
        r"staff|agent was|ignored me"
    ),
    "product_use": (
        r"亏|收益|净值|产品|基金|误导|风险(等级)?不符|赎回不了|买不了|手续费|费用|"
        r"losing money|lost money|return|\bnav\b|misled|mis-sold|sold to me|fund|product|\bfees?\b"
    ),
    "system_fault": (
        r"系统|故障|闪退|崩溃|打不开|登录不了|登不上|报错|卡住|卡死|扣了两次|重复扣|页面|app|"
        r"crash|bug|error|broken|\bdown\b|charged (me )?twice|double[- ]?charged?|won'?t load|log ?in|glitch|website"
    ),
    "policy_explanation": (
        r"政策|规则|条款|解释不清|说明不清|没说清|不清楚|规定|"
        r"policy|rules?\b|terms|explain|explanation|unclear|not clear"
    ),
}
# Typed answers to the category question ("系统故障", "3", "system fault").
_CATEGORY_ANSWERS: dict[str, str] = {
    "service_attitude": r"^(1|服务态度|态度|service attitude|attitude|service)$",
    "product_use": r"^(2|产品使用|产品|product use|product)$",
    "system_fault": r"^(3|系统故障|系统|system fault|system|technical)$",
    "policy_explanation": r"^(4|政策解释|政策|policy explanation|policy)$",
}
# The "I want to complain" part of a message; what is left may be the description.
_TRIGGERS = re.compile(
    r"我(想|要)?(投诉|反馈|举报)|投诉一下|投诉|提交投诉|反馈问题|"
    r"i('d| would)? (like|want) to (file|make|lodge|raise|submit|register) a complaint|"
    r"(file|make|lodge|raise|submit|register|open) a complaint( ticket)?|"
    r"i (want|wanna|would like) to complain( about)?|i have a complaint( about)?|complaint about|"
    r"complain(ing)? about|complaint|complain|i want to report|report (a|an) (problem|issue|bug)",
    re.I,
)
_RESULT = re.compile(r"结果|答复|回复|处理意见|result|answer|outcome|resolution|decision", re.I)
_FILLER = re.compile(r"[\s,，。.!！?？:：;；~～、…-]+")
# Asking for a person (not merely mentioning an agent in the complaint itself).
_HUMAN = re.compile(
    r"转人工|人工客服|人工服务|找人工|要人工|真人|(跟|和|找).{0,6}人(聊|谈|说|沟通)|"
    r"(talk|speak|chat|discuss)\b.{0,40}\b(with|to) (a |an |the )?(real )?"
    r"(person|human|agent|someone|somebody|representative|people)|"
    r"\b(a|real) (human|person)\b|connect me|transfer me",
    re.I,
)
_ESCALATE = re.compile(
    r"不满意|不接受|升级|监管|法院|起诉|调解|投诉到|not (satisfied|happy)|unsatisf|dissatisf|escalat|"
    r"regulator|mediation|court|sue\b|appeal",
    re.I,
)


def infer_category(text: str) -> str | None:
    """The category when the words point clearly at exactly one, else None (then we ask)."""
    if not text or text.startswith("/"):
        return None
    hits = [c for c, pattern in _CATEGORY_WORDS.items() if re.search(pattern, text, re.I)]
    return hits[0] if len(hits) == 1 else None


def _answered_category(text: str) -> str | None:
    bare = _FILLER.sub(" ", text).strip().lower()
    for c, pattern in _CATEGORY_ANSWERS.items():
        if re.match(pattern, bare, re.I):
            return c
    return None


def extract_description(text: str) -> str | None:
    """The customer's own account of the problem, when the message holds one beyond
    "I want to complain" (at least a few words / characters of substance)."""
    if not text or text.startswith("/") or _HUMAN.search(text):
        return None
    rest = _TRIGGERS.sub(" ", text)
    rest = ORDER_ID.sub(" ", rest)
    core = _FILLER.sub("", rest)
    if _answered_category(text) is not None:
        return None  # "系统故障" answers the category question; it is not a description
    cjk = sum(1 for ch in core if "\u4e00" <= ch <= "\u9fff")
    words = [w for w in re.split(r"\s+", _FILLER.sub(" ", rest).strip()) if w]
    if cjk >= 4 or (cjk == 0 and len(words) >= 3):
        return text.strip()[:MAX_DESCRIPTION]
    return None


def _entity(nlu: Understanding, *names: str) -> str | None:
    for e in nlu.entities:
        if e.entity in names and str(e.value).strip():
            return str(e.value).strip()
    return None


# ------------------------------------------------------------------ slots


async def _extract_category(nlu: Understanding, ctx: Context, slots: dict[str, Any]) -> Any | None:
    value = _entity(nlu, "category", "complaint_category")
    if value in CATEGORIES:
        return value
    answer = _answered_category(nlu.text)
    if answer is not None and tasks.asking(ctx) == "category":
        return answer
    if slots.get("category") is None:
        # Only infer once: later messages (a question mid-task) must not change it.
        return infer_category(nlu.text) or answer
    return None


async def _ask_category(ctx: Context, slots: dict[str, Any]) -> Reply:
    return [
        Outgoing(
            text=ctx.t("complaints.ask_category"),
            buttons=tuple(
                # "inform": the engine hands it to the task in progress (no restart).
                Button(ctx.t(f"complaints.category.{c}"), payload("inform", category=c))
                for c in CATEGORIES
            )
            # Someone who would rather tell a person can leave the form here.
            + (Button(ctx.t("complaints.human_button"), payload("human_handoff")),),
        )
    ]


async def _extract_description(
    nlu: Understanding, ctx: Context, slots: dict[str, Any]
) -> Any | None:
    found = _description_in(nlu, ctx, slots)
    # Minimum necessary: phone, ID and card numbers typed into the story are masked before
    # the text is kept or sent (the platform knows the customer's numbers already).
    return mask_text(found) if found is not None else None


def _description_in(nlu: Understanding, ctx: Context, slots: dict[str, Any]) -> str | None:
    asking = tasks.asking(ctx) == "description"
    if slots.get("description") is not None and not asking:
        return None
    if asking and not nlu.text.startswith("/"):
        text = nlu.text.strip()
        if _HUMAN.search(text):
            return None  # "let me talk to a person" is a request, not the description
        if _answered_category(text) is None and len(_FILLER.sub("", text)) >= 2:
            return text[:MAX_DESCRIPTION]
        return None
    return extract_description(nlu.text)


async def _ask_description(ctx: Context, slots: dict[str, Any]) -> Reply:
    category = slots.get("category")
    what = ctx.t(f"complaints.category.{category}") if category in CATEGORIES else ""
    return [Outgoing(text=ctx.t("complaints.ask_description", category=what))]


async def _extract_order(nlu: Understanding, ctx: Context, slots: dict[str, Any]) -> Any | None:
    value = _entity(nlu, "order_id")
    if value:
        return value.upper()
    if nlu.text.startswith("/"):
        return None
    m = ORDER_ID.search(nlu.text)
    return m.group(1).upper() if m else None


async def _ask_nothing(ctx: Context, slots: dict[str, Any]) -> Reply:
    return []


def _never(_slots: dict[str, Any]) -> bool:
    return False


def _quote(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _prepare(ctx: Context, slots: dict[str, Any]) -> Prepared:
    order_id = slots.get("order_id")
    notes: list[Outgoing] = []
    if order_id and ctx.customer_id:
        try:
            await ctx.backend.get_order(ctx.customer_id, str(order_id))
        except (NotFound, InvalidRequest):
            # Not the customer's order (or no such order): file without it, and say so.
            notes.append(Outgoing(text=ctx.t("complaints.order_not_found", order_id=order_id)))
            slots["order_id"] = None
            order_id = None
    lines = [
        ctx.t("complaints.summary_title"),
        ctx.t(
            "complaints.summary_category",
            category=ctx.t(f"complaints.category.{slots['category']}"),
        ),
        ctx.t("complaints.summary_description", description=_quote(str(slots["description"]))),
    ]
    if order_id:
        lines.append(ctx.t("complaints.summary_order", order_id=order_id))
    lines.append(ctx.t("complaints.summary_sla", **_sla_numbers(ctx)))
    return Prepared(
        reply=[*notes, Outgoing(text="\n".join(lines))],
        data={"category": slots["category"], "order_id": order_id},
        challenge=None,  # filing a complaint moves no money: no one-time code
    )


def _sla_numbers(ctx: Context) -> dict[str, int]:
    s = ctx.settings
    return {
        "first_h": s.complaint_first_response_h,
        "result_h": s.complaint_result_h,
        "final_days": s.complaint_final_working_days,
    }


def _sla_lines(ctx: Context, c: Complaint) -> list[str]:
    n = _sla_numbers(ctx)
    lang = ctx.lang
    return [
        ctx.t("complaints.sla_ack", at=fmt_date(c.created_at, lang, with_time=True)),
        ctx.t(
            "complaints.sla_first",
            at=fmt_date(c.first_response_due, lang, with_time=True),
            hours=n["first_h"],
        ),
        ctx.t(
            "complaints.sla_result",
            at=fmt_date(c.result_due, lang, with_time=True),
            hours=n["result_h"],
        ),
        ctx.t("complaints.sla_final", at=fmt_date(c.final_due, lang), days=n["final_days"]),
    ]


async def _execute(
    ctx: Context, slots: dict[str, Any], data: dict[str, Any], key: str, proof: dict[str, Any]
) -> Executed:
    if ctx.customer_id is None:
        raise PlatformError("not_linked")
    c = await ctx.backend.file_complaint(
        ctx.customer_id,
        category=str(slots["category"]),
        description=str(slots["description"])[:MAX_DESCRIPTION],
        order_id=data.get("order_id") or None,
    )
    lines = [ctx.t("complaints.filed", complaint_id=c.complaint_id), *_sla_lines(ctx, c)]
    lines.append(ctx.t("complaints.filed_next"))
    return Executed(
        reply=[
            Outgoing(
                text="\n".join(lines),
                buttons=(
                    Button(
                        ctx.t("complaints.status_button"),
                        payload("complaint_status", complaint_id=c.complaint_id),
                    ),
                    Button(ctx.t("complaints.human_button"), payload("human_handoff")),
                ),
            )
        ],
        order_id=c.complaint_id,  # the bot's once-only record keeps the ticket id
        result={"complaint_id": c.complaint_id, "category": c.category},
    )


def _describe(ctx: Context, slots: dict[str, Any]) -> str:
    category = slots.get("category")
    if category in CATEGORIES:
        return ctx.t("complaints.describe_with", category=ctx.t(f"complaints.category.{category}"))
    return ctx.t("complaints.describe")


TASK = TaskDef(
    name="file_complaint",
    slots=(
        Slot("category", _extract_category, _ask_category),
        Slot("description", _extract_description, _ask_description),
        Slot("order_id", _extract_order, _ask_nothing, required=_never),
    ),
    prepare=_prepare,
    execute=_execute,
    describe=_describe,
    needs_link=True,
    confirm=True,
    audit_kind=None,  # no money and no personal data moves; the platform keeps the ticket
)

TASKS = (TASK,)
# Our handlers start this task themselves, so it must resolve even before the registry
# has merged the plugins (registering twice is harmless).
register_task(TASK)


async def file(turn: Turn, ctx: Context) -> Reply:
    """file_complaint: "not satisfied with the result" gets the escalation path and "let me
    talk to a person" the handoff; otherwise the complaint task starts (or continues)."""
    text = "" if turn.message.text.startswith("/") else turn.message.text
    current = tasks.active(ctx)
    if current is not None and current[0].name == TASK.name:
        filled = await tasks.fill(turn, ctx)
        return filled if filled is not None else await tasks.resume(ctx)
    if text and _ESCALATE.search(text) and _RESULT.search(text):
        return [escalation(ctx)]
    if text and _HUMAN.search(text):
        return [_offer_human(ctx)]
    return await tasks.start(TASK, turn, ctx)


def _offer_human(ctx: Context) -> Outgoing:
    return Outgoing(
        text=ctx.t("complaints.offer_human"),
        buttons=(
            Button(ctx.t("complaints.human_button"), payload("human_handoff")),
            Button(ctx.t("complaints.mine_button"), payload("complaint_status")),
        ),
    )


# ------------------------------------------------------------------ status


def _status_word(ctx: Context, status: str) -> str:
    try:
        return ctx.t(f"complaints.status.{status}")
    except KeyError:
        return status


def _category_word(ctx: Context, category: str) -> str:
    try:
        return ctx.t(f"complaints.category.{category}")
    except KeyError:
        return category


async def unhappy_with_latest_result(turn: Turn, ctx: Context) -> bool:
    """The customer says they are not satisfied (「不满意」, "not happy") and their most recent
    complaint has been answered: they mean that answer."""
    text = turn.message.text
    if not ctx.customer_id or text.startswith("/") or not _ESCALATE.search(text):
        return False
    try:
        latest = (await ctx.backend.list_complaints(ctx.customer_id)).items[:1]
    except PlatformError:
        return False
    return bool(latest and latest[0].status == "answered")


def escalation(ctx: Context) -> Outgoing:
    return Outgoing(
        text=ctx.t("complaints.escalation"),
        buttons=(
            Button(ctx.t("complaints.human_button"), payload("human_handoff")),
            Button(ctx.t("complaints.new_button"), payload("file_complaint")),
        ),
    )


def _describe_complaint(ctx: Context, c: Complaint) -> str:
    lines = [
        ctx.t(
            "complaints.item",
            complaint_id=c.complaint_id,
            category=_category_word(ctx, c.category),
            status=_status_word(ctx, c.status),
            created=fmt_date(c.created_at, ctx.lang, with_time=True),
        )
    ]
    if c.order_id:
        lines.append(ctx.t("complaints.item_order", order_id=c.order_id))
    if c.status == "answered" and c.result:
        lines.append(ctx.t("complaints.item_result", result=c.result))
    else:
        lines.extend(_sla_lines(ctx, c)[1:])
    return "\n".join(lines)


async def status(turn: Turn, ctx: Context) -> Reply:
    """complaint_status: one ticket by id, or the customer's recent complaints; escalation
    path and human handoff when asked."""
    text = "" if turn.message.text.startswith("/") else turn.message.text
    if text and _HUMAN.search(text):
        return [_offer_human(ctx)]
    escalate = (turn.nlu.first("escalate") or "").lower() == "true" or bool(
        text and _ESCALATE.search(text)
    )
    if not ctx.customer_id:
        return [escalation(ctx)] if escalate else [Outgoing(text=ctx.t("complaints.need_link"))]
    wanted = turn.nlu.first("complaint_id")
    if not wanted and text:
        m = COMPLAINT_ID.search(text)
        wanted = m.group(1) if m else None
    try:
        if wanted:
            try:
                found = [await ctx.backend.get_complaint(ctx.customer_id, wanted.upper())]
            except (NotFound, InvalidRequest):
                return [
                    Outgoing(
                        text=ctx.t("complaints.not_found", complaint_id=wanted.upper()),
                        buttons=(
                            Button(ctx.t("complaints.mine_button"), payload("complaint_status")),
                        ),
                    )
                ]
        else:
            found = list((await ctx.backend.list_complaints(ctx.customer_id)).items[:5])
    except PlatformError:
        return [Outgoing(text=ctx.t("complaints.unavailable"))]
    if escalate:
        return [escalation(ctx)]
    if not found:
        return [
            Outgoing(
                text=ctx.t("complaints.none"),
                buttons=(Button(ctx.t("complaints.new_button"), payload("file_complaint")),),
            )
        ]
    header = (
        ctx.t("complaints.one_header")
        if wanted
        else ctx.t("complaints.list_header", count=len(found))
    )
    body = "\n\n".join(_describe_complaint(ctx, c) for c in found)
    btns: list[Button] = []
    answered = [c for c in found if c.status == "answered"]
    if answered:
        btns.append(
            Button(
                ctx.t("complaints.unsatisfied_button"),
                payload("complaint_status", complaint_id=answered[0].complaint_id, escalate=True),
            )
        )
    btns.append(Button(ctx.t("complaints.human_button"), payload("human_handoff")))
    return [Outgoing(text=header + "\n" + body, buttons=tuple(btns))]


# Our handler in front of the task (see ``file``); the task itself is unchanged.
ROUTES = (Route("file_complaint", "bot.handlers.complaints:file", needs_link=True),)
