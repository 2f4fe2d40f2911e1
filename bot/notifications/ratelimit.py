"""Pacing for channels with limits (Telegram: ~30 messages/s overall, 1/s per chat)."""

from __future__ import annotations

import asyncio
import time
from collections import deque

# One send delayed by a stall can arrive together with the next: stay one message per second
# under the limit so such a pair still fits Telegram's window.
MARGIN = 0.97


class Pacer:
    """An overall minimum spacing between sends plus a per-chat one.

    ``wait_overall()`` sleeps until the next send is allowed; ``chat_ready_in(chat)`` says how
    long a chat must still wait, so the caller can reschedule it instead of blocking others."""

    def __init__(self, overall_per_s: float, per_chat_per_s: float) -> None:
        self._interval = 1.0 / (overall_per_s * MARGIN) if overall_per_s > 0 else 0.0
        self._chat_interval = 1.0 / (per_chat_per_s * MARGIN) if per_chat_per_s > 0 else 0.0
        self._next = 0.0
        self._chat_last: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.sending = asyncio.Lock()  # held by the one send in progress (see the sender)
        # Completion times of the last `limit` sends. A send starts only a full window after
        # the send `limit` places back *completed*: its arrival at the channel was earlier
        # still, so however arrivals bunch, no window ever holds more than `limit`.
        self._window = 1.0
        self._done: deque[float] = deque(maxlen=max(1, int(overall_per_s)))
        self._windowed = overall_per_s > 0
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """The channel said 429: everyone waits ``seconds``."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def chat_ready_in(self, chat: str) -> float:
        last = self._chat_last.get(chat)
        if last is None or not self._chat_interval:
            return 0.0
        return max(0.0, last + self._chat_interval - time.monotonic())

    async def wait_overall(self) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next, self._paused_until)
            if self._windowed and len(self._done) == self._done.maxlen:
                start = max(start, self._done[0] + self._window + 0.01)
            self._next = start + self._interval
        delay = start - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def sent(self, chat: str) -> None:
        """Call when a send has completed (its answer came back)."""
        self._chat_last[chat] = time.monotonic()
        self._done.append(self._chat_last[chat])
        if len(self._chat_last) > 50_000:  # bounded memory: forget chats idle for a minute
            cutoff = time.monotonic() - 60
            self._chat_last = {c: t for c, t in self._chat_last.items() if t > cutoff}
