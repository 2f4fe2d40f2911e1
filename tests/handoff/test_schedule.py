"""Staffed hours in Asia/Shanghai (including windows across midnight) and the rough wait."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.handoff.schedule import ScheduleError, StaffedHours, eta_minutes

SH = "+08:00"


def at(local: str) -> datetime:
    return datetime.fromisoformat(local + SH)


def test_day_window() -> None:
    hours = StaffedHours.parse("09:00-21:00")
    assert hours.is_staffed(at("2026-11-25T09:00:00")) and hours.is_staffed(at("2026-11-25T20:59:00"))
    assert not hours.is_staffed(at("2026-11-25T21:00:00")) and not hours.is_staffed(at("2026-11-25T08:59:00"))
    # 22:00 in Shanghai is 14:00 UTC: the rule is about Shanghai time, not the server's.
    assert not hours.is_staffed(datetime(2026, 11, 25, 14, 0, tzinfo=UTC))
    assert hours.next_opening(at("2026-11-25T22:00:00")) == at("2026-11-26T09:00:00")
    assert hours.next_opening(at("2026-11-25T07:00:00")) == at("2026-11-25T09:00:00")


def test_night_window_and_always() -> None:
    night = StaffedHours.parse("20:00-02:00")
    assert night.is_staffed(at("2026-11-25T23:00:00")) and night.is_staffed(at("2026-11-26T01:59:00"))
    assert not night.is_staffed(at("2026-11-26T12:00:00"))
    assert StaffedHours.parse("00:00-00:00").is_staffed(at("2026-11-26T03:00:00"))
    with pytest.raises(ScheduleError):
        StaffedHours.parse("nine to five")


def test_eta() -> None:
    assert eta_minutes(1, 5, 0) == 5
    assert eta_minutes(3, 5, 2) == 8
    assert eta_minutes(1, 0, 1) == 1  # never "0 minutes" while someone is ahead of you
