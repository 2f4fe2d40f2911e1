"""The platform's freezable clock: real time unless a test or demo froze it."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """`now()` is aware UTC. `freeze(instant)` pins it; `freeze(None)` returns to real time."""

    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC)

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def freeze(self, instant: datetime | None) -> None:
        if instant is not None and instant.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._frozen = None if instant is None else instant.astimezone(UTC)
