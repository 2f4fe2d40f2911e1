"""Frozen dataclasses for the platform API's answers: Decimal money, aware datetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "Challenge",
    "ChallengeVerification",
    "Clock",
    "Complaint",
    "ComplaintPage",
    "Customer",
    "FeeLine",
    "FeeTier",
    "Holding",
    "LinkResult",
    "Lot",
    "NextStep",
    "Order",
    "OrderPage",
    "Portfolio",
    "Product",
    "Quote",
    "StatusChange",
    "Suitability",
]

J = dict[str, Any]


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _dt(v: Any) -> datetime | None:
    if v is None:
        return None
    value = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    if value.tzinfo is None:  # the platform always sends offsets; never guess
        raise ValueError(f"naive datetime from platform: {v!r}")
    return value


def _date(v: Any) -> date | None:
    return None if v is None else date.fromisoformat(str(v))


def _req_dec(v: Any) -> Decimal:
    out = _dec(v)
    if out is None:
        raise ValueError("missing decimal")
    return out


def _req_dt(v: Any) -> datetime:
    out = _dt(v)
    if out is None:
        raise ValueError("missing datetime")
    return out


def _req_date(v: Any) -> date:
    out = _date(v)
    if out is None:
        raise ValueError("missing date")
    return out


@dataclass(frozen=True, slots=True)
class Clock:
    """The platform's "now" and trading calendar position (Asia/Shanghai)."""

    now: datetime
    today: date
    trade_date: date  # the trade date an order placed now gets
    is_trading_day: bool
    is_trading_time: bool
    next_trading_open: datetime
    timezone: str

    @classmethod
    def from_json(cls, d: J) -> Clock:
        return cls(
            now=_req_dt(d["now"]),
            today=_req_date(d["today"]),
            trade_date=_req_date(d["trade_date"]),
            is_trading_day=bool(d["is_trading_day"]),
            is_trading_time=bool(d["is_trading_time"]),
            next_trading_open=_req_dt(d["next_trading_open"]),
            timezone=str(d["timezone"]),
        )


@dataclass(frozen=True, slots=True)
class FeeTier:
    """Redemption fee rate for holdings of min_days..max_days (None: no upper bound)."""

    min_days: int
    max_days: int | None
    rate: Decimal

    @classmethod
    def from_json(cls, d: J) -> FeeTier:
        mx = d.get("max_days")
        return cls(int(d["min_days"]), None if mx is None else int(mx), _req_dec(d["rate"]))


@dataclass(frozen=True, slots=True)
class Product:
    """One catalog product. Rates are fractions (0.003 = 0.3 %); return range in % a year."""

    code: str
    name_zh: str
    name_en: str
    type: str  # money_market | bond | hybrid | equity_index | qdii
    risk: str  # R1..R5
    nav: Decimal
    nav_date: date
    term: str  # short | medium | long
    settlement_days: int  # redemption arrives T+N
    min_amount: Decimal
    per_order_limit: Decimal
    daily_limit: Decimal
    subscription_fee_rate: Decimal
    redemption_fee_tiers: tuple[FeeTier, ...]
    return_low_pct: Decimal
    return_high_pct: Decimal

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    @classmethod
    def from_json(cls, d: J) -> Product:
        rr = d.get("return_range") or {}
        return cls(
            code=str(d["code"]),
            name_zh=str(d["name_zh"]),
            name_en=str(d["name_en"]),
            type=str(d["type"]),
            risk=str(d["risk"]),
            nav=_req_dec(d["nav"]),
            nav_date=_req_date(d["nav_date"]),
            term=str(d["term"]),
            settlement_days=int(d["settlement_days"]),
            min_amount=_req_dec(d["min_amount"]),
            per_order_limit=_req_dec(d["per_order_limit"]),
            daily_limit=_req_dec(d["daily_limit"]),
            subscription_fee_rate=_req_dec(d["subscription_fee_rate"]),
            redemption_fee_tiers=tuple(FeeTier.from_json(t) for t in d["redemption_fee_tiers"]),
            return_low_pct=_req_dec(rr.get("low_pct", "0")),
            return_high_pct=_req_dec(rr.get("high_pct", "0")),
        )


@dataclass(frozen=True, slots=True)
class LinkResult:
    """A redeemed link code: the chat now belongs to this customer."""

    customer_id: str

    @classmethod
    def from_json(cls, d: J) -> LinkResult:
        return cls(str(d["customer_id"]))


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer's profile, already masked by the platform (never full numbers)."""

    customer_id: str
    name: str
    phone_masked: str  # 138****1234
    id_number_masked: str  # 110***********1234
    bank_card_masked: str  # **** 1234
    bank_name: str
    verified: bool
    risk_tolerance: str  # C1..C5

    @classmethod
    def from_json(cls, d: J) -> Customer:
        return cls(
            customer_id=str(d["customer_id"]),
            name=str(d["name"]),
            phone_masked=str(d["phone_masked"]),
            id_number_masked=str(d["id_number_masked"]),
            bank_card_masked=str(d["bank_card_masked"]),
            bank_name=str(d["bank_name"]),
            verified=bool(d["verified"]),
            risk_tolerance=str(d["risk_tolerance"]),
        )


@dataclass(frozen=True, slots=True)
class Lot:
    """Shares of one product bought on one date (redemptions consume lots FIFO)."""

    shares: Decimal
    acquired_at: date
    holding_days: int

    @classmethod
    def from_json(cls, d: J) -> Lot:
        return cls(_req_dec(d["shares"]), _req_date(d["acquired_at"]), int(d["holding_days"]))


@dataclass(frozen=True, slots=True)
class Holding:
    """All available shares of one product, valued at today's NAV."""

    product: str
    name_zh: str
    name_en: str
    shares: Decimal
    nav: Decimal
    market_value: Decimal
    acquired_at: date  # the oldest lot
    holding_days: int  # of the oldest lot
    lots: tuple[Lot, ...]

    @classmethod
    def from_json(cls, d: J) -> Holding:
        return cls(
            product=str(d["product"]),
            name_zh=str(d["name_zh"]),
            name_en=str(d["name_en"]),
            shares=_req_dec(d["shares"]),
            nav=_req_dec(d["nav"]),
            market_value=_req_dec(d["market_value"]),
            acquired_at=_req_date(d["acquired_at"]),
            holding_days=int(d["holding_days"]),
            lots=tuple(Lot.from_json(x) for x in d.get("lots", [])),
        )


@dataclass(frozen=True, slots=True)
class Portfolio:
    """Cash, holdings and totals. Pending subscriptions are already out of cash."""

    customer_id: str
    cash: Decimal
    holdings: tuple[Holding, ...]
    holdings_value: Decimal
    in_transit: Decimal  # pending subscriptions not yet confirmed + redemptions not yet arrived
    total: Decimal  # cash + holdings_value + in_transit
    as_of: datetime

    @classmethod
    def from_json(cls, d: J) -> Portfolio:
        return cls(
            customer_id=str(d["customer_id"]),
            cash=_req_dec(d["cash"]),
            holdings=tuple(Holding.from_json(h) for h in d["holdings"]),
            holdings_value=_req_dec(d["holdings_value"]),
            in_transit=_req_dec(d.get("in_transit", "0")),
            total=_req_dec(d["total"]),
            as_of=_req_dt(d["as_of"]),
        )


@dataclass(frozen=True, slots=True)
class Suitability:
    """Risk matching: ok when product risk Rn <= customer tolerance Cn."""

    ok: bool
    customer_risk: str
    product_risk: str

    @classmethod
    def from_json(cls, d: J) -> Suitability:
        return cls(bool(d["ok"]), str(d["customer_risk"]), str(d["product_risk"]))


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One lot's part of a redemption fee."""

    acquired_at: date
    holding_days: int
    shares: Decimal
    rate: Decimal
    fee: Decimal

    @classmethod
    def from_json(cls, d: J) -> FeeLine:
        return cls(
            _req_date(d["acquired_at"]),
            int(d["holding_days"]),
            _req_dec(d["shares"]),
            _req_dec(d["rate"]),
            _req_dec(d["fee"]),
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """What an order would do now. Nothing is reserved; the order re-checks everything."""

    side: str  # subscribe | redeem
    product: str
    suitability: Suitability
    amount: Decimal | None  # subscription amount, or gross value of the redeemed shares
    shares: Decimal | None  # redeemed shares (redeem)
    all: bool
    nav: Decimal
    fee: Decimal
    fee_rate: Decimal | None  # None when a redemption spans tiers (see fee_lines)
    fee_rule: str  # subscription | holding_under_7_days | holding_7_to_365_days | holding_over_365_days | mixed
    holding_days: int | None
    fee_lines: tuple[FeeLine, ...]
    estimated_shares: Decimal | None  # subscribe: (amount - fee) / NAV, rounded down
    estimated_amount: Decimal | None  # redeem: shares x NAV - fee
    trade_date: date
    scheduled: bool  # True: outside the window, executes on trade_date's open
    next_trading_open: datetime
    confirm_date: date
    arrival_date: date

    @classmethod
    def from_json(cls, d: J) -> Quote:
        return cls(
            side=str(d["side"]),
            product=str(d["product"]),
            suitability=Suitability.from_json(d["suitability"]),
            amount=_dec(d.get("amount")),
            shares=_dec(d.get("shares")),
            all=bool(d.get("all", False)),
            nav=_req_dec(d["nav"]),
            fee=_req_dec(d["fee"]),
            fee_rate=_dec(d.get("fee_rate")),
            fee_rule=str(d["fee_rule"]),
            holding_days=None if d.get("holding_days") is None else int(d["holding_days"]),
            fee_lines=tuple(FeeLine.from_json(x) for x in d.get("fee_lines", [])),
            estimated_shares=_dec(d.get("estimated_shares")),
            estimated_amount=_dec(d.get("estimated_amount")),
            trade_date=_req_date(d["trade_date"]),
            scheduled=bool(d["scheduled"]),
            next_trading_open=_req_dt(d["next_trading_open"]),
            confirm_date=_req_date(d["confirm_date"]),
            arrival_date=_req_date(d["arrival_date"]),
        )


@dataclass(frozen=True, slots=True)
class Challenge:
    """A step-up challenge: a 6-digit code went out by SMS."""

    challenge_id: str
    expires_at: datetime

    @classmethod
    def from_json(cls, d: J) -> Challenge:
        return cls(str(d["challenge_id"]), _req_dt(d["expires_at"]))


@dataclass(frozen=True, slots=True)
class ChallengeVerification:
    """A verified challenge, ready to authorise the one order it is bound to."""

    challenge_id: str
    verified: bool
    verified_at: datetime

    @classmethod
    def from_json(cls, d: J) -> ChallengeVerification:
        return cls(str(d["challenge_id"]), bool(d["verified"]), _req_dt(d["verified_at"]))


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status an order or complaint reached, and when."""

    status: str
    at: datetime
    reason: str | None = None

    @classmethod
    def from_json(cls, d: J) -> StatusChange:
        return cls(str(d["status"]), _req_dt(d["at"]), d.get("reason"))


@dataclass(frozen=True, slots=True)
class NextStep:
    """The status an order will reach next, and when it is expected."""

    status: str
    expected_at: datetime

    @classmethod
    def from_json(cls, d: J) -> NextStep:
        return cls(str(d["status"]), _req_dt(d["expected_at"]))


@dataclass(frozen=True, slots=True)
class Order:
    """A subscription or redemption. `order_id` is what customers type (D + 14 digits)."""

    order_id: str
    customer_id: str
    side: str
    product: str
    product_type: str
    amount: Decimal | None
    shares: Decimal | None
    fee: Decimal
    nav: Decimal
    status: str
    reason: str | None
    created_at: datetime
    trade_date: date
    scheduled: bool
    confirm_date: date
    arrival_date: date
    history: tuple[StatusChange, ...]
    next_step: NextStep | None

    @property
    def is_final(self) -> bool:
        return self.status in ("settled", "arrived", "failed")

    @classmethod
    def from_json(cls, d: J) -> Order:
        ns = d.get("next_step")
        return cls(
            order_id=str(d["order_id"]),
            customer_id=str(d["customer_id"]),
            side=str(d["side"]),
            product=str(d["product"]),
            product_type=str(d["product_type"]),
            amount=_dec(d.get("amount")),
            shares=_dec(d.get("shares")),
            fee=_req_dec(d["fee"]),
            nav=_req_dec(d["nav"]),
            status=str(d["status"]),
            reason=d.get("reason"),
            created_at=_req_dt(d["created_at"]),
            trade_date=_req_date(d["trade_date"]),
            scheduled=bool(d["scheduled"]),
            confirm_date=_req_date(d["confirm_date"]),
            arrival_date=_req_date(d["arrival_date"]),
            history=tuple(StatusChange.from_json(h) for h in d.get("history", [])),
            next_step=None if ns is None else NextStep.from_json(ns),
        )


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of a customer's orders, newest first."""

    items: tuple[Order, ...]
    page: int
    page_size: int
    total: int

    @classmethod
    def from_json(cls, d: J) -> OrderPage:
        return cls(
            tuple(Order.from_json(o) for o in d["items"]),
            int(d["page"]),
            int(d["page_size"]),
            int(d["total"]),
        )


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint ticket (C + 14 digits) with its SLA due times and status history."""

    complaint_id: str
    customer_id: str
    category: str  # service_attitude | product_use | system_fault | policy_explanation
    description: str
    order_id: str | None
    status: str  # submitted | acknowledged | answered
    result: str | None
    created_at: datetime
    first_response_due: datetime
    result_due: datetime
    final_due: datetime
    history: tuple[StatusChange, ...]

    @classmethod
    def from_json(cls, d: J) -> Complaint:
        return cls(
            complaint_id=str(d["complaint_id"]),
            customer_id=str(d["customer_id"]),
            category=str(d["category"]),
            description=str(d["description"]),
            order_id=d.get("order_id"),
            status=str(d["status"]),
            result=d.get("result"),
            created_at=_req_dt(d["created_at"]),
            first_response_due=_req_dt(d["first_response_due"]),
            result_due=_req_dt(d["result_due"]),
            final_due=_req_dt(d["final_due"]),
            history=tuple(StatusChange.from_json(h) for h in d.get("history", [])),
        )


@dataclass(frozen=True, slots=True)
class ComplaintPage:
    """A customer's complaints, newest first."""

    items: tuple[Complaint, ...]
    total: int

    @classmethod
    def from_json(cls, d: J) -> ComplaintPage:
        return cls(tuple(Complaint.from_json(c) for c in d["items"]), int(d["total"]))
