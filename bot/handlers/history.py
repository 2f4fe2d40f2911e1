"""Transaction history: filters (period, product type, status), paging, CSV / PDF export."""

from __future__ import annotations

import asyncio
import calendar
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from backend_client.errors import PlatformError
from backend_client.models import Order, OrderPage, Product
from bot.dialogue import tasks
from bot.dialogue.tasks import Executed, Prepared, Slot, TaskDef, register_task
from bot.dialogue.types import Context, Reply, Turn, Understanding
from bot.export import ExportFontMissing, HistoryRow, find_cjk_font, render_csv, render_pdf
from bot.handlers.greet import payload
from bot.handlers.products import TYPES, type_from_text
from bot.handlers.track import status_word
from bot.locales import SHANGHAI, money, shares
from bot.locales import date as fmt_date
from bot.normalize import parse_period
from bot.security.stepup import ChallengeSpec
from bot.types import Button, Outgoing

__all__ = [
    "EXPORT_TASK",
    "PAGE_SIZE",
    "Filters",
    "handle",
    "resolve_period",
    "wants_export",
]

PAGE_SIZE = 5
# A statement larger than this is cut (and the customer told so): a 1,000-row PDF takes
# about 2 s of CPU here, which must stay inside the engine's time budget for one turn.
EXPORT_MAX_ROWS = 1000
STATUSES = ("submitted", "confirmed", "settled", "accepted", "processed", "arrived", "failed")
FORMATS = ("csv", "pdf")

_EXPORT = re.compile(
    r"导出|下载|export|download|statement|对账单|\bcsv\b|\bpdf\b|excel|表格|电子表", re.I
)
_PDF = re.compile(r"pdf", re.I)
_CSV = re.compile(r"csv|excel|xls|表格|电子表", re.I)
_REDEEM = re.compile(r"赎回|卖出|redeem|redemption|\bsold\b|\bsell", re.I)
_BUY = re.compile(r"申购|买入|购买|买的|subscri|purchase|bought|\bbuy", re.I)
_STATUS_WORDS: tuple[tuple[str, str], ...] = (
    ("failed", r"失败|failed|unsuccessful"),
    ("arrived", r"已到账|到账了|arrived"),
    ("settled", r"已结算|settled"),
    ("confirmed", r"已确认|confirmed"),
    ("submitted", r"已提交|submitted"),
    ("accepted", r"已受理|accepted"),
    ("processed", r"已处理|processed"),
)

# ------------------------------------------------------------------ periods

_CN_NUM = {
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
    "十一": 11,
    "十二": 12,
    "半": 0,
}
_EN_NUM = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "a": 1,
    "an": 1,
}
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _minus_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _CN_NUM.get(word, _EN_NUM.get(word.lower()))


def resolve_period(text: str, today: date) -> tuple[date, date] | None:
    """A period phrase (上个月, last month, 最近三个月, 2026年11月, last quarter ...) as an
    inclusive date range ending no later than ``today`` (the platform's date).

    The NLU area's ``bot.normalize.parse_period`` decides the phrases it knows (so the bot
    reads 上个月 one way everywhere); the rules below add what it leaves out: a phrase inside
    a longer message, quarters, 2026年10月, bare years, "recently"."""
    s = text.strip().lower()
    if not s:
        return None
    known = parse_period(text, today)
    if known is not None:
        start = known.start.astimezone(SHANGHAI).date()
        last = (known.end.astimezone(SHANGHAI) - timedelta(microseconds=1)).date()
        return start, min(last, today)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)\.\.(\d{4}-\d\d-\d\d)", s)
    if m:  # our own canonical form (buttons, task slots)
        try:
            start, end = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        except ValueError:
            return None
        return (start, end) if start <= end else None
    if re.search(r"今天|今日|\btoday\b", s):
        return today, today
    if re.search(r"昨天|昨日|yesterday", s):
        y = today - timedelta(days=1)
        return y, y
    # "最近三个月", "近7天", "past 30 days", "last 3 months", "最近半年", "最近一周"
    m = re.search(
        r"(?:最近|近|过去)\s*(\d+|[一两二三四五六七八九十半]+)\s*(?:个)?\s*(天|日|周|星期|礼拜|月|年)",
        s,
    )
    unit: str | None = None
    n: int | None = None
    if m:
        raw, unit = m.group(1), m.group(2)
        if raw == "半":
            n, unit = (6, "月") if unit == "年" else (15, "天") if unit == "月" else (None, unit)
        else:
            n = _number(raw)
    else:
        m = re.search(r"(?:last|past|previous|recent)\s+(\d+|[a-z]+)\s+(day|week|month|year)s?", s)
        if m:
            n, unit = _number(m.group(1)), m.group(2)
    if n and unit:
        if unit in ("天", "日", "day"):
            return today - timedelta(days=n - 1), today
        if unit in ("周", "星期", "礼拜", "week"):
            return today - timedelta(days=7 * n - 1), today
        # Same reading as bot.normalize: "3 months" back from today's date, both ends in.
        if unit in ("月", "month"):
            return _minus_months(today, n), today
        if unit in ("年", "year"):
            return _minus_months(today, 12 * n), today
    monday = today - timedelta(days=today.weekday())
    if re.search(r"上周|上个?星期|上个?礼拜|last week|previous week", s):
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if re.search(r"本周|这周|这个?星期|this week", s):
        return monday, today
    if re.search(r"上上个?月", s):
        first = _minus_months(today.replace(day=1), 2)
        return first, _month_end(first.year, first.month)
    if re.search(r"上个?月|last month|previous month", s):
        first = _minus_months(today.replace(day=1), 1)
        return first, _month_end(first.year, first.month)
    if re.search(r"本月|这个?月|当月|this month", s):
        return today.replace(day=1), today
    q = (today.month - 1) // 3
    if re.search(r"上个?季度|last quarter|previous quarter", s):
        first = _minus_months(date(today.year, q * 3 + 1, 1), 3)
        end = _minus_months(date(today.year, q * 3 + 1, 1), 0) - timedelta(days=1)
        return first, end
    if re.search(r"本季度|这个?季度|this quarter", s):
        return date(today.year, q * 3 + 1, 1), today
    if re.search(r"去年|last year|previous year", s):
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    if re.search(r"今年|本年|this year|year to date|ytd", s):
        return date(today.year, 1, 1), today
    # "2026年11月", "11月", "2026-11", "november 2026", "nov"
    m = re.search(r"(?:(20\d\d)\s*[年/-]\s*)?(1[0-2]|0?[1-9])\s*月", s) or re.search(
        r"(20\d\d)-(1[0-2]|0[1-9])(?!\d)", s
    )
    month_year: tuple[int | None, int] | None = None
    if m:
        month_year = (int(m.group(1)) if m.group(1) else None, int(m.group(2)))
    else:
        m = re.search(
            r"\b(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?\s*(20\d\d)?", s
        )
        if m and m.group(1) not in ("may",) or (m and m.group(2)):
            month_year = (int(m.group(2)) if m.group(2) else None, _MONTHS[m.group(1)])
    if month_year is not None:
        year, month = month_year
        if year is None:
            year = today.year if month <= today.month else today.year - 1
        end = min(_month_end(year, month), today)
        return date(year, month, 1), end
    # A bare year only as "2026年", "in 2026", or the whole phrase: amounts such as
    # "2000" and order ids (D2026...) must not read as years.
    m = (
        re.search(r"(?<![\dA-Za-z])(20\d\d)\s*年", s)
        or re.search(r"(?:in|of|for|during|year)\s+(20\d\d)\b", s)
        or re.fullmatch(r"\s*(20\d\d)\s*", s)
    )
    if m:
        year = int(m.group(1))
        return date(year, 1, 1), min(date(year, 12, 31), today)
    if re.search(r"最近|近期|recent|lately", s):
        return today - timedelta(days=29), today
    return None


# ------------------------------------------------------------------ filters


@dataclass(frozen=True, slots=True)
class Filters:
    """What the customer asked to see; JSON-able through ``as_json`` (payloads, task slots)."""

    period: str | None = None  # the customer's phrase, resolved against the platform's date
    product_type: str | None = None
    product: str | None = None
    status: str | None = None
    side: str | None = None

    def as_json(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("period", self.period),
                ("product_type", self.product_type),
                ("product", self.product),
                ("status", self.status),
                ("side", self.side),
            )
            if v
        }


def _is_payload(text: str) -> bool:
    return text.startswith("/")


def _first(nlu: Understanding, name: str) -> str | None:
    for e in nlu.entities:
        if e.entity == name and str(e.value).strip():
            return str(e.value).strip()
    return None


def filters_from(nlu: Understanding, today: date) -> Filters:
    """Filters from entities (payload or NLU), else from the customer's words. A period
    found only in free text is kept as its resolved range ("2026-10-01..2026-10-31"), so
    buttons carry dates, not the customer's whole message."""
    text = "" if _is_payload(nlu.text) else nlu.text
    period = _first(nlu, "period")
    if period is None and text:
        found = resolve_period(text, today)
        if found is not None:
            period = f"{found[0].isoformat()}..{found[1].isoformat()}"
    ptype = _first(nlu, "product_type")
    if ptype not in TYPES:
        ptype = None
        if text:
            ptype = type_from_text(text)
    product = _first(nlu, "product")
    product = product.upper() if product else None
    if product:
        ptype = None  # the product implies its type; both would only narrow identically
    status = _first(nlu, "status")
    if status not in STATUSES:
        status = None
        for value, pattern in _STATUS_WORDS:
            if text and re.search(pattern, text, re.I):
                status = value
                break
    side = _first(nlu, "side")
    if side not in ("subscribe", "redeem"):
        side = None
        if text and _REDEEM.search(text):
            side = "redeem"
        elif text and _BUY.search(text):
            side = "subscribe"
    if status == "arrived" and side == "subscribe":
        status = "settled"  # a purchase's last step is 已到账 = settled
    return Filters(period=period, product_type=ptype, product=product, status=status, side=side)


def wants_export(nlu: Understanding) -> bool:
    return bool(_first(nlu, "format")) or (
        not _is_payload(nlu.text) and bool(_EXPORT.search(nlu.text))
    )


def wanted_format(nlu: Understanding) -> str | None:
    value = (_first(nlu, "format") or "").lower()
    if value in FORMATS:
        return value
    if value in ("excel", "xlsx", "xls"):
        return "csv"
    if _is_payload(nlu.text):
        return None
    if _PDF.search(nlu.text):
        return "pdf"
    if _CSV.search(nlu.text):
        return "csv"
    return None


async def _range(ctx: Context, f: Filters) -> tuple[date, date] | None:
    if not f.period:
        return None
    today = (await ctx.now()).date()
    return resolve_period(f.period, today)


def _range_label(ctx: Context, rng: tuple[date, date] | None) -> str:
    if rng is None:
        return ctx.t("history.all_time")
    a, b = rng
    return ctx.t("history.range", start=_d(ctx, a), end=_d(ctx, b))


def _d(ctx: Context, d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if ctx.lang == "zh" else d.isoformat()


def _filter_label(ctx: Context, f: Filters, rng: tuple[date, date] | None) -> str:
    parts = [_range_label(ctx, rng)]
    if f.product_type:
        parts.append(ctx.t(f"products.type.{f.product_type}"))
    if f.product:
        parts.append(f.product)
    if f.side:
        parts.append(ctx.t(f"history.side.{f.side}"))
    if f.status:
        parts.append(status_word(ctx, f.status))
    return ctx.t("history.filter_sep").join(parts)


async def _page(
    ctx: Context, f: Filters, rng: tuple[date, date] | None, page: int, size: int
) -> OrderPage:
    if ctx.customer_id is None:  # callers check the link first
        raise PlatformError("not_linked")
    return await ctx.backend.list_orders(
        ctx.customer_id,
        date_from=rng[0] if rng else None,
        date_to=rng[1] if rng else None,
        product_type=f.product_type,
        product=f.product,
        status=f.status,
        side=f.side,
        page=page,
        page_size=size,
    )


async def _names(ctx: Context) -> dict[str, Product]:
    try:
        return {p.code: p for p in await ctx.backend.list_products()}
    except PlatformError:
        return {}


def _row_line(ctx: Context, o: Order, products: dict[str, Product]) -> str:
    p = products.get(o.product)
    name = p.name(ctx.lang) if p else o.product
    if o.side == "redeem":
        what = ctx.t(
            "history.line_redeem_what", shares=shares(o.shares) if o.shares is not None else "-"
        )
    else:
        what = money(o.amount, ctx.lang) if o.amount is not None else "-"
    return ctx.t(
        "history.line",
        at=fmt_date(o.created_at, ctx.lang, with_time=True),
        side=ctx.t(f"history.side.{o.side}"),
        product=name,
        what=what,
        status=status_word(ctx, o.status),
        order_id=o.order_id,
    )


def _export_buttons(ctx: Context, f: Filters) -> tuple[Button, ...]:
    return (
        Button(ctx.t("history.export_csv"), payload("export_history", format="csv", **f.as_json())),
        Button(ctx.t("history.export_pdf"), payload("export_history", format="pdf", **f.as_json())),
    )


async def handle(turn: Turn, ctx: Context) -> Reply:
    """transaction_history: a filtered page of orders; export requests start the export task."""
    if not ctx.customer_id:
        return [Outgoing(text=ctx.t("history.need_link"))]
    if wants_export(turn.nlu):
        return await tasks.start(EXPORT_TASK, turn, ctx)
    page_raw = _first(turn.nlu, "page") or "1"
    page = min(int(page_raw), 10_000) if page_raw.isdigit() and int(page_raw) > 0 else 1
    try:
        f = filters_from(turn.nlu, (await ctx.now()).date())
        rng = await _range(ctx, f)
        result = await _page(ctx, f, rng, page, PAGE_SIZE)
        products = await _names(ctx)
    except PlatformError:
        return [Outgoing(text=ctx.t("history.unavailable"))]
    label = _filter_label(ctx, f, rng)
    if f.period and rng is None:
        label = ctx.t("history.period_not_understood", period=f.period) + "\n" + label
    if result.total == 0:
        return [
            Outgoing(
                text=ctx.t("history.empty", filters=label),
                buttons=(Button(ctx.t("history.all_button"), payload("transaction_history")),),
            )
        ]
    pages = (result.total + PAGE_SIZE - 1) // PAGE_SIZE
    lines = [ctx.t("history.header", filters=label, total=result.total, page=page, pages=pages)]
    lines += [_row_line(ctx, o, products) for o in result.items]
    if not result.items:
        lines.append(ctx.t("history.no_more"))
    btns: list[Button] = []
    if page < pages:
        btns.append(
            Button(
                ctx.t("history.more", page=page + 1, pages=pages),
                payload("transaction_history", page=str(page + 1), **f.as_json()),
            )
        )
    btns.extend(_export_buttons(ctx, f))
    lines.append(ctx.t("history.track_hint"))
    return [Outgoing(text="\n".join(lines), buttons=tuple(btns))]


# ------------------------------------------------------------------ export task


def _slot_filter(name: str) -> Callable[[Understanding, Context, dict[str, Any]], Awaitable[Any]]:
    async def extract(nlu: Understanding, ctx: Context, slots: dict[str, Any]) -> Any | None:
        if name != "period" and nlu.intent == "inform" and not nlu.entities:
            # The engine offers every bare message to the task first; a question asked at
            # the summary ("赎回多久到账") must not turn into a side or status filter.
            return None
        return getattr(filters_from(nlu, (await ctx.now()).date()), name)

    return extract


async def _extract_format(nlu: Understanding, ctx: Context, slots: dict[str, Any]) -> Any | None:
    return wanted_format(nlu)


async def _ask_format(ctx: Context, slots: dict[str, Any]) -> Reply:
    f = Filters(
        **{k: slots.get(k) for k in ("period", "product_type", "product", "status", "side")}
    )
    return [
        Outgoing(
            text=ctx.t("history.ask_format"),
            buttons=(
                Button("CSV (Excel)", payload("export_history", format="csv", **f.as_json())),
                Button("PDF", payload("export_history", format="pdf", **f.as_json())),
            ),
        )
    ]


async def _ask_nothing(ctx: Context, slots: dict[str, Any]) -> Reply:
    return []


def _filters_of(slots: dict[str, Any]) -> Filters:
    return Filters(
        **{k: slots.get(k) for k in ("period", "product_type", "product", "status", "side")}
    )


async def _prepare_export(ctx: Context, slots: dict[str, Any]) -> Prepared:
    fmt = str(slots.get("format"))
    if fmt == "pdf":
        try:
            find_cjk_font()
        except ExportFontMissing:
            f = _filters_of(slots)
            return Prepared(
                ok=False,
                reply=[
                    Outgoing(
                        text=ctx.t("history.pdf_unavailable"),
                        buttons=(
                            Button(
                                ctx.t("history.export_csv"),
                                payload("export_history", format="csv", **f.as_json()),
                            ),
                        ),
                    )
                ],
            )
    f = _filters_of(slots)
    rng = await _range(ctx, f)
    first = await _page(ctx, f, rng, 1, 1)
    label = _filter_label(ctx, f, rng)
    if first.total == 0:
        return Prepared(ok=False, reply=[Outgoing(text=ctx.t("history.empty", filters=label))])
    count = min(first.total, EXPORT_MAX_ROWS)
    text = ctx.t("history.export_summary", filters=label, count=count, format=fmt.upper())
    if first.total > EXPORT_MAX_ROWS:
        text += "\n" + ctx.t("history.export_capped", limit=EXPORT_MAX_ROWS)
    return Prepared(
        reply=[Outgoing(text=text)],
        data={
            "format": fmt,
            "count": count,
            "from": rng[0].isoformat() if rng else None,
            "to": rng[1].isoformat() if rng else None,
        },
        challenge=ChallengeSpec(
            action="export_history", label=ctx.t("history.export_label", format=fmt.upper())
        ),
    )


async def _execute_export(
    ctx: Context, slots: dict[str, Any], data: dict[str, Any], key: str, proof: dict[str, Any]
) -> Executed:
    f = _filters_of(slots)
    # The range fixed at the summary, so the file holds what the customer confirmed.
    rng = (
        (date.fromisoformat(data["from"]), date.fromisoformat(data["to"]))
        if data.get("from") and data.get("to")
        else None
    )
    orders: list[Order] = []
    page = 1
    while len(orders) < EXPORT_MAX_ROWS:
        chunk = await _page(ctx, f, rng, page, 100)
        orders.extend(chunk.items)
        if not chunk.items or page * chunk.page_size >= chunk.total:
            break
        page += 1
    orders = orders[:EXPORT_MAX_ROWS]
    products = await _names(ctx)
    rows = [
        HistoryRow(
            order_id=o.order_id,
            created_at=o.created_at,
            product=o.product,
            product_name=products[o.product].name(ctx.lang) if o.product in products else o.product,
            side=o.side,
            status=o.status,
            amount=o.amount,
            shares=o.shares,
        )
        for o in orders
    ]
    now = await ctx.now()
    fmt = str(data.get("format") or slots.get("format"))
    label = _range_label(ctx, rng)
    try:
        # Rendering is CPU work: a worker thread keeps the event loop answering other chats.
        if fmt == "pdf":
            attachment = await asyncio.to_thread(render_pdf, rows, ctx.lang, now, label)
        else:
            attachment = await asyncio.to_thread(render_csv, rows, ctx.lang, now)
    except ExportFontMissing:
        return Executed(
            reply=[
                Outgoing(
                    text=ctx.t("history.pdf_unavailable"),
                    buttons=(
                        Button(
                            ctx.t("history.export_csv"),
                            payload("export_history", format="csv", **f.as_json()),
                        ),
                    ),
                )
            ],
            result={"format": fmt, "rows": 0, "error": "font_missing"},
        )
    return Executed(
        reply=[
            Outgoing(
                text=ctx.t("history.export_ready", count=len(rows), format=fmt.upper()),
                attachment=attachment,
            )
        ],
        result={"format": fmt, "rows": len(rows)},
    )


def _describe_export(ctx: Context, slots: dict[str, Any]) -> str:
    fmt = str(slots.get("format") or "").upper()
    return ctx.t("history.export_describe", format=fmt or "CSV/PDF")


def _optional(_slots: dict[str, Any]) -> bool:
    return False


EXPORT_TASK = TaskDef(
    name="export_history",
    slots=(
        Slot("format", _extract_format, _ask_format),
        Slot("period", _slot_filter("period"), _ask_nothing, required=_optional),
        Slot("product_type", _slot_filter("product_type"), _ask_nothing, required=_optional),
        Slot("product", _slot_filter("product"), _ask_nothing, required=_optional),
        Slot("status", _slot_filter("status"), _ask_nothing, required=_optional),
        Slot("side", _slot_filter("side"), _ask_nothing, required=_optional),
    ),
    prepare=_prepare_export,
    execute=_execute_export,
    describe=_describe_export,
    needs_link=True,
    confirm=True,
    audit_kind="export",
)

TASKS = (EXPORT_TASK,)
# Our handlers start this task themselves, so it must resolve even before the registry
# has merged the plugins (registering twice is harmless).
register_task(EXPORT_TASK)
