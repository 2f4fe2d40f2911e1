"""Supervisor dashboard: service metrics over a period, server-drawn SVG charts, CSV export."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import DB, SETTINGS
from bot.handoff import auth
from bot.handoff.console import _error, _page_headers, _token
from bot.metrics import NLU_FALLBACKS, TURNS
from bot.security import audit
from bot.settings import Settings
from bot.store import handoff as store
from bot.store.db import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 366

routes = web.RouteTableDef()


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days in Asia/Shanghai, ``first`` to ``last`` inclusive."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), SHANGHAI)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), SHANGHAI)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @classmethod
    def parse(cls, query: Any, now: datetime) -> Period:
        today = now.astimezone(SHANGHAI).date()
        try:
            last = date.fromisoformat(query["to"]) if query.get("to") else today
            first = date.fromisoformat(query["from"]) if query.get("from") else last - timedelta(days=6)
        except ValueError:
            raise PeriodError("dates must be YYYY-MM-DD") from None
        if first > last:
            raise PeriodError("from is after to")
        if (last - first).days >= MAX_DAYS:
            raise PeriodError(f"at most {MAX_DAYS} days")
        return cls(first, last)


@dataclass(slots=True)
class Metrics:
    period: Period
    conversations: int = 0
    customer_turns: int = 0
    handed_off: int = 0  # conversations with at least one ticket
    tickets: list[store.Ticket] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)
    waits_s: list[float] = field(default_factory=list)
    handles_s: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    sla_breaches: list[int] = field(default_factory=list)  # ticket ids
    per_day: dict[date, int] = field(default_factory=dict)
    # Per-period intents when transcripts record them, else this process's counters.
    intents_source: str = "process"
    process_turns: float = 0.0
    process_fallbacks: float = 0.0
    process_intents: Counter[str] = field(default_factory=Counter)

    @property
    def containment_rate(self) -> float | None:
        if not self.conversations:
            return None
        return max(0.0, (self.conversations - self.handed_off) / self.conversations)

    @property
    def handoff_rate(self) -> float | None:
        if not self.conversations:
            return None
        return min(1.0, self.handed_off / self.conversations)

    @property
    def csat(self) -> float | None:
        """Share of ratings that are 4 or 5 (the usual CSAT definition)."""
        if not self.ratings:
            return None
        return sum(1 for r in self.ratings if r >= 4) / len(self.ratings)

    @property
    def avg_rating(self) -> float | None:
        return statistics.fmean(self.ratings) if self.ratings else None

    @property
    def fallback_rate(self) -> float | None:
        return self.process_fallbacks / self.process_turns if self.process_turns else None


def _counter_values(counter: Any) -> list[tuple[dict[str, str], float]]:
    out = []
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out.append((dict(sample.labels), float(sample.value)))
    return out


def sla_breached(t: store.Ticket, settings: Settings, now: datetime) -> bool:
    """A complaint ticket whose first human answer came (or is still missing) after the limit."""
    if t.reason != "complaint":
        return False
    limit = timedelta(hours=settings.complaint_first_response_h)
    answered = t.first_reply_at or (t.closed_at if t.state == store.RESOLVED else None)
    return ((answered or now) - t.created_at) > limit


async def compute(db: Any, settings: Settings, period: Period, now: datetime | None = None) -> Metrics:
    now = now or utcnow()
    m = Metrics(period=period)
    # Bounds in UTC: SQLite compares timestamps as text, and we store UTC.
    start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
    async with db.begin() as s:
        m.tickets = await store.tickets_between(s, start, end)
        m.conversations, m.customer_turns = await store.conversation_counts(s, start, end)
        per_intent = await store.intent_counts(s, start, end)
    handed = {t.conversation_id for t in m.tickets}
    m.handed_off = len(handed)
    # Conversations that only an agent started (takeover) still count as conversations.
    m.conversations = max(m.conversations, m.handed_off)
    m.per_day = {d: 0 for d in period.days()}
    for t in m.tickets:
        m.reasons[t.reason] += 1
        if t.intent:
            m.intents[t.intent] += 1
        day = t.created_at.astimezone(SHANGHAI).date()
        if day in m.per_day:
            m.per_day[day] += 1
        if t.assigned_at:
            m.waits_s.append((t.assigned_at - t.created_at).total_seconds())
        if t.assigned_at and t.closed_at and t.state == store.RESOLVED:
            m.handles_s.append((t.closed_at - t.assigned_at).total_seconds())
        if t.rating is not None:
            m.ratings.append(t.rating)
        if sla_breached(t, settings, now):
            m.sla_breaches.append(t.id)
    if per_intent is not None:
        m.intents_source = "period"
        m.process_intents = Counter(per_intent)
        m.process_turns = float(sum(per_intent.values()))
        m.process_fallbacks = float(per_intent.get("nlu_fallback", 0))
        return m
    for labels, value in _counter_values(TURNS):
        m.process_turns += value
        m.process_intents[labels.get("intent", "?")] += int(value)
    for _, value in _counter_values(NLU_FALLBACKS):
        m.process_fallbacks += value
    return m


# ---------------------------------------------------------------- SVG


def bar_chart(title: str, items: list[tuple[str, float]], *, width: int = 420, fmt: str = "{:g}") -> str:
    """A horizontal bar chart as inline SVG (no scripts, no external assets)."""
    row, label_w, pad = 22, 140, 8
    height = pad * 2 + 20 + row * max(1, len(items))
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="{pad}" y="{pad + 12}" class="chart-title">{escape(title)}</text>',
    ]
    if not items:
        parts.append(f'<text x="{pad}" y="{pad + 38}" class="chart-empty">—</text>')
    for i, (label, value) in enumerate(items):
        y = pad + 20 + i * row
        w = (width - label_w - 60) * (value / top)
        parts.append(f'<text x="{pad}" y="{y + 15}" class="chart-label">{escape(label[:22])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" class="bar"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" class="chart-value">{escape(fmt.format(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(title: str, items: list[tuple[str, float]], *, width: int = 860, height: int = 200) -> str:
    """Vertical columns (tickets per day)."""
    pad, bottom = 24, 34
    n = max(1, len(items))
    top = max((v for _, v in items), default=0) or 1
    slot = (width - 2 * pad) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="{pad}" y="16" class="chart-title">{escape(title)}</text>',
        f'<line x1="{pad}" y1="{height - bottom}" x2="{width - pad}" y2="{height - bottom}" class="axis"/>',
    ]
    usable = height - bottom - 30
    for i, (label, value) in enumerate(items):
        h = usable * (value / top)
        x = pad + i * slot + slot * 0.15
        y = height - bottom - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" class="bar"/>')
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" class="chart-value" text-anchor="middle">{value:g}</text>')
        if n <= 16 or i % max(1, n // 12) == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" class="chart-label" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- HTML and CSV


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _dur(values: list[float]) -> str:
    if not values:
        return "—"
    p50 = statistics.median(values)
    p90 = sorted(values)[max(0, int(len(values) * 0.9 + 0.5) - 1)]
    return f"p50 {_fmt_s(p50)} · p90 {_fmt_s(p90)}"


def _fmt_s(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _source(m: Metrics) -> str:
    return "in the period" if m.intents_source == "period" else "since process start"


def render(m: Metrics, username: str) -> str:
    p = m.period
    cards = [
        ("Containment", _pct(m.containment_rate), f"{m.conversations - m.handed_off} of {m.conversations} conversations without a human"),
        ("Handoff rate", _pct(m.handoff_rate), f"{m.handed_off} conversations, {len(m.tickets)} tickets"),
        ("Waiting time", _dur(m.waits_s), f"{len(m.waits_s)} claimed"),
        ("Handling time", _dur(m.handles_s), f"{len(m.handles_s)} resolved"),
        ("CSAT", _pct(m.csat), f"avg {m.avg_rating:.2f} / 5 from {len(m.ratings)} ratings" if m.ratings else "no ratings"),
        ("NLU fallback", _pct(m.fallback_rate), f"{int(m.process_fallbacks)} of {int(m.process_turns)} turns {_source(m)}"),
        ("Complaint SLA breaches", str(len(m.sla_breaches)), "first answer later than the limit"),
    ]
    card_html = "".join(
        f'<div class="card" data-metric="{escape(k.lower().replace(" ", "_"))}"><div class="k">{escape(k)}</div>'
        f'<div class="v">{escape(v)}</div><div class="n">{escape(n)}</div></div>'
        for k, v, n in cards
    )
    ratings = Counter(m.ratings)
    charts = [
        column_chart("Tickets per day", [(d.strftime("%m-%d"), float(c)) for d, c in m.per_day.items()]),
        bar_chart("Handoff reasons", [(k, float(v)) for k, v in m.reasons.most_common()]),
        bar_chart("Ratings (1–5)", [(str(n), float(ratings.get(n, 0))) for n in range(1, 6)]),
        bar_chart("Intents at handoff", [(k, float(v)) for k, v in m.intents.most_common(8)]),
        bar_chart(f"Top intents ({_source(m)})", [(k, float(v)) for k, v in m.process_intents.most_common(8)]),
    ]
    breaches = ", ".join(f"#{i}" for i in m.sla_breaches[:50]) or "none"
    q = f"from={p.first.isoformat()}&amp;to={p.last.isoformat()}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>finbot · supervisor dashboard</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/agent/static/console.css"></head>
<body class="dashboard"><header><h1>Supervisor dashboard</h1><nav><a href="/agent">Console</a>
<span class="who">{escape(username)}</span></nav></header>
<form class="period" method="get" action="/agent/dashboard">
<label>From <input type="date" name="from" value="{p.first.isoformat()}"></label>
<label>To <input type="date" name="to" value="{p.last.isoformat()}"></label>
<button type="submit">Apply</button>
<a class="csv" href="/agent/dashboard.csv?{q}">Export CSV</a></form>
<p class="period-label">Period {p.first.isoformat()} – {p.last.isoformat()} (Asia/Shanghai)</p>
<section class="cards">{card_html}</section>
<section class="charts">{''.join(charts)}</section>
<p class="breaches">Complaint tickets past the first-response limit: {escape(breaches)}</p>
</body></html>"""


_FORMULA = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    if text and (text[0] in _FORMULA):
        return "'" + text
    return text


def to_csv(m: Metrics, settings: Settings, now: datetime) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["ticket", "created_at", "channel", "lang", "reason", "intent", "state", "agent", "wait_s", "handle_s", "rating", "sla_breached"])
    for t in m.tickets:
        wait = (t.assigned_at - t.created_at).total_seconds() if t.assigned_at else ""
        handle = (t.closed_at - t.assigned_at).total_seconds() if t.assigned_at and t.closed_at else ""
        w.writerow(
            [safe_cell(v) for v in (
                t.id, t.created_at.astimezone(SHANGHAI).isoformat(), t.channel, t.lang, t.reason, t.intent or "",
                t.state, t.agent or "", f"{wait:.0f}" if wait != "" else "", f"{handle:.0f}" if handle != "" else "",
                t.rating if t.rating is not None else "", "yes" if sla_breached(t, settings, now) else "no",
            )]
        )
    return buf.getvalue()


async def _supervisor(request: web.Request, *, page: bool) -> store.Agent | web.StreamResponse:
    agent = await auth.session_agent(request.app[DB], _token(request))
    if agent is None:
        if page:
            raise web.HTTPFound("/agent/login")
        return _error(401, "login_required")
    if agent.role != "supervisor":
        return _error(403, "supervisors_only")
    return agent


async def _supervisor_period(request: web.Request, *, page: bool) -> web.StreamResponse | tuple[store.Agent, Period]:
    """The logged-in supervisor and the asked period, or the refusal to send instead."""
    agent = await _supervisor(request, page=page)
    if not isinstance(agent, store.Agent):
        return agent
    try:
        return agent, Period.parse(request.query, utcnow())
    except PeriodError as exc:
        return _error(400, "bad_period", detail=str(exc))


@routes.get("/agent/dashboard")
async def dashboard(request: web.Request) -> web.StreamResponse:
    """Supervisors only: the metrics page for ``?from=YYYY-MM-DD&to=YYYY-MM-DD``."""
    asked = await _supervisor_period(request, page=True)
    if isinstance(asked, web.StreamResponse):
        return asked
    agent, period = asked
    m = await compute(request.app[DB], request.app[SETTINGS], period)
    resp = web.Response(text=render(m, agent.username), content_type="text/html")
    _page_headers(resp)
    return resp


@routes.get("/agent/dashboard.csv")
async def dashboard_csv(request: web.Request) -> web.StreamResponse:
    """Supervisors only: one row per ticket of the period (formula-injection safe)."""
    asked = await _supervisor_period(request, page=False)
    if isinstance(asked, web.StreamResponse):
        return asked
    agent, period = asked
    now = utcnow()
    settings = request.app[SETTINGS]
    m = await compute(request.app[DB], settings, period, now)
    async with request.app[DB].begin() as s:
        await audit.record(
            s, "export", actor=f"agent:{agent.username}", subject=None,
            details={"what": "handoff_dashboard", "from": period.first.isoformat(), "to": period.last.isoformat(), "rows": len(m.tickets)},
        )
    resp = web.Response(
        text=to_csv(m, settings, now), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="handoff_{period.first}_{period.last}.csv"'},
    )
    return resp
