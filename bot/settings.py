"""Settings from the environment (FINBOT_ prefix) and `.env`; every policy value lives here."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class Settings(BaseSettings):
    """All configuration of the bot process. Defaults are for the local demo."""

    model_config = SettingsConfigDict(env_prefix="FINBOT_", env_file=".env", extra="ignore")

    # --- processes and URLs (ARCHITECTURE.md contract) ---
    port: int = 8080
    host: str = "127.0.0.1"
    nlu_port: int = 5005
    sandbox_port: int = 8090
    nlu_url: str | None = None  # derived from nlu_port when unset
    backend_url: str | None = None  # derived from sandbox_port when unset
    database_url: str | None = None  # default: SQLite file under var/
    sandbox_database_url: str | None = None  # the sandbox's own DB; default SQLite under var/
    telegram_token: str | None = None
    telegram_webhook_url: str | None = None
    telegram_secret: str | None = None
    telegram_base_url: str | None = None  # tests point PTB at our fake Bot API server
    rest_token: str | None = None
    platform_secret: str = "dev-platform-secret-change-me"
    keys_file: Path = VAR / "keys.json"
    log_level: str = "INFO"
    cookie_secret: str | None = None  # web chat / console cookie signing; derived from keys when unset
    public_url: str | None = None  # how customers reach this server (download links)

    # --- NLU client ---
    nlu_timeout_s: float = 1.0
    nlu_breaker_failures: int = 3
    nlu_breaker_reset_s: float = 10.0
    nlu_confirm_threshold: float = 0.5  # below this the engine asks "did you mean ...?"

    # --- backend client ---
    backend_timeout_s: float = 2.0
    backend_retries: int = 2

    # --- step-up policy ---
    stepup_view_minutes: int = 10
    stepup_max_wrong: int = 5
    stepup_lock_minutes: int = 30
    link_max_wrong: int = 5
    link_wrong_window_minutes: int = 15

    # --- handoff ---
    staffed_hours: str = "09:00-21:00"  # Asia/Shanghai, every day
    handoff_avg_handle_minutes: int = 5
    handoff_offline_answer_hours: int = 24
    handoff_wait_alert_minutes: int = 10  # supervisors see an SLA alert past this wait

    # --- complaints SLA (hours / working days), mirrored from the platform's config ---
    complaint_first_response_h: int = 24
    complaint_result_h: int = 48
    complaint_final_working_days: int = 7

    # --- policy wording in FAQ answers, mirrored from the platform's config (fee tiers are
    # read from the platform's catalog when it answers; these are the fallback) ---
    trading_hours: str = "09:00-17:00"  # working days, Asia/Shanghai
    trade_confirm_hours: int = 24
    settlement_max_working_days: int = 2
    one_time_code_minutes: int = 5
    redemption_fee_tiers: str = "0-6:0.015,7-365:0.005,366-:0"  # days:rate

    # --- notifications ---
    telegram_rate_per_s: float = 30.0
    telegram_per_chat_per_s: float = 1.0
    outbox_workers: int = 1
    outbox_max_attempts: int = 8
    outbox_poll_s: float = 0.2
    quiet_hours: str = "22:00-08:00"
    event_max_age_s: int = 300

    # --- data protection ---
    audit_retention_days: int = 3 * 366
    max_message_chars: int = 2000
    max_body_bytes: int = 64 * 1024

    # --- demo ---
    demo_seed: bool = True

    # Redemption fee shown in explanations comes from the platform; only wording lives here.
    disclaimer_amount_places: int = Field(default=2)

    def resolved_nlu_url(self) -> str:
        return (self.nlu_url or f"http://127.0.0.1:{self.nlu_port}").rstrip("/")

    def resolved_backend_url(self) -> str:
        return (self.backend_url or f"http://127.0.0.1:{self.sandbox_port}").rstrip("/")

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{VAR / 'finbot.sqlite'}"

    def resolved_sandbox_database_url(self) -> str:
        return self.sandbox_database_url or f"sqlite+aiosqlite:///{VAR / 'sandbox.sqlite'}"

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings(...)` instead)."""
    return Settings()


ZERO = Decimal("0")
