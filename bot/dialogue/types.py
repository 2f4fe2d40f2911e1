"""What a handler receives and returns. Handlers: ``async def handle(turn, ctx) -> Reply``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.types import Button, Incoming, Lang, Outgoing

if TYPE_CHECKING:
    from backend_client.client import PlatformClient
    from bot.settings import Settings
    from bot.store.db import Database

Reply = list[Outgoing]


@dataclass(frozen=True, slots=True)
class Entity:
    """A normalised entity: ``amount`` "15000", ``product`` "BOND01", ``all`` "true" ..."""

    entity: str
    value: str


@dataclass(frozen=True, slots=True)
class Understanding:
    """The NLU result after normalisation (see bot/nlu_client.py)."""

    text: str
    intent: str  # "buy_product", "faq/trading_hours", "nlu_fallback", ...
    confidence: float
    entities: tuple[Entity, ...] = ()
    ranking: tuple[tuple[str, float], ...] = ()  # top intents, best first
    degraded: bool = False  # NLU server unavailable: intent is "nlu_unavailable"

    def first(self, name: str) -> str | None:
        for e in self.entities:
            if e.entity == name:
                return e.value
        return None


@dataclass(slots=True)
class Turn:
    """One customer message being handled."""

    message: Incoming
    nlu: Understanding
    lang: Lang


class Translator(Protocol):
    def __call__(self, key: str, /, **kwargs: Any) -> str: ...


@dataclass(slots=True)
class Context:
    """Everything a handler may use. No SQL and no channel objects in handlers."""

    settings: Settings
    backend: PlatformClient
    db: Database
    lang: Lang
    t: Translator  # t("balance.total", amount=...) in the conversation's language
    conversation_id: int
    customer_id: str | None  # platform customer id when the chat is linked
    state: dict[str, Any]  # the conversation's persisted dialogue state (JSON-able)
    now: Callable[[], Awaitable[datetime]]  # the platform's "now" (Asia/Shanghai aware)
    extras: dict[str, Any] = field(default_factory=dict)
    # Added by the engine (defaults keep older constructors working):
    channel: str = "rest"  # where the conversation lives (for handoff / notifications)
    sender: str = ""
    verified_at: datetime | None = None  # last successful verification (link or SMS code)


Handler = Callable[[Turn, Context], Awaitable[Reply]]


def buttons(*pairs: tuple[str, str]) -> tuple[Button, ...]:
    """Shorthand: buttons(("余额", "/check_balance"), ...)."""
    return tuple(Button(title=t, payload=p) for t, p in pairs)
