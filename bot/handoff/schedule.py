"""Staffed hours of the human agents (Asia/Shanghai) and the customer's rough waiting time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class ScheduleError(ValueError):
    """The ``staffed_hours`` setting cannot be read."""


@dataclass(frozen=True, slots=True)
class StaffedHours:
    """A daily window such as 09:00-21:00 local time; an end before the start wraps midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> StaffedHours:
        try:
            a, b = (part.strip() for part in text.split("-", 1))
            start, end = time.fromisoformat(a), time.fromisoformat(b)
        except ValueError as exc:
            raise ScheduleError(f"staffed_hours must look like 09:00-21:00, got {text!r}") from exc
        return cls(start, end)

    @property
    def always(self) -> bool:
        return self.start == self.end

    def is_staffed(self, now: datetime) -> bool:
        if self.always:
            return True
        local = now.astimezone(SHANGHAI).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_opening(self, now: datetime) -> datetime:
        """The next instant the window opens (``now`` itself when staffed)."""
        if self.is_staffed(now):
            return now
        local = now.astimezone(SHANGHAI)
        candidate = local.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def eta_minutes(position: int, avg_handle_minutes: int, agents_online: int) -> int:
    """Rough wait: the tickets ahead shared among the agents online, at least one minute."""
    agents = max(1, agents_online)
    return max(1, math.ceil(position * avg_handle_minutes / agents))
