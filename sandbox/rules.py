"""The platform's business rules as pure functions: risk, trading window, fees, T+N dates."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")
MAX_MONEY = Decimal("1000000000000")  # 1e12: above any real order; keeps Numeric(18,2) safe
LINK_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: never confused when typed


class RuleError(Exception):
    """A request a rule refuses: `code` is the API's error code, `status` its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details


# ---------------------------------------------------------------- input values
def parse_decimal(value: Any, field_name: str, places: int = 2) -> Decimal:
    """A positive amount or share count from JSON: string or number, at most `places` decimals."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RuleError("validation_error", f"{field_name} must be a decimal string", 400,
                        field=field_name)
    text = str(value).strip().replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RuleError("validation_error", f"{field_name} is not a number", 400,
                        field=field_name) from None
    if not amount.is_finite():
        raise RuleError("validation_error", f"{field_name} is not a number", 400, field=field_name)
    if amount <= 0:
        raise RuleError("validation_error", f"{field_name} must be positive", 400,
                        field=field_name)
    if amount > MAX_MONEY:
        raise RuleError("validation_error", f"{field_name} is too large", 400, field=field_name)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places and amount != amount.quantize(
        Decimal(1).scaleb(-places)
    ):
        raise RuleError("validation_error", f"{field_name} has more than {places} decimals", 400,
                        field=field_name)
    return amount.quantize(Decimal(1).scaleb(-places))


def normalize_link_code(code: str) -> str:
    """Customers type link codes with dashes, spaces or in lower case."""
    return re.sub(r"[\s\-_]", "", code).upper()


def money_str(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def format_yuan(value: Decimal) -> str:
    """¥5,000.00 — the SMS and customer-facing money format."""
    return f"¥{value.quantize(CENT, ROUND_HALF_UP):,.2f}"


# ---------------------------------------------------------------- masking
def mask_phone(phone: str) -> str:
    """138****1234: keep the carrier prefix and the last four digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_id_number(id_number: str) -> str:
    """110***********1234: region prefix and last four only."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return f"{id_number[:3]}{'*' * (len(id_number) - 7)}{id_number[-4:]}"


def mask_card(card: str) -> str:
    digits = re.sub(r"\D", "", card)
    return f"**** {digits[-4:]}" if len(digits) >= 4 else "****"


# ---------------------------------------------------------------- risk matching
def risk_level(level: str) -> int:
    """C3 / R3 → 3."""
    if not re.fullmatch(r"[CR][1-5]", level):
        raise ValueError(f"bad risk level {level!r}")
    return int(level[1])


def risk_ok(customer_risk: str, product_risk: str) -> bool:
    """A purchase is allowed only when the product's Rn is at most the customer's Cn."""
    return risk_level(product_risk) <= risk_level(customer_risk)


# ---------------------------------------------------------------- trading calendar
@dataclass(frozen=True)
class Calendar:
    """Working days minus holidays; the window is [open, close) in the platform's zone."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    open: time = time(9, 0)
    close: time = time(17, 0)

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.tz)

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def is_trading_time(self, instant: datetime) -> bool:
        loc = self.local(instant)
        return self.is_trading_day(loc.date()) and self.open <= loc.time() < self.close

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        d = day + timedelta(days=1)
        while not self.is_trading_day(d):
            d += timedelta(days=1)
        return d

    def add_trading_days(self, day: date, n: int) -> date:
        """T+n: n trading days after `day` (n = 0 → `day` itself)."""
        for _ in range(n):
            day = self.next_trading_day(day)
        return day

    def open_at(self, day: date) -> datetime:
        return datetime.combine(day, self.open, self.tz)

    def close_at(self, day: date) -> datetime:
        return datetime.combine(day, self.close, self.tz)

    def trade_date(self, instant: datetime) -> tuple[date, bool]:
        """(trade date T, scheduled). Outside the window an order waits for the next open."""
        loc = self.local(instant)
        if self.is_trading_time(instant):
            return loc.date(), False
        if self.is_trading_day(loc.date()) and loc.time() < self.open:
            return loc.date(), True
        return self.next_trading_day(loc.date()), True

    def next_trading_open(self, instant: datetime) -> datetime:
        """`instant` itself when inside the window, else the next opening."""
        day, scheduled = self.trade_date(instant)
        return self.local(instant) if not scheduled else self.open_at(day)

    def add_working_days(self, instant: datetime, n: int) -> datetime:
        """Same local time of day, n trading days later (complaint deadlines)."""
        loc = self.local(instant)
        return datetime.combine(self.add_trading_days(loc.date(), n), loc.timetz())


# ---------------------------------------------------------------- lifecycle dates
@dataclass(frozen=True)
class Schedule:
    """When an order reaches its next two statuses."""

    first: str
    first_at: datetime
    second: str
    second_at: datetime


def subscription_schedule(cal: Calendar, trade_date: date) -> Schedule:
    """Confirmed at the open of T+1 (within 24 h of a trading-day order), settled at T+2."""
    confirm = cal.add_trading_days(trade_date, 1)
    return Schedule("confirmed", cal.open_at(confirm), "settled",
                    cal.open_at(cal.add_trading_days(confirm, 1)))


def redemption_schedule(cal: Calendar, trade_date: date, settlement_days: int) -> Schedule:
    """Processed the next trading day (T+0 products: at T's close); arrives T+N, not earlier."""
    if settlement_days <= 0:
        processed = cal.close_at(trade_date)
        return Schedule("processed", processed, "arrived", processed)
    processed = cal.open_at(cal.add_trading_days(trade_date, 1))
    arrived = cal.open_at(cal.add_trading_days(trade_date, settlement_days))
    return Schedule("processed", processed, "arrived", max(processed, arrived))


# ---------------------------------------------------------------- fees
@dataclass(frozen=True)
class Tier:
    min_days: int
    max_days: int | None
    rate: Decimal


TIER_RULES = {0: "holding_under_7_days", 1: "holding_7_to_365_days", 2: "holding_over_365_days"}


def subscription_fee(amount: Decimal, rate: Decimal) -> Decimal:
    """Front-end fee on the gross amount, half-up to the cent."""
    return (amount * rate).quantize(CENT, ROUND_HALF_UP)


def subscription_shares(amount: Decimal, fee: Decimal, nav: Decimal) -> Decimal:
    """Shares bought: (amount − fee) / NAV, rounded down so the platform never over-issues."""
    return ((amount - fee) / nav).quantize(CENT, ROUND_FLOOR)


def shares_for_amount(amount: Decimal, nav: Decimal) -> Decimal:
    """Shares to redeem for a gross amount, rounded up so the customer gets at least it."""
    return (amount / nav).quantize(CENT, ROUND_CEILING)


def holding_days(acquired: date, trade_date: date) -> int:
    return max(0, (trade_date - acquired).days)


def redemption_tier(days: int, tiers: Sequence[Tier]) -> tuple[int, Tier]:
    """The tier (index, tier) for a holding of `days` days: < 7 → 1.5 %, ≤ 365 → 0.5 %, else 0."""
    for i, tier in enumerate(tiers):
        if days >= tier.min_days and (tier.max_days is None or days <= tier.max_days):
            return i, tier
    raise ValueError(f"no redemption fee tier for {days} days")


@dataclass(frozen=True)
class LotPart:
    """Shares taken from one lot by a redemption."""

    lot_id: int
    acquired_at: date
    shares: Decimal


@dataclass(frozen=True)
class FeeLine:
    acquired_at: date
    holding_days: int
    shares: Decimal
    rate: Decimal
    fee: Decimal  # unrounded


@dataclass(frozen=True)
class RedemptionEstimate:
    shares: Decimal
    gross: Decimal
    fee: Decimal
    net: Decimal
    fee_rate: Decimal | None  # None when the lots span tiers
    fee_rule: str
    holding_days: int  # youngest lot redeemed
    lines: tuple[FeeLine, ...]


def allocate_fifo(lots: Iterable[tuple[int, date, Decimal]], shares: Decimal) -> list[LotPart]:
    """Take `shares` from (lot_id, acquired_at, available) lots, oldest first."""
    ordered = sorted(lots, key=lambda lot: (lot[1], lot[0]))
    available = sum((lot[2] for lot in ordered), Decimal(0))
    if shares > available:
        raise RuleError("insufficient_shares", "not enough shares", 422,
                        available=money_str(available))
    parts: list[LotPart] = []
    left = shares
    for lot_id, acquired, have in ordered:
        if left <= 0:
            break
        take = min(have, left)
        if take > 0:
            parts.append(LotPart(lot_id, acquired, take))
            left -= take
    return parts


def redemption_estimate(
    parts: Sequence[LotPart], nav: Decimal, trade_date: date, tiers: Sequence[Tier]
) -> RedemptionEstimate:
    """gross = shares × NAV and fee = Σ lot share × NAV × tier rate, both half-up to 0.01."""
    if not parts:
        raise ValueError("nothing to redeem")
    lines: list[FeeLine] = []
    tier_ids: set[int] = set()
    for part in parts:
        days = holding_days(part.acquired_at, trade_date)
        idx, tier = redemption_tier(days, tiers)
        tier_ids.add(idx)
        lines.append(FeeLine(part.acquired_at, days, part.shares, tier.rate,
                             part.shares * nav * tier.rate))
    shares = sum((p.shares for p in parts), Decimal(0))
    gross = (shares * nav).quantize(CENT, ROUND_HALF_UP)
    fee = sum((line.fee for line in lines), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
    single = len(tier_ids) == 1
    idx = next(iter(tier_ids))
    return RedemptionEstimate(
        shares=shares,
        gross=gross,
        fee=fee,
        net=gross - fee,
        fee_rate=tiers[idx].rate if single else None,
        fee_rule=TIER_RULES.get(idx, f"tier_{idx}") if single else "mixed",
        holding_days=min(line.holding_days for line in lines),
        lines=tuple(lines),
    )


# ---------------------------------------------------------------- limits
def check_subscription_amount(
    amount: Decimal,
    minimum: Decimal,
    per_order_limit: Decimal,
    daily_limit: Decimal,
    used_today: Decimal,
    cash: Decimal,
) -> None:
    """Minimum, per-order limit, daily limit (per customer, product and trade date), cash."""
    if amount < minimum:
        raise RuleError("below_minimum", f"the minimum is {money_str(minimum)}",
                        minimum=money_str(minimum))
    if amount > per_order_limit:
        raise RuleError("above_order_limit", f"the per-order limit is {money_str(per_order_limit)}",
                        limit=money_str(per_order_limit))
    if used_today + amount > daily_limit:
        raise RuleError("above_daily_limit", f"the daily limit is {money_str(daily_limit)}",
                        limit=money_str(daily_limit),
                        remaining=money_str(max(Decimal(0), daily_limit - used_today)))
    if amount > cash:
        raise RuleError("insufficient_cash", "not enough cash", available=money_str(cash))
