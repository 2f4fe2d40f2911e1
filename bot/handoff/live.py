"""In-process fan-out of handoff events to the agent consoles connected over WebSocket."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One console connection: its agent and a bounded queue of events."""

    agent: str
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(maxsize=256))


class LiveHub:
    """Consoles subscribe; the service publishes. A slow console loses old events, never blocks
    the customer's turn (its next queue snapshot brings it back up to date)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, agent: str) -> Subscription:
        sub = Subscription(agent)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def agents_online(self) -> int:
        return len({s.agent for s in self._subs})

    def online(self) -> Counter[str]:
        return Counter(s.agent for s in self._subs)

    def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                try:
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(event)
                except (asyncio.QueueEmpty, asyncio.QueueFull):
                    pass
