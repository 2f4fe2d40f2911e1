"""HTTP client of the Rasa NLU server: normalised Understanding, timeout and circuit breaker."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import aiohttp

from bot.dialogue.types import Entity, Understanding
from bot.normalize import find_amounts, find_products, find_shares, normalise_entity
from bot.vocabulary import is_noise

__all__ = ["NLUClient", "UNAVAILABLE", "understanding_from_rasa", "pattern_entities"]

log = logging.getLogger(__name__)

UNAVAILABLE = "nlu_unavailable"
FALLBACK = "nlu_fallback"
MAX_TEXT = 1000  # Rasa's cost grows with length; nobody types a 1000-character question
RANKING_SIZE = 5

# The platform issues D/C + 14 digits (D20261125000123); older examples have 10.
_ORDER_ID = re.compile(r"(?<![A-Za-z0-9])[Dd](?:\d{14}|\d{10})(?!\d)")
_COMPLAINT_ID = re.compile(r"(?<![A-Za-z0-9])[Cc](?:\d{14}|\d{10})(?!\d)")
_ALL_WORDS = re.compile(r"全部|所有|全都|清仓|全仓|\ball\b|\beverything\b|\bentire\b", re.I)
# Intents where "全部" / "all" means the whole holding rather than "all records".
_ALL_INTENTS = {"redeem_product", "inform"}


def _faq_key(payload: dict[str, Any]) -> str | None:
    intent = payload.get("intent") or {}
    full = intent.get("full_retrieval_intent_name")
    if isinstance(full, str) and full.startswith("faq/"):
        return full
    selector = (payload.get("response_selector") or {}).get("faq") or {}
    key = (selector.get("response") or {}).get("intent_response_key")
    return key if isinstance(key, str) and key.startswith("faq/") else None


def pattern_entities(text: str, intent: str, have: set[str]) -> list[Entity]:
    """Entities the regular patterns find that the model did not (names already in `have`)."""
    out: list[Entity] = []
    if "order_id" not in have:
        out += [Entity("order_id", m.group().upper()) for m in _ORDER_ID.finditer(text)][:1]
    if "complaint_id" not in have:
        out += [Entity("complaint_id", m.group().upper()) for m in _COMPLAINT_ID.finditer(text)][:1]
    if "shares" not in have:
        shares = find_shares(text)
        if shares:
            value = normalise_entity("shares", str(shares[0][2]))
            if value:
                out.append(Entity("shares", value))
    if "amount" not in have and "shares" not in have and not any(e.entity == "shares" for e in out):
        amounts = find_amounts(text)
        if amounts:
            value = normalise_entity("amount", str(amounts[0][2]))
            if value:
                out.append(Entity("amount", value))
    if "product" not in have:
        products = find_products(text)
        if products:
            out.append(Entity("product", products[0][2]))
    if "all" not in have and intent in _ALL_INTENTS and _ALL_WORDS.search(text):
        out.append(Entity("all", "true"))
    return out


def _join_split_periods(text: str, raw: list[Any]) -> list[Any]:
    """"last week's" comes back as two `period` pieces ("last", "week"): one span again."""
    out: list[Any] = []
    for item in raw:
        prev = out[-1] if out else None
        if (
            isinstance(item, dict) and isinstance(prev, dict)
            and item.get("entity") == prev.get("entity") == "period"
            and isinstance(item.get("start"), int) and isinstance(prev.get("end"), int)
            and 0 <= item["start"] - prev["end"] <= 1
        ):
            joined = text[prev["start"] : item["end"]]
            out[-1] = {**prev, "end": item["end"], "value": joined}
            continue
        out.append(item)
    return out


def understanding_from_rasa(text: str, payload: dict[str, Any]) -> Understanding:
    """Turn a /model/parse answer into our Understanding (faq/<topic>, normalised entities)."""
    intent_block = payload.get("intent") or {}
    intent = str(intent_block.get("name") or FALLBACK)
    confidence = float(intent_block.get("confidence") or 0.0)
    if is_noise(text):  # keyboard mashing: the model's pick would be arbitrary
        intent = FALLBACK
    faq = _faq_key(payload)
    if intent == "faq":
        intent = faq or FALLBACK
    ranking: list[tuple[str, float]] = []
    for item in payload.get("intent_ranking") or []:
        name = str(item.get("name"))
        if name == "faq":
            name = faq or name
        ranking.append((name, float(item.get("confidence") or 0.0)))
    entities: list[Entity] = []
    amounts = find_amounts(text)
    for raw in _join_split_periods(text, payload.get("entities") or []):
        name = str(raw.get("entity") or "")
        start, end = raw.get("start"), raw.get("end")
        span = text[start:end] if isinstance(start, int) and isinstance(end, int) else None
        if name == "amount" and isinstance(start, int) and isinstance(end, int):
            if re.match(r"\s*(份|units?\b|shares?\b)", text[end:], re.I):
                name = "shares"  # "赎回1000份": the number counts shares, not yuan
            else:
                # the model sometimes tags "1.5" of "1.5万": prefer the full pattern span
                for a, b, _ in amounts:
                    if a <= start < b or start <= a < end:
                        span = text[min(a, start) : max(b, end)]
                        break
        value = normalise_entity(
            name, span, None if raw.get("value") is None else str(raw.get("value"))
        )
        if value is None:
            continue
        entity = Entity(name, value)
        if entity not in entities and not any(
            e.entity == name for e in entities if name in ("amount", "shares")
        ):
            entities.append(entity)
    have = {e.entity for e in entities}
    entities += pattern_entities(text, intent, have)
    return Understanding(
        text=text,
        intent=intent,
        confidence=confidence,
        entities=tuple(entities),
        ranking=tuple(ranking[:RANKING_SIZE]),
    )


class NLUClient:
    """Async client of the Rasa server with a timeout and a consecutive-failure circuit breaker.

    url: the server's base URL (``http://127.0.0.1:5005``).
    timeout: seconds for one parse before it counts as a failure.
    breaker_failures: consecutive failures that open the breaker.
    breaker_reset_s: how long an open breaker answers "unavailable" without trying; then one
        trial request decides whether it closes again.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 1.0,
        breaker_failures: int = 3,
        breaker_reset_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.breaker_failures = breaker_failures
        self.breaker_reset_s = breaker_reset_s
        self._session: aiohttp.ClientSession | None = None
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = asyncio.Lock()

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=32),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> NLUClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def breaker_open(self) -> bool:
        """True while the breaker refuses to call the server."""
        return (
            self._opened_at is not None
            and time.monotonic() - self._opened_at < self.breaker_reset_s
        )

    async def ready(self) -> bool:
        """True when the server answers /status with a model loaded (for /readyz)."""
        await self.start()
        assert self._session is not None  # noqa: S101 - start() just created it
        try:
            async with self._session.get(f"{self.url}/status") as resp:
                if resp.status != 200:
                    return False
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return False
        return bool(isinstance(body, dict) and body.get("model_file"))

    def _degraded(self, text: str) -> Understanding:
        # Patterns still find ids and amounts, so the engine can keep a task going.
        return Understanding(
            text=text,
            intent=UNAVAILABLE,
            confidence=0.0,
            entities=tuple(pattern_entities(text, UNAVAILABLE, set())),
            degraded=True,
        )

    async def parse(self, text: str) -> Understanding:
        """Understand one message; never raises for server trouble (degraded instead)."""
        text = text.strip()
        if not text:
            return Understanding(text="", intent=FALLBACK, confidence=0.0)
        if self.breaker_open:
            return self._degraded(text)
        half_open = self._opened_at is not None
        if half_open and self._trial.locked():
            return self._degraded(text)  # someone else is already probing the server
        if half_open:
            async with self._trial:
                return await self._call(text)
        return await self._call(text)

    async def _call(self, text: str) -> Understanding:
        await self.start()
        assert self._session is not None  # noqa: S101 - start() just created it
        try:
            async with self._session.post(
                f"{self.url}/model/parse", json={"text": text[:MAX_TEXT]}
            ) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, resp.history, status=resp.status
                    )
                payload = await resp.json(content_type=None)
            if not isinstance(payload, dict):
                raise ValueError("NLU answer is not an object")
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            self._record_failure(type(exc).__name__)
            return self._degraded(text)
        self._failures = 0
        if self._opened_at is not None:
            log.info("nlu breaker closed: server answers again")
        self._opened_at = None
        return understanding_from_rasa(text, payload)

    def _record_failure(self, reason: str) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.breaker_failures:
            if self._opened_at is None:
                # the text is never logged: it may hold personal data
                log.warning("nlu breaker open after %d failures (%s)", self._failures, reason)
            self._opened_at = time.monotonic()
