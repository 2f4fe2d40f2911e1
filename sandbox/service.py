"""The platform's operations on its database: customers, quotes, step-up, orders, complaints."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox import rules
from sandbox.clock import Clock
from sandbox.db import (
    ChallengeRow,
    ComplaintHistoryRow,
    ComplaintRow,
    CustomerRow,
    EventRow,
    LinkCodeRow,
    LotRow,
    OrderHistoryRow,
    OrderRow,
    ProductRow,
    SandboxDB,
    SmsRow,
    as_utc,
)
from sandbox.rules import CENT, RuleError, money_str
from sandbox.settings import ProductSpec, SandboxSettings

SIDES = ("subscribe", "redeem")
PRODUCT_TYPES = ("money_market", "bond", "hybrid", "equity_index", "qdii")
ORDER_STATUSES = ("submitted", "confirmed", "settled", "accepted", "processed", "arrived", "failed")
FINAL = ("settled", "arrived", "failed")
COMPLAINT_CATEGORIES = ("service_attitude", "product_use", "system_fault", "policy_explanation")
ORDER_ACTIONS = ("subscribe", "redeem")
# Actions without an order: the SMS still names exactly what the code is for (dynamic linking).
ACCOUNT_ACTIONS = {
    "view": ("查看账户信息", "to view your account"),
    "export_history": ("导出交易记录", "to export your transaction history"),
    "unlink": ("解除聊天账户绑定", "to unlink this chat from your account"),
    "erase_data": ("删除客服对话中的个人数据", "to erase your data held by customer service"),
    "change_contact": ("更改通知联系方式", "to change your notification contact"),
}
ACTIONS = (*ORDER_ACTIONS, *ACCOUNT_ACTIONS)
ACTION_ZH = {"subscribe": "申购", "redeem": "赎回"}


def _utc(value: datetime | None) -> datetime:
    out = as_utc(value)
    assert out is not None  # callers pass non-null columns
    return out


def _shares_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT, ROUND_HALF_UP))


@dataclass(frozen=True)
class OrderRequest:
    """A validated subscribe / redeem request (quote or order)."""

    side: str
    product: ProductSpec
    amount: Decimal | None
    shares: Decimal | None
    all: bool


class Platform:
    """All platform operations; the HTTP layer only parses input and renders output."""

    def __init__(self, settings: SandboxSettings, db: SandboxDB, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.cal = rules.Calendar(
            holidays=frozenset(settings.holidays),
            tz=self.tz,
            open=settings.trading_open,
            close=settings.trading_close,
        )
        self.tiers = [rules.Tier(t.min_days, t.max_days, t.rate) for t in
                      settings.redemption_fee_tiers]
        self.catalog: dict[str, ProductSpec] = {p.code: p for p in settings.catalog}

    # ------------------------------------------------------------ helpers
    def now(self) -> datetime:
        return self.clock.now()

    def iso(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        return _utc(value).astimezone(self.tz).isoformat(timespec="seconds")

    def today(self) -> date:
        return self.cal.local(self.now()).date()

    def product(self, code: Any) -> ProductSpec:
        if not isinstance(code, str) or not code.strip():
            raise RuleError("validation_error", "product is required", 400, field="product")
        spec = self.catalog.get(code.strip().upper())
        if spec is None:
            raise RuleError("unknown_product", "no such product", 404)
        return spec

    def nav_date(self) -> date:
        """The last trading day on or before today: NAVs are struck after each close."""
        d = self.today()
        while not self.cal.is_trading_day(d):
            d -= timedelta(days=1)
        return d

    async def seed_catalog(self) -> None:
        async with self.db.write() as s:
            for spec in self.settings.catalog:
                row = await s.get(ProductRow, spec.code)
                values = spec.model_dump()
                if row is None:
                    s.add(ProductRow(**values))
                else:
                    for key, value in values.items():
                        setattr(row, key, value)

    async def _customer(self, s: AsyncSession, customer_id: str, lock: bool = False) -> CustomerRow:
        stmt = select(CustomerRow).where(CustomerRow.id == customer_id)
        if lock and not self.db.is_sqlite:
            stmt = stmt.with_for_update()
        row = (await s.execute(stmt)).scalar_one_or_none()
        if row is None:
            raise RuleError("not_found", "no such customer", 404)
        return row

    def _event(self, s: AsyncSession, type_: str, customer_id: str, occurred_at: datetime,
               payload: dict[str, Any]) -> None:
        real_now = datetime.now(UTC)
        s.add(EventRow(event_id=f"evt_{uuid.uuid4().hex}", type=type_, customer_id=customer_id,
                       occurred_at=occurred_at, payload=payload, created_at=real_now,
                       attempts=0, next_attempt_at=real_now))

    # ------------------------------------------------------------ clock and catalog
    def clock_json(self) -> dict[str, Any]:
        now = self.now()
        trade_date, _ = self.cal.trade_date(now)
        return {
            "now": self.iso(now),
            "today": self.today().isoformat(),
            "trade_date": trade_date.isoformat(),
            "is_trading_day": self.cal.is_trading_day(self.today()),
            "is_trading_time": self.cal.is_trading_time(now),
            "next_trading_open": self.iso(self.cal.next_trading_open(now)),
            "timezone": self.settings.timezone,
        }

    def product_json(self, p: ProductSpec) -> dict[str, Any]:
        return {
            "code": p.code,
            "name_zh": p.name_zh,
            "name_en": p.name_en,
            "type": p.type,
            "risk": p.risk,
            "nav": str(p.nav.quantize(Decimal("0.0001"))),
            "nav_date": self.nav_date().isoformat(),
            "term": p.term,
            "settlement_days": p.settlement_days,
            "min_amount": money_str(p.min_amount),
            "per_order_limit": money_str(p.per_order_limit),
            "daily_limit": money_str(p.daily_limit),
            "subscription_fee_rate": str(p.subscription_fee_rate.quantize(Decimal("0.0001"))),
            "redemption_fee_tiers": [
                {"min_days": t.min_days, "max_days": t.max_days,
                 "rate": str(t.rate.quantize(Decimal("0.0001")))} for t in self.tiers
            ],
            "return_range": {"low_pct": str(p.return_low_pct), "high_pct": str(p.return_high_pct)},
        }

    def products_json(self) -> list[dict[str, Any]]:
        return [self.product_json(p) for p in self.settings.catalog]

    # ------------------------------------------------------------ customers and link codes
    def _new_link_code(self) -> str:
        return "".join(secrets.choice(rules.LINK_ALPHABET) for _ in range(8))

    async def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        phone = body.get("phone")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise RuleError("validation_error", "name is required", 400, field="name")
        if not isinstance(phone, str) or not phone.strip().lstrip("+").isdigit() or len(phone) > 20:
            raise RuleError("validation_error", "phone must be digits", 400, field="phone")
        risk = body.get("risk_tolerance", "C3")
        if not isinstance(risk, str) or risk not in ("C1", "C2", "C3", "C4", "C5"):
            raise RuleError("validation_error", "risk_tolerance is C1..C5", 400,
                            field="risk_tolerance")
        cash_raw = body.get("cash", "0")
        cash = Decimal(0) if str(cash_raw).strip() in ("0", "0.00", "0.0") else \
            rules.parse_decimal(cash_raw, "cash")
        holdings_raw = body.get("holdings", [])
        if not isinstance(holdings_raw, list):
            raise RuleError("validation_error", "holdings must be a list", 400, field="holdings")
        now = self.now()
        today = self.cal.local(now).date()
        default_acquired = today.replace(year=today.year - 1) if not (
            today.month == 2 and today.day == 29) else today - timedelta(days=365)
        lots: list[tuple[str, Decimal, date]] = []
        for h in holdings_raw:
            if not isinstance(h, dict):
                raise RuleError("validation_error", "holding must be an object", 400,
                                field="holdings")
            spec = self.product(h.get("product"))
            shares = rules.parse_decimal(h.get("shares"), "shares")
            acquired = default_acquired
            if h.get("acquired_at") is not None:
                try:
                    acquired = date.fromisoformat(str(h["acquired_at"])[:10])
                except ValueError:
                    raise RuleError("validation_error", "acquired_at is a date", 400,
                                    field="acquired_at") from None
            lots.append((spec.code, shares, acquired))
        id_number = str(body.get("id_number") or f"110101199001{secrets.randbelow(10**6):06d}")
        card = str(body.get("bank_card") or f"622202{secrets.randbelow(10**10):010d}")
        customer_id = f"cus_{secrets.token_hex(8)}"
        code = self._new_link_code()
        async with self.db.write() as s:
            s.add(CustomerRow(
                id=customer_id, name=name.strip(), phone=phone.strip(), id_number=id_number,
                bank_card=card, bank_name=str(body.get("bank_name") or "招商银行"),
                verified=bool(body.get("verified", True)), risk_tolerance=risk, cash=cash,
                wrong_codes=0, created_at=now,
            ))
            await s.flush()
            for product, shares, acquired in lots:
                s.add(LotRow(customer_id=customer_id, product=product, shares=shares,
                             acquired_at=acquired))
            s.add(LinkCodeRow(code=code, customer_id=customer_id,
                              expires_at=now + timedelta(hours=self.settings.link_code_ttl_hours)))
        return {"customer_id": customer_id, "link_code": code}

    async def issue_link_code(self, customer_id: str) -> dict[str, Any]:
        now = self.now()
        code = self._new_link_code()
        async with self.db.write() as s:
            await self._customer(s, customer_id)
            expires = now + timedelta(hours=self.settings.link_code_ttl_hours)
            s.add(LinkCodeRow(code=code, customer_id=customer_id, expires_at=expires))
        return {"customer_id": customer_id, "link_code": code, "expires_at": self.iso(expires)}

    async def redeem_link_code(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 40:
            raise RuleError("validation_error", "code is required", 400, field="code")
        code = rules.normalize_link_code(raw)
        now = self.now()
        async with self.db.write() as s:
            stmt = select(LinkCodeRow).where(LinkCodeRow.code == code)
            if not self.db.is_sqlite:
                stmt = stmt.with_for_update()
            row = (await s.execute(stmt)).scalar_one_or_none()
            if row is None:
                raise RuleError("link_code_unknown", "unknown link code", 404)
            if row.used_at is not None:
                raise RuleError("link_code_used", "this link code was already used", 409)
            if _utc(row.expires_at) <= now:
                raise RuleError("link_code_expired", "this link code has expired", 410)
            row.used_at = now
            return {"customer_id": row.customer_id}

    async def customer_json(self, customer_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            c = await self._customer(s, customer_id)
            return {
                "customer_id": c.id,
                "name": c.name,
                "phone_masked": rules.mask_phone(c.phone),
                "id_number_masked": rules.mask_id_number(c.id_number),
                "bank_card_masked": rules.mask_card(c.bank_card),
                "bank_name": c.bank_name,
                "verified": c.verified,
                "risk_tolerance": c.risk_tolerance,
            }

    async def _lots(self, s: AsyncSession, customer_id: str, product: str | None = None,
                    lock: bool = False) -> list[LotRow]:
        stmt = select(LotRow).where(LotRow.customer_id == customer_id, LotRow.shares > 0)
        if product is not None:
            stmt = stmt.where(LotRow.product == product)
        if lock and not self.db.is_sqlite:
            stmt = stmt.with_for_update()
        return list((await s.execute(stmt.order_by(LotRow.acquired_at, LotRow.id))).scalars())

    async def portfolio(self, customer_id: str) -> dict[str, Any]:
        now = self.now()
        today = self.cal.local(now).date()
        async with self.db.read() as s:
            c = await self._customer(s, customer_id)
            lots = await self._lots(s, customer_id)
            pending = list((await s.execute(select(OrderRow).where(
                OrderRow.customer_id == customer_id,
                OrderRow.status.in_(("submitted", "accepted", "processed"))))).scalars())
        by_product: dict[str, list[LotRow]] = {}
        for lot in lots:
            by_product.setdefault(lot.product, []).append(lot)
        holdings = []
        total_value = Decimal(0)
        for spec in self.settings.catalog:
            group = by_product.get(spec.code)
            if not group:
                continue
            shares = sum((lot.shares for lot in group), Decimal(0))
            value = (shares * spec.nav).quantize(CENT, ROUND_HALF_UP)
            total_value += value
            oldest = group[0].acquired_at
            holdings.append({
                "product": spec.code, "name_zh": spec.name_zh, "name_en": spec.name_en,
                "shares": _shares_str(shares), "nav": str(spec.nav), "market_value": money_str(value),
                "acquired_at": oldest.isoformat(),
                "holding_days": rules.holding_days(oldest, today),
                "lots": [{"shares": _shares_str(lot.shares),
                          "acquired_at": lot.acquired_at.isoformat(),
                          "holding_days": rules.holding_days(lot.acquired_at, today)}
                         for lot in group],
            })
        in_transit = sum((o.amount or Decimal(0) for o in pending), Decimal(0))
        return {
            "customer_id": c.id,
            "cash": money_str(c.cash),
            "holdings": holdings,
            "holdings_value": money_str(total_value),
            "in_transit": money_str(in_transit),
            "total": money_str(c.cash + total_value + in_transit),
            "as_of": self.iso(now),
        }

    # ------------------------------------------------------------ quotes
    def parse_order_request(self, body: dict[str, Any]) -> OrderRequest:
        side = body.get("side")
        if side not in SIDES:
            raise RuleError("validation_error", "side is subscribe or redeem", 400, field="side")
        spec = self.product(body.get("product"))
        all_raw = body.get("all", False)
        if not isinstance(all_raw, bool):
            raise RuleError("validation_error", "all is a boolean", 400, field="all")
        amount = None if body.get("amount") is None else rules.parse_decimal(body["amount"],
                                                                            "amount")
        shares = None if body.get("shares") is None else rules.parse_decimal(body["shares"],
                                                                            "shares")
        if side == "subscribe":
            if amount is None or shares is not None or all_raw:
                raise RuleError("validation_error", "a subscription needs an amount only", 400,
                                field="amount")
        elif sum((amount is not None, shares is not None, all_raw)) != 1:
            raise RuleError("validation_error", "a redemption needs one of shares, amount, all",
                            400, field="shares")
        return OrderRequest(side, spec, amount, shares, all_raw)

    async def _used_today(self, s: AsyncSession, customer_id: str, product: str,
                          trade_date: date) -> Decimal:
        used = (await s.execute(select(func.coalesce(func.sum(OrderRow.amount), 0)).where(
            OrderRow.customer_id == customer_id, OrderRow.product == product,
            OrderRow.side == "subscribe", OrderRow.trade_date == trade_date,
            OrderRow.status != "failed"))).scalar_one()
        return Decimal(str(used))

    async def _evaluate(self, s: AsyncSession, c: CustomerRow, req: OrderRequest,
                        lock: bool) -> dict[str, Any]:
        """Everything a quote says, and what an order needs (internal `_parts`)."""
        if not c.verified:  # real-name verification and a bound card come before any trade
            raise RuleError("customer_not_verified",
                            "real-name verification and a bound bank card are needed first")
        now = self.now()
        spec = req.product
        trade_date, scheduled = self.cal.trade_date(now)
        out: dict[str, Any] = {
            "side": req.side, "product": spec.code, "all": req.all,
            "suitability": {"ok": rules.risk_ok(c.risk_tolerance, spec.risk),
                            "customer_risk": c.risk_tolerance, "product_risk": spec.risk},
            "nav": str(spec.nav), "trade_date": trade_date.isoformat(), "scheduled": scheduled,
            "next_trading_open": self.iso(self.cal.next_trading_open(now)),
        }
        if req.side == "subscribe":
            assert req.amount is not None  # parse_order_request guarantees it
            used = await self._used_today(s, c.id, spec.code, trade_date)
            rules.check_subscription_amount(req.amount, spec.min_amount, spec.per_order_limit,
                                            spec.daily_limit, used, c.cash)
            fee = rules.subscription_fee(req.amount, spec.subscription_fee_rate)
            est = rules.subscription_shares(req.amount, fee, spec.nav)
            sched = rules.subscription_schedule(self.cal, trade_date)
            out.update({
                "amount": money_str(req.amount), "shares": None, "fee": money_str(fee),
                "fee_rate": str(spec.subscription_fee_rate.quantize(Decimal("0.0001"))),
                "fee_rule": "subscription", "holding_days": None, "fee_lines": [],
                "estimated_shares": _shares_str(est), "estimated_amount": None,
                "_fee": fee, "_amount": req.amount, "_shares": est, "_schedule": sched,
            })
        else:
            lots = await self._lots(s, c.id, spec.code, lock=lock)
            available = sum((lot.shares for lot in lots), Decimal(0))
            if req.all:
                shares = available
                if shares <= 0:
                    raise RuleError("insufficient_shares", "no shares of this product",
                                    available="0.00")
            elif req.shares is not None:
                shares = req.shares
            else:
                assert req.amount is not None
                shares = rules.shares_for_amount(req.amount, spec.nav)
                # "redeem ¥1,085" of exactly 1,000 shares at 1.085 must not fail on rounding.
                if shares > available and req.amount <= (available * spec.nav).quantize(CENT):
                    shares = available
            parts = rules.allocate_fifo(((lot.id, lot.acquired_at, lot.shares) for lot in lots),
                                        shares)
            red = rules.redemption_estimate(parts, spec.nav, trade_date, self.tiers)
            sched = rules.redemption_schedule(self.cal, trade_date, spec.settlement_days)
            out.update({
                "amount": money_str(red.gross), "shares": _shares_str(red.shares),
                "fee": money_str(red.fee),
                "fee_rate": None if red.fee_rate is None else _rate(red.fee_rate),
                "fee_rule": red.fee_rule, "holding_days": red.holding_days,
                "fee_lines": [{"acquired_at": ln.acquired_at.isoformat(),
                               "holding_days": ln.holding_days, "shares": _shares_str(ln.shares),
                               "rate": _rate(ln.rate), "fee": _rate(ln.fee)}
                              for ln in red.lines],
                "estimated_shares": None, "estimated_amount": money_str(red.net),
                "_fee": red.fee, "_amount": red.net, "_shares": red.shares, "_parts": parts,
                "_schedule": sched,
            })
        out["confirm_date"] = self.cal.local(sched.first_at).date().isoformat()
        out["arrival_date"] = self.cal.local(sched.second_at).date().isoformat()
        return out

    async def quote(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        req = self.parse_order_request(body)
        async with self.db.read() as s:
            c = await self._customer(s, customer_id)
            out = await self._evaluate(s, c, req, lock=False)
        return {k: v for k, v in out.items() if not k.startswith("_")}

    # ------------------------------------------------------------ step-up challenges
    def _code_hash(self, challenge_id: str, code: str) -> str:
        key = self.settings.platform_secret.encode()
        return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def _sms_text(self, lang: str, code: str, action: str, spec: ProductSpec | None,
                  amount: Decimal | None, shares: Decimal | None, all_: bool) -> str:
        minutes = self.settings.challenge_ttl_s // 60
        if lang == "en":
            if spec is None:
                what = ACCOUNT_ACTIONS.get(action, ACCOUNT_ACTIONS["view"])[1]
            else:
                qty = (format_shares_en(shares) if shares is not None else
                       "all shares" if all_ else rules.format_yuan(amount or Decimal(0)))
                what = f"to {action} {spec.name_en} {qty}"
            return (f"[{self.settings.sms_brand_en}] Code {code} {what}. Valid for {minutes} "
                    f"minutes. Never share it.")
        if spec is None:
            what = ACCOUNT_ACTIONS.get(action, ACCOUNT_ACTIONS["view"])[0]
        else:
            qty = (f"{shares:,.2f}份" if shares is not None else "全部份额" if all_ else
                   rules.format_yuan(amount or Decimal(0)))
            what = f"{ACTION_ZH[action]} {spec.name_zh} {qty}"
        return (f"【{self.settings.sms_brand_zh}】验证码 {code}，用于{what}，{minutes}分钟内有效。"
                f"请勿告诉他人。")

    async def create_challenge(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        action = body.get("action")
        if action not in ACTIONS:
            raise RuleError("validation_error", f"action is one of {', '.join(ACTIONS)}", 400,
                            field="action")
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not 8 <= len(key) <= 100:
            raise RuleError("validation_error", "idempotency_key (8-100 chars) is required", 400,
                            field="idempotency_key")
        lang = body.get("lang", "zh")
        if lang not in ("zh", "en"):
            lang = "zh"
        spec: ProductSpec | None = None
        amount = shares = None
        all_ = False
        if action in ORDER_ACTIONS:
            req = self.parse_order_request({**body, "side": action})
            spec, amount, shares, all_ = req.product, req.amount, req.shares, req.all
        now = self.now()
        async with self.db.write() as s:
            c = await self._customer(s, customer_id, lock=True)
            if c.locked_until is not None and _utc(c.locked_until) > now:
                raise RuleError("locked", "too many wrong codes", 423,
                                locked_until=self.iso(c.locked_until))
            challenge_id = f"ch_{secrets.token_hex(12)}"
            code = f"{secrets.randbelow(10**6):06d}"
            expires = now + timedelta(seconds=self.settings.challenge_ttl_s)
            s.add(ChallengeRow(
                id=challenge_id, customer_id=c.id, action=action,
                product=None if spec is None else spec.code, amount=amount, shares=shares,
                all_shares=all_, idempotency_key=key, code_hash=self._code_hash(challenge_id, code),
                created_at=now, expires_at=expires,
            ))
            s.add(SmsRow(phone=c.phone, sent_at=now,
                         text=self._sms_text(lang, code, action, spec, amount, shares, all_)))
        return {"challenge_id": challenge_id, "expires_at": self.iso(expires)}

    async def verify_challenge(self, challenge_id: str, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("code")
        if not isinstance(code, str | int) or isinstance(code, bool):
            raise RuleError("validation_error", "code is required", 400, field="code")
        code = str(code).strip()
        now = self.now()
        error: RuleError | None = None
        async with self.db.write() as s:
            ch = await s.get(ChallengeRow, challenge_id)
            if ch is None:
                raise RuleError("not_found", "no such challenge", 404)
            c = await self._customer(s, ch.customer_id, lock=True)
            if c.locked_until is not None and _utc(c.locked_until) > now:
                raise RuleError("locked", "too many wrong codes", 423,
                                locked_until=self.iso(c.locked_until))
            if ch.used_at is not None or ch.verified_at is not None:
                raise RuleError("already_used", "this code was already used", 409)
            if _utc(ch.expires_at) <= now:
                raise RuleError("expired", "this code has expired", 410)
            ok = len(code) == 6 and code.isdigit() and hmac.compare_digest(
                self._code_hash(ch.id, code), ch.code_hash)
            if ok:
                ch.verified_at = now
                c.wrong_codes = 0
            else:
                # Counted per customer across challenges: asking for new codes must not reset it.
                c.wrong_codes += 1
                if c.wrong_codes >= self.settings.challenge_max_wrong:
                    c.wrong_codes = 0
                    c.locked_until = now + timedelta(minutes=self.settings.challenge_lock_minutes)
                    error = RuleError("locked", "too many wrong codes", 423,
                                      locked_until=self.iso(c.locked_until))
                else:
                    left = self.settings.challenge_max_wrong - c.wrong_codes
                    error = RuleError("wrong_code", "the code is wrong", 422, attempts_left=left)
        if error is not None:  # raised after commit so the counter sticks
            raise error
        return {"challenge_id": challenge_id, "verified": True, "verified_at": self.iso(now)}

    # ------------------------------------------------------------ orders
    def _check_challenge(self, ch: ChallengeRow | None, customer_id: str, key: str,
                         req: OrderRequest, now: datetime) -> ChallengeRow:
        if ch is None or ch.customer_id != customer_id:
            raise RuleError("challenge_not_found", "no such challenge", 403)
        if ch.used_at is not None:
            raise RuleError("challenge_used", "this challenge was already used", 403)
        if ch.verified_at is None:
            raise RuleError("challenge_not_verified", "the code was not verified", 403)
        if _utc(ch.expires_at) <= now:
            raise RuleError("challenge_expired", "the challenge has expired", 403)
        same = (ch.action == req.side and ch.product == req.product.code
                and ch.idempotency_key == key and _eq(ch.amount, req.amount)
                and _eq(ch.shares, req.shares) and bool(ch.all_shares) == req.all)
        if not same:
            raise RuleError("challenge_mismatch", "the challenge was for another order", 403)
        return ch

    async def place_order(self, customer_id: str, key: str | None,
                          body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if key is None or not key.strip():
            raise RuleError("idempotency_key_required", "the Idempotency-Key header is required",
                            400)
        key = key.strip()
        if not 8 <= len(key) <= 100:
            raise RuleError("validation_error", "Idempotency-Key must be 8-100 characters", 400,
                            field="Idempotency-Key")
        req = self.parse_order_request(body)
        challenge_id = body.get("challenge_id")
        if not isinstance(challenge_id, str) or not challenge_id:
            raise RuleError("validation_error", "challenge_id is required", 400,
                            field="challenge_id")
        try:
            return await self._place(customer_id, key, req, challenge_id)
        except IntegrityError:
            # A concurrent request with the same key won the unique constraint: answer with it.
            async with self.db.read() as s:
                existing = await self._by_key(s, customer_id, key)
                if existing is None:
                    raise
                return 200, await self._order_json(s, self._same_or_conflict(existing, req))

    async def _by_key(self, s: AsyncSession, customer_id: str, key: str) -> OrderRow | None:
        return (await s.execute(select(OrderRow).where(
            OrderRow.customer_id == customer_id, OrderRow.idempotency_key == key))
        ).scalar_one_or_none()

    def _same_or_conflict(self, o: OrderRow, req: OrderRequest) -> OrderRow:
        same = (o.side == req.side and o.product == req.product.code
                and _eq(o.request_amount, req.amount) and _eq(o.request_shares, req.shares)
                and bool(o.request_all) == req.all)
        if not same:
            raise RuleError("idempotency_conflict", "this key was used for another order", 409)
        return o

    async def _place(self, customer_id: str, key: str, req: OrderRequest,
                     challenge_id: str) -> tuple[int, dict[str, Any]]:
        now = self.now()
        async with self.db.write() as s:
            # The customer row lock serialises this customer's orders (PostgreSQL), so a
            # repeated key sees the committed original instead of racing it.
            c = await self._customer(s, customer_id, lock=True)
            existing = await self._by_key(s, customer_id, key)
            if existing is not None:
                return 200, await self._order_json(s, self._same_or_conflict(existing, req))
            stmt = select(ChallengeRow).where(ChallengeRow.id == challenge_id)
            if not self.db.is_sqlite:
                stmt = stmt.with_for_update()
            ch = self._check_challenge((await s.execute(stmt)).scalar_one_or_none(), c.id, key,
                                       req, now)
            if req.side == "subscribe" and not rules.risk_ok(c.risk_tolerance, req.product.risk):
                raise RuleError("risk_mismatch", "the product is riskier than your tolerance",
                                customer_risk=c.risk_tolerance, product_risk=req.product.risk)
            ev = await self._evaluate(s, c, req, lock=True)
            sched: rules.Schedule = ev["_schedule"]
            trade_date = date.fromisoformat(ev["trade_date"])
            allocation = None
            if req.side == "subscribe":
                c.cash = c.cash - req.amount  # type: ignore[operator]
            else:
                parts: list[rules.LotPart] = ev["_parts"]
                lots = {lot.id: lot for lot in await self._lots(s, c.id, req.product.code)}
                for part in parts:
                    lots[part.lot_id].shares = lots[part.lot_id].shares - part.shares
                allocation = [{"lot_id": p.lot_id, "shares": str(p.shares)} for p in parts]
            first_status = "submitted" if req.side == "subscribe" else "accepted"
            order = OrderRow(
                customer_id=c.id, idempotency_key=key, challenge_id=ch.id, side=req.side,
                product=req.product.code, product_type=req.product.type,
                request_amount=req.amount, request_shares=req.shares, request_all=req.all,
                amount=ev["_amount"] if req.side == "redeem" else req.amount,
                shares=ev["_shares"], fee=ev["_fee"], nav=req.product.nav, status=first_status,
                created_at=now, trade_date=trade_date, scheduled=ev["scheduled"],
                first_at=sched.first_at.astimezone(UTC), final_at=sched.second_at.astimezone(UTC),
                next_status=sched.first, next_due_at=sched.first_at.astimezone(UTC),
                allocation=allocation,
            )
            s.add(order)
            await s.flush()
            order.order_id = f"D{self.cal.local(now):%Y%m%d}{order.id:06d}"
            s.add(OrderHistoryRow(order_pk=order.id, status=first_status, at=now))
            ch.used_at = now
            await s.flush()
            return 201, await self._order_json(s, order)

    async def _order_json(self, s: AsyncSession, o: OrderRow) -> dict[str, Any]:
        history = list((await s.execute(select(OrderHistoryRow).where(
            OrderHistoryRow.order_pk == o.id).order_by(OrderHistoryRow.id))).scalars())
        return self._order_dict(o, history)

    def _order_dict(self, o: OrderRow, history: list[OrderHistoryRow] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_id": o.order_id, "customer_id": o.customer_id, "side": o.side,
            "product": o.product, "product_type": o.product_type,
            "amount": None if o.amount is None else money_str(o.amount),
            "shares": _shares_str(o.shares), "fee": money_str(o.fee), "nav": str(o.nav),
            "status": o.status, "reason": o.reason, "created_at": self.iso(o.created_at),
            "trade_date": o.trade_date.isoformat(), "scheduled": o.scheduled,
            "confirm_date": self.cal.local(_utc(o.first_at)).date().isoformat(),
            "arrival_date": self.cal.local(_utc(o.final_at)).date().isoformat(),
            "next_step": None if o.next_status is None else {
                "status": o.next_status, "expected_at": self.iso(o.next_due_at)},
        }
        if history is not None:
            out["history"] = [{"status": h.status, "at": self.iso(h.at), "reason": h.reason}
                              for h in history]
        return out

    async def list_orders(self, customer_id: str, q: dict[str, str]) -> dict[str, Any]:
        page = _int_param(q.get("page", "1"), "page", 1, 10**6)
        size = _int_param(q.get("page_size", "20"), "page_size", 1, 100)
        async with self.db.read() as s:
            await self._customer(s, customer_id)
            stmt = select(OrderRow).where(OrderRow.customer_id == customer_id)
            if "from" in q:
                stmt = stmt.where(OrderRow.created_at >= self._day_start(q["from"], "from"))
            if "to" in q:
                stmt = stmt.where(OrderRow.created_at < self._day_start(q["to"], "to", 1))
            for name, allowed, column in (("product_type", PRODUCT_TYPES, OrderRow.product_type),
                                          ("status", ORDER_STATUSES, OrderRow.status),
                                          ("side", SIDES, OrderRow.side)):
                if name in q:
                    if q[name] not in allowed:
                        raise RuleError("validation_error", f"bad {name}", 400, field=name)
                    stmt = stmt.where(column == q[name])
            if "product" in q:
                stmt = stmt.where(OrderRow.product == q["product"].strip().upper())
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))
                     ).scalar_one()
            rows = list((await s.execute(stmt.order_by(OrderRow.created_at.desc(),
                                                       OrderRow.id.desc())
                                         .offset((page - 1) * size).limit(size))).scalars())
            items = [await self._order_json(s, o) for o in rows]
        return {"items": items, "page": page, "page_size": size, "total": total}

    def _day_start(self, raw: str, name: str, plus: int = 0) -> datetime:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise RuleError("validation_error", f"{name} is a date (YYYY-MM-DD)", 400,
                            field=name) from None
        return datetime.combine(day + timedelta(days=plus), time(0), self.tz)

    async def get_order(self, customer_id: str, order_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            await self._customer(s, customer_id)
            o = (await s.execute(select(OrderRow).where(
                OrderRow.order_id == order_id.strip().upper(),
                OrderRow.customer_id == customer_id))).scalar_one_or_none()
            if o is None:  # another customer's order is simply not found
                raise RuleError("not_found", "no such order", 404)
            return await self._order_json(s, o)

    async def sandbox_orders(self, customer_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            await self._customer(s, customer_id)
            rows = (await s.execute(select(OrderRow).where(OrderRow.customer_id == customer_id)
                                    .order_by(OrderRow.created_at.desc(), OrderRow.id.desc())
                                    )).scalars()
            return [{"order_id": o.order_id, "product": o.product, "side": o.side,
                     "amount": None if o.amount is None else money_str(o.amount),
                     "shares": _shares_str(o.shares), "status": o.status,
                     "created_at": self.iso(o.created_at)} for o in rows]

    # ------------------------------------------------------------ lifecycle
    def _order_event(self, s: AsyncSession, o: OrderRow, at: datetime) -> None:
        payload: dict[str, Any] = {
            "order_id": o.order_id, "side": o.side, "product": o.product, "status": o.status,
            "amount": None if o.amount is None else money_str(o.amount),
            "shares": _shares_str(o.shares),
        }
        if o.status == "failed":
            payload["reason"] = o.reason
        self._event(s, "order.status_changed", o.customer_id, at, payload)

    async def advance(self) -> int:
        """Move every order whose next status is due; one history row and event per step."""
        now = self.now()
        changed = 0
        async with self.db.write() as s:
            stmt = select(OrderRow).where(OrderRow.next_due_at.is_not(None),
                                          OrderRow.next_due_at <= now).order_by(OrderRow.id)
            if not self.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            for o in (await s.execute(stmt)).scalars():
                while o.next_status is not None and o.next_due_at is not None and \
                        _utc(o.next_due_at) <= now:
                    at = _utc(o.next_due_at)
                    await self._apply_step(s, o)
                    s.add(OrderHistoryRow(order_pk=o.id, status=o.status, at=at))
                    self._order_event(s, o, at)
                    changed += 1
            delay = timedelta(seconds=self.settings.complaint_ack_delay_s)
            for cp in (await s.execute(select(ComplaintRow).where(
                    ComplaintRow.status == "submitted",
                    ComplaintRow.created_at <= now - delay))).scalars():
                cp.status = "acknowledged"
                at = max(_utc(cp.created_at) + delay, _utc(cp.created_at))
                s.add(ComplaintHistoryRow(complaint_pk=cp.id, status=cp.status, at=at))
                self._complaint_event(s, cp, at)
                changed += 1
        return changed

    async def _apply_step(self, s: AsyncSession, o: OrderRow) -> None:
        step = o.next_status
        o.status = step or o.status
        if step == "confirmed":
            s.add(LotRow(customer_id=o.customer_id, product=o.product, shares=o.shares,
                         acquired_at=self.cal.local(_utc(o.first_at)).date(),
                         order_id=o.order_id))
            o.next_status, o.next_due_at = "settled", o.final_at
        elif step == "processed":
            o.next_status, o.next_due_at = "arrived", o.final_at
        elif step == "arrived":
            c = await self._customer(s, o.customer_id, lock=True)
            c.cash = c.cash + (o.amount or Decimal(0))
            o.next_status = o.next_due_at = None
        else:  # settled
            o.next_status = o.next_due_at = None

    async def fail_order(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise RuleError("validation_error", "reason is required", 400, field="reason")
        now = self.now()
        async with self.db.write() as s:
            o = (await s.execute(select(OrderRow).where(
                OrderRow.order_id == order_id.strip().upper()))).scalar_one_or_none()
            if o is None:
                raise RuleError("not_found", "no such order", 404)
            if o.status in FINAL:
                raise RuleError("order_final", f"the order is already {o.status}", 409)
            c = await self._customer(s, o.customer_id, lock=True)
            if o.side == "subscribe":
                c.cash = c.cash + (o.amount or Decimal(0))
                if o.status == "confirmed":  # shares were credited: take back what is left
                    for lot in (await s.execute(select(LotRow).where(
                            LotRow.order_id == o.order_id))).scalars():
                        lot.shares = Decimal(0)
            else:
                for part in o.allocation or []:
                    held = await s.get(LotRow, int(part["lot_id"]))
                    if held is not None:
                        held.shares = held.shares + Decimal(part["shares"])
            o.status, o.reason = "failed", reason.strip()[:500]
            o.next_status = o.next_due_at = None
            s.add(OrderHistoryRow(order_pk=o.id, status="failed", at=now, reason=o.reason))
            self._order_event(s, o, now)
            await s.flush()
            return await self._order_json(s, o)

    # ------------------------------------------------------------ complaints
    def _complaint_event(self, s: AsyncSession, cp: ComplaintRow, at: datetime) -> None:
        self._event(s, "complaint.updated", cp.customer_id, at,
                    {"complaint_id": cp.complaint_id, "status": cp.status, "result": cp.result})

    async def file_complaint(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        category = body.get("category")
        if category not in COMPLAINT_CATEGORIES:
            raise RuleError("validation_error", "unknown category", 400, field="category")
        desc = body.get("description")
        if not isinstance(desc, str) or not desc.strip() or len(desc) > 2000:
            raise RuleError("validation_error", "description (1-2000 characters) is required",
                            400, field="description")
        order_id = body.get("order_id")
        if order_id is not None and (not isinstance(order_id, str) or len(order_id) > 24):
            raise RuleError("validation_error", "order_id is a string", 400, field="order_id")
        now = self.now()
        st = self.settings
        async with self.db.write() as s:
            await self._customer(s, customer_id)
            if order_id:
                order_id = order_id.strip().upper()
                found = (await s.execute(select(OrderRow.id).where(
                    OrderRow.order_id == order_id, OrderRow.customer_id == customer_id))
                ).scalar_one_or_none()
                if found is None:
                    raise RuleError("not_found", "no such order", 404, field="order_id")
            cp = ComplaintRow(
                customer_id=customer_id, category=category, description=desc.strip(),
                order_id=order_id or None, status="submitted", created_at=now,
                first_response_due=now + timedelta(hours=st.complaint_first_response_h),
                result_due=now + timedelta(hours=st.complaint_result_h),
                final_due=self.cal.add_working_days(now, st.complaint_final_working_days)
                .astimezone(UTC),
            )
            s.add(cp)
            await s.flush()
            cp.complaint_id = f"C{self.cal.local(now):%Y%m%d}{cp.id:06d}"
            s.add(ComplaintHistoryRow(complaint_pk=cp.id, status="submitted", at=now))
            await s.flush()
            return await self._complaint_json(s, cp)

    async def _complaint_json(self, s: AsyncSession, cp: ComplaintRow) -> dict[str, Any]:
        history = (await s.execute(select(ComplaintHistoryRow).where(
            ComplaintHistoryRow.complaint_pk == cp.id).order_by(ComplaintHistoryRow.id))).scalars()
        return {
            "complaint_id": cp.complaint_id, "customer_id": cp.customer_id,
            "category": cp.category, "description": cp.description, "order_id": cp.order_id,
            "status": cp.status, "result": cp.result, "created_at": self.iso(cp.created_at),
            "first_response_due": self.iso(cp.first_response_due),
            "result_due": self.iso(cp.result_due), "final_due": self.iso(cp.final_due),
            "history": [{"status": h.status, "at": self.iso(h.at)} for h in history],
        }

    async def list_complaints(self, customer_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            await self._customer(s, customer_id)
            rows = list((await s.execute(select(ComplaintRow).where(
                ComplaintRow.customer_id == customer_id).order_by(ComplaintRow.id.desc())
            )).scalars())
            return {"items": [await self._complaint_json(s, cp) for cp in rows],
                    "total": len(rows)}

    async def get_complaint(self, customer_id: str, complaint_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            await self._customer(s, customer_id)
            cp = (await s.execute(select(ComplaintRow).where(
                ComplaintRow.complaint_id == complaint_id.strip().upper(),
                ComplaintRow.customer_id == customer_id))).scalar_one_or_none()
            if cp is None:
                raise RuleError("not_found", "no such complaint", 404)
            return await self._complaint_json(s, cp)

    async def answer_complaint(self, complaint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result = body.get("result")
        if not isinstance(result, str) or not result.strip():
            raise RuleError("validation_error", "result is required", 400, field="result")
        now = self.now()
        async with self.db.write() as s:
            cp = (await s.execute(select(ComplaintRow).where(
                ComplaintRow.complaint_id == complaint_id.strip().upper()))).scalar_one_or_none()
            if cp is None:
                raise RuleError("not_found", "no such complaint", 404)
            cp.status, cp.result = "answered", result.strip()[:2000]
            s.add(ComplaintHistoryRow(complaint_pk=cp.id, status="answered", at=now))
            self._complaint_event(s, cp, now)
            await s.flush()
            return await self._complaint_json(s, cp)

    # ------------------------------------------------------------ other hooks
    async def risk_warning(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("code", "unusual_activity")
        detail = body.get("detail", "")
        if not isinstance(code, str) or not isinstance(detail, str) or len(detail) > 2000:
            raise RuleError("validation_error", "code and detail are strings", 400, field="code")
        async with self.db.write() as s:
            await self._customer(s, customer_id)
            self._event(s, "risk.warning", customer_id, self.now(), {"code": code,
                                                                     "detail": detail})
        return {"queued": True}

    async def sms_outbox(self, phone: str) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = (await s.execute(select(SmsRow).where(SmsRow.phone == phone.strip())
                                    .order_by(SmsRow.id))).scalars()
            return [{"text": r.text, "sent_at": self.iso(r.sent_at)} for r in rows]

    async def events(self) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = (await s.execute(select(EventRow).order_by(EventRow.id))).scalars()
            return [{"event_id": e.event_id, "type": e.type, "customer_id": e.customer_id,
                     "occurred_at": self.iso(e.occurred_at), "payload": e.payload,
                     "delivered": e.delivered_at is not None, "attempts": e.attempts}
                    for e in rows]


def _rate(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001")))


def format_shares_en(shares: Decimal) -> str:
    return f"{shares:,.2f} shares"


def _eq(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Decimal(a) == Decimal(b)


def _int_param(raw: str, name: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise RuleError("validation_error", f"{name} is an integer", 400, field=name) from None
    if not lo <= value <= hi:
        raise RuleError("validation_error", f"{name} must be {lo}..{hi}", 400, field=name)
    return value
