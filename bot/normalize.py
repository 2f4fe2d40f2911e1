"""Pure normalisation of entity text: amounts, shares, periods, products, risk levels, types."""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

SHANGHAI = ZoneInfo("Asia/Shanghai")
SYNONYMS_FILE = Path(__file__).resolve().parent.parent / "nlu" / "data" / "shared" / "synonyms.yml"
PRODUCT_CODES = ("MMF01", "BOND01", "MIX01", "IDX300", "QDII01")

__all__ = [
    "PRODUCT_CODES",
    "Period",
    "find_amounts",
    "find_products",
    "find_shares",
    "format_decimal",
    "names_non_positive_amount",
    "normalise_entity",
    "parse_amount",
    "parse_chinese_number",
    "parse_period",
    "parse_shares",
    "product_code",
    "product_type",
    "risk_level",
    "share_fraction",
]

# --------------------------------------------------------------------------- numbers

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "幺": 1, "二": 2, "贰": 2, "两": 2, "俩": 2, "三": 3,
    "叁": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8,
    "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000}
_NUM_CHARS = "".join(_CN_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS) + "半"
_ARABIC = re.compile(r"\d+(?:\.\d+)?")


def parse_chinese_number(text: str) -> Decimal | None:
    """Chinese or mixed numerals to a Decimal: 一万五 15000, 2千5 2500, 1.5万 15000, 十万."""
    s = text.strip()
    if not s:
        return None
    total = Decimal(0)  # completed 万/亿 sections
    section = Decimal(0)  # value below the current big unit
    number: Decimal | None = None  # the pending digit(s)
    last_unit = 0  # the unit just applied (for 一万五 = 一万 + 五千)
    after_zero = False
    i = 0
    while i < len(s):
        ch = s[i]
        m = _ARABIC.match(s, i)
        if m:
            if number is not None:
                return None  # two numbers in a row: "5 3"
            number = Decimal(m.group())
            i = m.end()
            continue
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
            if digit == 0:
                after_zero = True
                last_unit = 0
            elif number is not None:
                return None  # "五五" is not a number we understand
            else:
                number = Decimal(digit)
        elif ch == "半":
            if number is not None:
                return None
            if last_unit:  # 一万半 = 一万五千
                number = Decimal(5)
            else:  # 半万 = 0.5 万
                number = Decimal("0.5")
        elif ch in _SMALL_UNITS:
            unit = _SMALL_UNITS[ch]
            if number is None:
                if unit != 10:
                    return None  # "千" alone
                number = Decimal(1)  # 十万, 十五
            section += number * unit
            number = None
            last_unit = unit
        elif ch in _BIG_UNITS:
            unit = _BIG_UNITS[ch]
            if number is not None:
                section += number
            if section == 0 and total == 0:
                return None
            if unit > 10_000:
                total = (total + section) * unit
            else:
                total += section * unit
            section = Decimal(0)
            number = None
            last_unit = unit
        else:
            return None
        if ch not in "零〇":
            after_zero = after_zero and ch in _CN_DIGITS
        i += 1
    if number is not None:
        if (
            last_unit >= 10
            and not after_zero
            and number == number.to_integral_value()
            and number < 10
        ):
            # a bare digit after a unit means the next unit down: 一万五, 2千5, 两百五
            section += number * (last_unit // 10)
        else:
            section += number
    value = total + section
    return value if value > 0 else None


_CURRENCY_PREFIX = re.compile(r"^(?:[¥￥$]|rmb|cny|人民币)\s*", re.I)
_CURRENCY_SUFFIX = re.compile(
    r"\s*(?:块钱|块|元整|元|圆|rmb|cny|yuan|块人民币|人民币|bucks?|dollars?)$", re.I
)
_FILLER = re.compile(
    r"^(?:大概|大约|约|差不多|就|先|总共|一共|about|around|approx\.?)\s*|\s*(?:左右|整)$", re.I
)
_EN_NUMBERS = {
    "zero": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_EN_SCALES = {"hundred": 100, "thousand": 1000, "grand": 1000, "k": 1000, "million": 1_000_000}
_LATIN_SCALE = {"k": 1000, "w": 10_000, "m": 1_000_000}


def _parse_english(words: str) -> Decimal | None:
    tokens = [t for t in re.split(r"[\s-]+", words.lower().replace(" and ", " ")) if t]
    if not tokens:
        return None
    total, current, seen = Decimal(0), Decimal(0), False
    for tok in tokens:
        if _ARABIC.fullmatch(tok):
            current += Decimal(tok)
            seen = True
        elif tok in _EN_NUMBERS:
            current += _EN_NUMBERS[tok]
            seen = True
        elif tok in _EN_SCALES:
            scale = _EN_SCALES[tok]
            current = (current or Decimal(1)) * scale
            if scale >= 1000:
                total += current
                current = Decimal(0)
            seen = True
        else:
            return None
    value = total + current
    return value if seen and value > 0 else None


def parse_amount(text: str | None) -> Decimal | None:
    """An amount in yuan from entity text ("一万五", "¥5,000", "5k", "1.5万"); None if unclear."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip()
    if re.match(r"[-−负]", s):  # a negative amount is a mistake to ask about, never its absolute value
        return None
    for _ in range(2):  # "大概 ¥5000 元左右"
        s = _FILLER.sub("", s).strip()
        s = _CURRENCY_PREFIX.sub("", s)
        s = _CURRENCY_SUFFIX.sub("", s).strip()
    if not s:
        return None
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    try:
        if re.fullmatch(r"\d+(?:\.\d+)?", s):
            value: Decimal | None = Decimal(s)
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKwWmM])(\d?)", s):
            scale = _LATIN_SCALE[m.group(2).lower()]
            value = Decimal(m.group(1)) * scale
            if m.group(3):  # 1w5 = 15000, 2k5 = 2500
                value += Decimal(m.group(3)) * (scale // 10)
        elif all(ch in _NUM_CHARS or ch.isdigit() or ch == "." for ch in s):
            value = parse_chinese_number(s)
        else:
            value = _parse_english(s)
    except InvalidOperation:
        return None
    if value is None or value <= 0 or value >= Decimal("1e15"):  # beyond that quantize overflows
        return None
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))  # 1.5万 → 15000, not 15000.0
    # yuan have two decimal places; more is a typo we do not guess at
    if value.as_tuple().exponent < -2 and value != value.quantize(Decimal("0.01")):  # type: ignore[operator]
        return None
    return value


def format_decimal(value: Decimal) -> str:
    """Decimal as the wire string: 15000, 5000.50 (no exponent, no float)."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize() if value.as_tuple().exponent < -2 else value, "f")  # type: ignore[operator]


def parse_shares(text: str | None) -> Decimal | None:
    """Share count from entity text ("1000", "五百", "1,000 units"); None if unclear."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip()
    s = re.sub(r"\s*(?:份额|份|units?|shares?)$", "", s, flags=re.I).strip()
    return parse_amount(s)


def share_fraction(text: str | None) -> Decimal | None:
    """Part of a holding: 全部/all → 1, 一半/half → 0.5."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    if s in {
        "全部",
        "所有",
        "全都",
        "都",
        "清仓",
        "全仓",
        "全部份额",
        "all",
        "everything",
        "true",
        "all of it",
    }:
        return Decimal(1)
    if s in {"一半", "半", "半仓", "half", "a half", "half of it"}:
        return Decimal("0.5")
    return None


# --------------------------------------------------------------------------- free text


_CN_RUN = f"[{_NUM_CHARS}]+"
_AMOUNT_IN_TEXT = re.compile(
    r"(?P<prefix>[¥￥$]\s*)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:\s*[kKwW](?![A-Za-z])\d?|[万千百]\d?(?:[万千百])?)?"
    f"|{_CN_RUN})"
    r"(?P<suffix>\s*(?:块钱|块|元|rmb|cny|yuan|bucks)(?![A-Za-z]))?",
    re.I,
)
_AMOUNT_CUE = re.compile(
    r"(买|购|投|申购|认购|定投|加仓|补仓|追加|赎回?|卖|取|提|转出|金额|花|存|buy|invest|put|redeem|sell|withdraw|take out|cash out)\s*(了|个|点|入|出|掉)?\s*$",
    re.I,
)
# A money verb anywhere in the message ("the 10000 i redeemed", "top up ... with 500").
_AMOUNT_CUE_ANYWHERE = re.compile(
    r"买|申购|认购|定投|投资|投了|赎回|赎了|卖|取出|提现|转出|充值|扣了|扣款|扣费|扣钱|花了|"
    r"\b(buy|bought|invest(ed)?|top(ped)? up|redeem(ed)?|sell|sold|withdr[ae]wn?|deposit(ed)?|"
    r"cash(ed)? out|transfer(red)?|took|taken|charged|deducted|debited|paid|spent)\b",
    re.I,
)
_NOT_AMOUNT_AFTER = re.compile(
    r"^\s*(份|个|天|日|号|月|年|周|点|小时|分钟|次|笔|位|%|％|units?\b|shares?\b|days?\b|months?\b|years?\b|weeks?\b|hours?\b|times?\b)",
    re.I,
)


# "where did my 5000 go": a number owned by the customer is money.
_MY_BEFORE = re.compile(r"(\bmy|我的)\s*$", re.I)
# Chat filler around a bare answer ("5000 pls", "888 lol", "嗯 3000吧").
_EDGE_FILLER = re.compile(
    r"^(?:ok(?:ay)?|um+|uh+|hmm+|so|嗯+|好的?|那就)?[\s,，。.!！~]*|"
    r"[\s,，。.!！~]*(?:lol|pls|plz|please|thx|thanks|ok|吧|啊|哈+|呗|呀|哦|就行)?[\s,，。.!！~]*$",
    re.I,
)


# "-5000", "负五千", "买0元短债", "¥0": an amount that is not above zero.
_NOT_POSITIVE = re.compile(
    r"(?:^|[^\w])[-−负]\s*[\d一二两三四五六七八九十百千万]"
    r"|(?<![\d.])0+(?:\.0+)?\s*(?:元|块|yuan\b|rmb\b)|[¥￥]\s*0+(?:\.0+)?(?![\d.])",
    re.I,
)


def names_non_positive_amount(text: str) -> bool:
    """True when the text gives a zero or negative amount, which parse_amount and find_amounts
    refuse (they never read "-5000" as 5000): the caller can say why it asks again."""
    return bool(_NOT_POSITIVE.search(unicodedata.normalize("NFKC", text)))


def cn_only_text(num: str) -> bool:
    """True when a number is written in Chinese numerals only (一万五, 三千)."""
    return all(ch in _NUM_CHARS for ch in num)


def find_amounts(text: str) -> list[tuple[int, int, Decimal]]:
    """Amounts in free text with their spans, when they clearly are money (cue or currency)."""
    s = unicodedata.normalize("NFKC", text)
    found: list[tuple[int, int, Decimal]] = []
    whole = s.strip()
    names = [(a, b) for a, b, _ in find_products(s)]  # the 300 of 沪深300 is no amount
    for m in _AMOUNT_IN_TEXT.finditer(s):
        start, end = m.span()
        if any(a < end and start < b for a, b in names):
            continue
        num = m.group("num")
        if start > 0 and re.match(r"[A-Za-z]", s[start - 1]) and not m.group("prefix"):
            continue  # D2611250042, C..., 7KQ4M2XD
        if end < len(s) and s[end].isdigit():
            continue
        if start > 0 and s[start - 1] in "-−负":
            continue  # a negative amount: asked about, never taken as its absolute value
        if _NOT_AMOUNT_AFTER.match(s[end:]):
            continue
        cn_only = all(ch in _NUM_CHARS for ch in num)
        has_unit = bool(re.search(r"[万千百kKwW]", num)) or (
            cn_only and re.search("[十拾]", num) is not None
        )
        cue = bool(m.group("prefix") or m.group("suffix")) or bool(_AMOUNT_CUE.search(s[:start]))
        digits = len(num.replace(",", "").split(".")[0])
        if not cue and not cn_only_text(num) and _AMOUNT_CUE_ANYWHERE.search(s):
            cue = digits >= 2  # "5" alone is too vague
        if not cue and not cn_only_text(num) and digits != 6:  # six digits: a one-time code
            # "ok i choose global tech, 8000": a product named beside a number; "my 5000"
            cue = (digits >= 3 and bool(names)) or (digits >= 2 and bool(_MY_BEFORE.search(s[:start])))
        if not (
            cue
            or (has_unit and not cn_only)
            or (has_unit and len(num) >= 2)
            or m.group().strip() == whole
            or m.group().strip() == _EDGE_FILLER.sub("", whole)
        ):
            continue
        if cn_only and not has_unit and not m.group("suffix"):
            continue  # 一下, 三个 ...: a lone Chinese digit is rarely money
        if re.fullmatch(r"\d{6}", num) and not cue:
            continue  # a one-time code, not money
        value = parse_amount(m.group())
        if value is not None:
            found.append((start, end, value))
    return found


_SHARES_IN_TEXT = re.compile(
    rf"(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|{_CN_RUN})\s*(?:份|units?\b|shares?\b)",
    re.I,
)


def find_shares(text: str) -> list[tuple[int, int, Decimal]]:
    """Share counts in free text: "1000份", "五百份", "200 units"."""
    s = unicodedata.normalize("NFKC", text)
    out: list[tuple[int, int, Decimal]] = []
    for m in _SHARES_IN_TEXT.finditer(s):
        value = parse_amount(m.group("num"))
        if value is not None:
            out.append((m.start("num"), m.end("num"), value))
    return out


# --------------------------------------------------------------------------- products


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, str]:
    """text (lower case) → product code, from the NLU's shared synonyms file."""
    table: dict[str, str] = {code.lower(): code for code in PRODUCT_CODES}
    try:
        doc = yaml.safe_load(SYNONYMS_FILE.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return table
    for item in doc.get("nlu") or []:
        code = str(item.get("synonym", ""))
        if code not in PRODUCT_CODES:
            continue
        for line in str(item.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                table[line[2:].strip().lower()] = code
    return table


# Loose names that also mean a product *type* or plain words: fine for an entity the model
# tagged, too vague for scanning free text.
_VAGUE = {
    "安心",
    "海外",
    "指数",
    "混合",
    "货币",
    "债券",
    "均衡",
    "index",
    "bond",
    "hybrid",
    "balanced",
    "300",
    "美股",
    "科技基金",
}


def product_code(text: str | None) -> str | None:
    """A catalog code from a product name as customers type it ("短债" → "BOND01")."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    s = re.sub(r"(那种|那个|这个|的|基金)$", "", s) if s not in _synonyms() else s
    table = _synonyms()
    if s in table:
        return table[s]
    # longest known name inside the text ("余额宝那种的" → 余额宝)
    best = max((k for k in table if k and k in s), key=len, default=None)
    return table[best] if best else None


def find_products(text: str) -> list[tuple[int, int, str]]:
    """Unambiguous product names in free text, longest first, without overlaps."""
    s = unicodedata.normalize("NFKC", text).lower()
    names = sorted(
        (k for k in _synonyms() if k not in _VAGUE and len(k) >= 2), key=len, reverse=True
    )
    taken: list[tuple[int, int, str]] = []
    for name in names:
        for m in re.finditer(re.escape(name), s):
            a, b = m.span()
            if re.fullmatch(r"[a-z0-9 .-]+", name) and (
                (a > 0 and s[a - 1].isalnum()) or (b < len(s) and s[b].isalnum())
            ):
                continue  # "bond" inside "bonding"
            if all(b <= x or a >= y for x, y, _ in taken):
                taken.append((a, b, _synonyms()[name]))
    return sorted(taken)


# --------------------------------------------------------------------------- risk / type

_RISK_WORDS = {
    "low": (
        "低风险",
        "低",
        "稳健",
        "保守",
        "安全",
        "safe",
        "low",
        "low risk",
        "low-risk",
        "conservative",
    ),
    "medium": (
        "中风险",
        "中等风险",
        "中",
        "中等",
        "适中",
        "medium",
        "moderate",
        "mid",
        "medium risk",
    ),
    "high": (
        "高风险",
        "高",
        "激进",
        "进取",
        "high",
        "high risk",
        "high-risk",
        "aggressive",
        "risky",
    ),
}


def risk_level(text: str | None) -> str | None:
    """R1–R5 as given, or low / medium / high from words."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    if m := re.search(r"\br?([1-5])\b|r([1-5])", s):
        return f"R{m.group(1) or m.group(2)}"
    s = re.sub(r"(的|一点|一些|型|级|等级)$", "", s)
    for level, words in _RISK_WORDS.items():
        if s in words:
            return level
    for level, words in _RISK_WORDS.items():
        if any(len(w) > 1 and w in s for w in words):
            return level
    return None


_TYPE_WORDS = (
    ("money_market", ("货币", "现金", "money market", "money-market", "mmf", "cash")),
    ("bond", ("债", "bond", "fixed income")),
    ("hybrid", ("混合", "均衡", "hybrid", "balanced", "mixed")),
    (
        "qdii",
        ("qdii", "海外", "美股", "全球", "境外", "overseas", "global", "international", "us stock"),
    ),
    ("equity_index", ("指数", "股票", "权益", "沪深", "index", "equity", "stock", "csi")),
)
PRODUCT_TYPES = tuple(t for t, _ in _TYPE_WORDS)


def product_type(text: str | None) -> str | None:
    """money_market, bond, hybrid, equity_index or qdii from a type word."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", str(text)).strip().lower().replace("_", " ")
    if s.replace(" ", "_") in PRODUCT_TYPES:
        return s.replace(" ", "_")
    for kind, words in _TYPE_WORDS:
        if any(w in s for w in words):
            return kind
    return None


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open, timezone-aware range [start, end) in Asia/Shanghai."""

    start: datetime
    end: datetime


def _day(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=SHANGHAI)


def _months_back(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + (d.month - 1) - months, 12)
    return date(y, m + 1, min(d.day, monthrange(y, m + 1)[1]))


def _count(token: str) -> int | None:
    token = token.strip().lower()
    if token in ("", "a", "an", "one"):
        return 1
    if token.isdigit():
        return int(token)
    if token in _EN_NUMBERS:
        return int(_EN_NUMBERS[token])
    value = parse_chinese_number(token)
    return int(value) if value is not None and value == value.to_integral_value() else None


_EN_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


def parse_period(text: str | None, today: date | datetime) -> Period | None:
    """A date range for 上个月 / 最近三个月 / 今年 / last week / past 30 days ..., given today."""
    if not text:
        return None
    if isinstance(today, datetime):
        today = today.astimezone(SHANGHAI).date() if today.tzinfo else today.date()
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    s = re.sub(r"\s+", " ", s)
    tomorrow = _day(today + timedelta(days=1))
    month_start = today.replace(day=1)
    week_start = today - timedelta(days=today.weekday())
    fixed: dict[tuple[str, ...], tuple[date, date]] = {
        ("今天", "今日", "today"): (today, today + timedelta(days=1)),
        ("昨天", "昨日", "yesterday"): (today - timedelta(days=1), today),
        ("本周", "这周", "这星期", "这个星期", "这礼拜", "this week"): (week_start, today + timedelta(days=1)),
        ("上周", "上星期", "上个星期", "上礼拜", "last week", "previous week"): (
            week_start - timedelta(days=7), week_start),
        ("本月", "这个月", "这月", "当月", "this month"): (month_start, today + timedelta(days=1)),
        ("上个月", "上月", "last month", "previous month"): (
            _months_back(month_start, 1), month_start),
        ("今年", "本年", "今年以来", "this year", "year to date", "ytd"): (
            date(today.year, 1, 1), today + timedelta(days=1)),
        ("去年", "上一年", "last year", "previous year"): (
            date(today.year - 1, 1, 1), date(today.year, 1, 1)),
    }  # fmt: skip
    bare = re.sub(r"(的|以来)$", "", s).strip()
    for words, (a, b) in fixed.items():
        if bare in words:
            return Period(_day(a), _day(b))
    # 最近三个月 / 近30天 / 过去一周 / past 30 days / last 3 months
    m = re.fullmatch(
        r"(?:最近|近|过去|前|past|last|the last|the past|previous)\s*"
        r"(?P<n>[\d零一二两三四五六七八九十百半]*|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
        r"\s*(?P<unit>个月|月|天|日|周|星期|个星期|礼拜|年|days?|weeks?|months?|years?)",
        bare,
    )
    if m:
        unit = m.group("unit")
        if m.group("n") == "半":
            if unit != "年":
                return None
            n, unit = 6, "月"  # 最近半年
        else:
            count = _count(m.group("n"))
            if count is None or count <= 0 or count > 3650:
                return None
            n = count
        if unit in ("天", "日") or unit.startswith("day"):
            start = today - timedelta(days=n - 1)  # n calendar days including today
        elif unit in ("周", "星期", "个星期", "礼拜") or unit.startswith("week"):
            start = today - timedelta(days=7 * n - 1)
        elif unit in ("个月", "月") or unit.startswith("month"):
            start = _months_back(today, n)
        else:
            start = _months_back(today, 12 * n)
        return Period(_day(start), tomorrow)
    if bare in ("最近半年", "近半年", "过去半年", "半年", "past half year", "last six months"):
        return Period(_day(_months_back(today, 6)), tomorrow)
    # 11月 / 十一月份 / november
    m = re.fullmatch(r"(?P<m>\d{1,2}|[一二三四五六七八九十]+)\s*月份?", bare)
    month: int | None = None
    if m:
        month = _count(m.group("m"))
    else:
        m2 = re.fullmatch(r"(?:in\s+)?([a-z]{3})[a-z]*", bare)
        if m2 and m2.group(1) in _EN_MONTHS and len(bare) >= 3:
            month = _EN_MONTHS[m2.group(1)]
    if month is not None and 1 <= month <= 12:
        year = today.year if month <= today.month else today.year - 1
        start_d = date(year, month, 1)
        end_d = _months_back(start_d, -1)
        return Period(_day(start_d), _day(min(end_d, today + timedelta(days=1))))
    return None


# --------------------------------------------------------------------------- entities


_ALL_SPAN = re.compile(
    r"全|所有|都|清仓|满仓|一次性|\ball\b|\beverything\b|\bentire\b|\bwhole\b|100\s*%|\btrue\b", re.I
)


def normalise_entity(entity: str, text: str | None, value: str | None = None) -> str | None:
    """The wire value of one extracted entity, or None when it cannot be normalised."""
    raw = text if text else value
    if entity == "amount":
        v = parse_amount(raw) or parse_amount(value)
        return format_decimal(v) if v is not None else None
    if entity == "shares":
        v = parse_shares(raw) or parse_shares(value)
        return format_decimal(v) if v is not None else None
    if entity == "product":
        if value in PRODUCT_CODES:
            return value
        return product_code(raw) or product_code(value)
    if entity == "product_type":
        if value in PRODUCT_TYPES:
            return value
        return product_type(raw) or product_type(value)
    if entity == "risk_level":
        return risk_level(value) or risk_level(raw)
    if entity == "all":
        # The model sometimes tags a stray word ("2000 shares of the fund": "of") as `all`;
        # redeeming everything on such a guess would move the customer's money, so the span
        # itself must say "all".
        return "true" if raw and _ALL_SPAN.search(raw) else None
    if entity in ("order_id", "complaint_id"):
        s = (raw or "").strip().upper()
        prefix = "D" if entity == "order_id" else "C"
        return s if re.fullmatch(prefix + r"(?:\d{14}|\d{10})", s) else None
    if entity == "period":
        return (raw or "").strip() or None
    return (value or raw or "").strip() or None
