"""Sandbox platform settings (FINBOT_ prefix): ports, database and every policy value."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class FeeTier(BaseModel):
    """Redemption fee rate for holdings of min_days..max_days (None: no upper bound)."""

    min_days: int
    max_days: int | None
    rate: Decimal


class ProductSpec(BaseModel):
    """One catalog product. Rates are fractions; the return range is descriptive, in % a year."""

    code: str
    name_zh: str
    name_en: str
    type: str
    risk: str
    nav: Decimal
    term: str
    settlement_days: int
    min_amount: Decimal
    per_order_limit: Decimal
    daily_limit: Decimal
    subscription_fee_rate: Decimal
    return_low_pct: Decimal
    return_high_pct: Decimal


# Subscription fee rates (policy, DOMAIN.md leaves them open): money market funds charge
# none, bond funds little, hybrids and equity the usual retail rates after online discount.
DEFAULT_CATALOG: list[ProductSpec] = [
    ProductSpec(code="MMF01", name_zh="稳盈货币A", name_en="Steady Money Market A",
                type="money_market", risk="R1", nav=Decimal("1.0000"), term="short",
                settlement_days=0, min_amount=Decimal("1"), per_order_limit=Decimal("1000000"),
                daily_limit=Decimal("2000000"), subscription_fee_rate=Decimal("0"),
                return_low_pct=Decimal("1.0"), return_high_pct=Decimal("3.0")),
    ProductSpec(code="BOND01", name_zh="安心短债", name_en="Short-term Bond",
                type="bond", risk="R2", nav=Decimal("1.0850"), term="medium",
                settlement_days=1, min_amount=Decimal("100"), per_order_limit=Decimal("500000"),
                daily_limit=Decimal("1000000"), subscription_fee_rate=Decimal("0.003"),
                return_low_pct=Decimal("3.0"), return_high_pct=Decimal("8.0")),
    ProductSpec(code="MIX01", name_zh="均衡混合", name_en="Balanced Hybrid",
                type="hybrid", risk="R3", nav=Decimal("1.5230"), term="long",
                settlement_days=2, min_amount=Decimal("100"), per_order_limit=Decimal("200000"),
                daily_limit=Decimal("500000"), subscription_fee_rate=Decimal("0.012"),
                return_low_pct=Decimal("5.0"), return_high_pct=Decimal("12.0")),
    ProductSpec(code="IDX300", name_zh="沪深300指数增强", name_en="CSI 300 Index Enhanced",
                type="equity_index", risk="R4", nav=Decimal("2.3410"), term="long",
                settlement_days=2, min_amount=Decimal("100"), per_order_limit=Decimal("200000"),
                daily_limit=Decimal("500000"), subscription_fee_rate=Decimal("0.010"),
                return_low_pct=Decimal("8.0"), return_high_pct=Decimal("15.0")),
    ProductSpec(code="QDII01", name_zh="全球科技QDII", name_en="Global Tech QDII",
                type="qdii", risk="R5", nav=Decimal("1.8760"), term="long",
                settlement_days=2, min_amount=Decimal("1000"), per_order_limit=Decimal("100000"),
                daily_limit=Decimal("200000"), subscription_fee_rate=Decimal("0.015"),
                return_low_pct=Decimal("8.0"), return_high_pct=Decimal("15.0")),
]


def _days(*spans: tuple[str, str]) -> list[date]:
    out: list[date] = []
    for first, last in spans:
        d, end = date.fromisoformat(first), date.fromisoformat(last)
        while d <= end:
            out.append(d)
            d = date.fromordinal(d.toordinal() + 1)
    return out


# Exchange closures for Chinese public holidays. 2026: the State Council's schedule.
# 2027: provisional (festival dates from the lunar calendar) — replace when published.
# Weekend make-up working days do not reopen the exchanges, so they are not listed.
DEFAULT_HOLIDAYS: list[date] = _days(
    ("2026-01-01", "2026-01-03"),  # 元旦
    ("2026-02-15", "2026-02-23"),  # 春节
    ("2026-04-04", "2026-04-06"),  # 清明节
    ("2026-05-01", "2026-05-05"),  # 劳动节
    ("2026-06-19", "2026-06-21"),  # 端午节
    ("2026-09-25", "2026-09-27"),  # 中秋节
    ("2026-10-01", "2026-10-07"),  # 国庆节
    ("2027-01-01", "2027-01-03"),  # 元旦
    ("2027-02-05", "2027-02-13"),  # 春节 (provisional)
    ("2027-04-03", "2027-04-05"),  # 清明节 (provisional)
    ("2027-05-01", "2027-05-05"),  # 劳动节 (provisional)
    ("2027-06-09", "2027-06-09"),  # 端午节 (provisional)
    ("2027-09-15", "2027-09-15"),  # 中秋节 (provisional)
    ("2027-10-01", "2027-10-07"),  # 国庆节 (provisional)
)

DEFAULT_REDEMPTION_TIERS: list[FeeTier] = [
    FeeTier(min_days=0, max_days=6, rate=Decimal("0.015")),
    FeeTier(min_days=7, max_days=365, rate=Decimal("0.005")),
    FeeTier(min_days=366, max_days=None, rate=Decimal("0")),
]


class SandboxSettings(BaseSettings):
    """Everything the sandbox platform needs. Defaults are for the local demo."""

    model_config = SettingsConfigDict(env_prefix="FINBOT_", env_file=".env", extra="ignore")

    # --- process ---
    sandbox_port: int = 8090
    sandbox_host: str = "127.0.0.1"
    sandbox_database_url: str | None = None  # default: SQLite file var/sandbox.sqlite
    platform_secret: str = "dev-platform-secret-change-me"
    port: int = 8080  # the bot's port: events go to http://127.0.0.1:{port}/platform/events
    events_url: str | None = None  # overrides the derived events URL
    event_delivery: bool = True  # tests without a bot turn delivery off
    max_body_bytes: int = 64 * 1024

    # --- background tasks ---
    advance_interval_s: float = 0.5
    delivery_interval_s: float = 0.2
    delivery_timeout_s: float = 2.0
    delivery_backoff_max_s: float = 30.0

    # --- trading calendar (Asia/Shanghai) ---
    timezone: str = "Asia/Shanghai"
    trading_open: time = time(9, 0)
    trading_close: time = time(17, 0)  # exclusive: 17:00:00 is outside the window
    holidays: list[date] = Field(default_factory=lambda: list(DEFAULT_HOLIDAYS))

    # --- catalog and fees ---
    catalog: list[ProductSpec] = Field(default_factory=lambda: list(DEFAULT_CATALOG))
    redemption_fee_tiers: list[FeeTier] = Field(
        default_factory=lambda: list(DEFAULT_REDEMPTION_TIERS)
    )

    # --- step-up and linking ---
    challenge_ttl_s: int = 5 * 60
    challenge_max_wrong: int = 5
    challenge_lock_minutes: int = 30
    link_code_ttl_hours: int = 72

    # --- complaints SLA ---
    complaint_first_response_h: int = 24
    complaint_result_h: int = 48
    complaint_final_working_days: int = 7
    complaint_ack_delay_s: float = 0.0  # the advancer acknowledges after this long

    # --- SMS ---
    sms_brand_zh: str = "理财平台"
    sms_brand_en: str = "Wealth Platform"

    def resolved_database_url(self) -> str:
        return self.sandbox_database_url or f"sqlite+aiosqlite:///{VAR / 'sandbox.sqlite'}"

    def resolved_events_url(self) -> str:
        return self.events_url or f"http://127.0.0.1:{self.port}/platform/events"

    def product(self, code: str) -> ProductSpec | None:
        code = code.strip().upper()
        return next((p for p in self.catalog if p.code == code), None)
