"""Bare answers without the NLU: "5000", "两千", "5k", "全部", "短债", "改成两千", "make it 5000"."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.dialogue.types import Context

# A correction or answer may be wrapped in these words; the value must be all that is left.
_LEAD = re.compile(
    r"^(?:那就|那|就|还是|嗯|好|我要|我想|要|买|申购|赎回|卖|卖出|金额|数量|份额)?\s*"
    r"(?:改成|改为|换成|换为|变成|改|换|改一下|调整为|调成)?\s*",
)
_LEAD_EN = re.compile(
    r"^(?:actually|no|ok|okay|well|then|hmm)?[\s,]*(?:please\s+)?"
    r"(?:make\s+it|change\s+(?:it\s+)?to|switch\s+(?:it\s+)?to|instead|i\s+want|let'?s\s+do|do|buy|redeem|sell)?\s*",
    re.I,
)
_TAIL = re.compile(r"\s*(?:吧|啦|了|呢|吗|就好|就行|instead|please|then|thanks)?[\s!！.。]*$", re.I)

# Nobody buys or holds 10^12 of anything: larger "amounts" are typos or attacks, and a Decimal
# that big overflows its 28-digit context when money() formats it, wedging every later reply.
MAX_VALUE = Decimal("1e12")

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}

_NUMBER = re.compile(
    r"^(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+)\s*"
    r"(?P<mult>[千万kKwW]|thousand)?\s*(?P<unit>元|块钱|块|rmb|yuan|cny|份|shares?|units?)?$",
    re.I,
)
_ALL = re.compile(r"^(?:全部|全部赎回|都|全都|所有|全卖|全部卖出|all|all of it|everything|the lot|all shares)$", re.I)

# Words customers use for the sandbox catalog's products (codes and full names also match).
ALIASES: tuple[tuple[str, str], ...] = (
    ("MMF01", r"稳盈|货币|余额宝|money\s*market|mmf|steady"),
    ("BOND01", r"短债|债券|债基|安心|bond"),
    ("MIX01", r"混合|均衡|hybrid|balanced"),
    ("IDX300", r"沪深\s*300|沪深|指数|index|csi\s*300|idx\s*300"),
    ("QDII01", r"qdii|全球科技|科技|海外|global\s*tech|global"),
)

_LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Link codes: 8 characters without 0/O/1/I (never mistaken for a 6-digit one-time code).
LINK_CODE = re.compile(
    rf"^(?:(?P<prefix>绑定|綁定|link|/start)\s*[:：]?\s*)?(?P<code>[{_LINK_ALPHABET}]{{4}}-?[{_LINK_ALPHABET}]{{4}})$",
    re.I,
)


def link_code(text: str) -> str | None:
    """The link code in "绑定 7KQ4-M2XD" / "link 7kq4m2xd" / "7KQ4M2XD", normalised, or None."""
    m = LINK_CODE.match(text)
    if not m:
        return None
    code = m.group("code")
    bare = m.group("prefix") is None and "-" not in code
    # A bare 8-letter word ("balances") is not a code: bare codes need a digit or capitals.
    if bare and not (any(c.isdigit() for c in code) or code.isupper()):
        return None
    return code.replace("-", "").upper()


def strip_frame(text: str) -> str:
    """The value inside "改成两千吧" / "actually make it 5000"."""
    core = _LEAD.sub("", text.strip(), count=1)
    core = _LEAD_EN.sub("", core, count=1)
    return _TAIL.sub("", core).strip()


def cn_number(text: str) -> Decimal | None:
    """两千 → 2000, 一万五 → 15000, 三十 → 30, 五百 → 500 (whole numbers)."""
    if not text or any(c not in _CN_DIGITS and c not in _CN_UNITS for c in text):
        return None
    total = 0
    section = 0
    digit: int | None = None
    last_unit = 1
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
            continue
        unit = _CN_UNITS[ch]
        if unit == 10000:
            section = (section + (digit or 0)) * unit
            total += section
            section = 0
        else:
            section += (digit if digit is not None else 1) * unit
        last_unit = unit
        digit = None
    if digit is not None:
        # 一万五 = 15000, 两千五 = 2500: a trailing digit counts in the next lower unit.
        if last_unit >= 10 and len(text) >= 2 and text[-2] in _CN_UNITS:
            section += digit * (last_unit // 10 if last_unit != 10000 else 1000)
        else:
            section += digit
    return Decimal(total + section)


def parse_number(text: str) -> tuple[Decimal, str | None] | None:
    """A bare number with optional multiplier and unit → (value, "yuan" | "shares" | None)."""
    m = _NUMBER.match(strip_frame(text))
    if not m:
        return None
    raw = m.group("num").replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = cn_number(raw)  # type: ignore[assignment]
    if value is None:
        return None
    mult = (m.group("mult") or "").lower()
    if mult in ("千", "k", "thousand"):
        value *= 1000
    elif mult in ("万", "w"):
        value *= 10000
    if not Decimal(value).is_finite() or value >= MAX_VALUE:
        return None
    unit = (m.group("unit") or "").lower()
    kind = "shares" if unit.startswith(("份", "share", "unit")) else "yuan" if unit else None
    return value, kind


def parse_all(text: str) -> bool:
    return bool(_ALL.match(strip_frame(text)))


_HALF = re.compile(r"^(?:一半|半数|一半份额|卖一半|赎回一半|half|half of it|half of them|50%|百分之五十)$", re.I)


# "赎回安心短债的一半" / "sell half of my bond fund": half named inside a longer request
_HALF_IN = re.compile(r"一半|半仓|百分之五十|50\s*%|\bhalf\b(?!\s*(?:a\s+)?(?:year|month|day))", re.I)


def parse_half(text: str, *, loose: bool = False) -> bool:
    """ "一半" / "half": half of what the customer holds (the handler knows how much that is).

    ``loose``: anywhere in the message ("赎回一半安心短债"), not as its whole answer.
    """
    if _HALF.match(strip_frame(text)):
        return True
    return loose and bool(_HALF_IN.search(text))


async def catalog(ctx: Context) -> list[Any]:
    """The platform's products, asked once per turn."""
    cached = ctx.extras.get("_catalog")
    if cached is None:
        cached = await ctx.backend.list_products()
        ctx.extras["_catalog"] = cached
    return list(cached)


async def parse_product(text: str, ctx: Context, *, loose: bool = False) -> str | None:
    """A product named by code, name or a common word. ``loose``: anywhere in the text."""
    core = text.strip() if loose else strip_frame(text)
    if not core or len(core) > (60 if loose else 24) or _NUMBER.match(core):
        return None  # numbers are amounts or shares, never products (no catalog call needed)
    products = await catalog(ctx)
    codes: dict[str, str] = {str(p.code).upper(): str(p.code) for p in products}
    if core.upper() in codes:
        return codes[core.upper()]
    for p in products:
        for name in (p.name_zh, p.name_en):
            if name and (name.lower() == core.lower() or (loose and name.lower() in core.lower())):
                return str(p.code)
    for code, pattern in ALIASES:
        if code not in codes.values():
            continue
        if loose:
            if re.search(pattern, core, re.I):
                return code
        elif re.fullmatch(rf"(?:{pattern})(?:基金|产品|fund|product)?", core, re.I):
            return code
    return None


def cached_name(ctx: Context, code: str) -> str:
    """A product's name from this turn's catalog, or its code (for sync descriptions)."""
    for p in ctx.extras.get("_catalog") or ():
        if p.code == code:
            return str(p.name(ctx.lang))
    return code


def money_value(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        out = Decimal(str(value).replace(",", ""))
    except InvalidOperation:
        return None
    return out if out.is_finite() and 0 < out < MAX_VALUE else None
