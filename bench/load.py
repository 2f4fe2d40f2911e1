"""A bounded closed-loop load client on loopback: N workers, a deadline, latency percentiles."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LevelResult:
    name: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, int(q) - 1))]


async def run_level(
    name: str, concurrency: int, seconds: float,
    one: Callable[[int, int], Awaitable[int]],
) -> LevelResult:
    """Run ``one(worker, i)`` in ``concurrency`` loops until ``seconds`` pass.

    ``one`` does one logical step and returns how many requests it made (latency is per
    request: the step's time divided by its requests); an exception counts as an error."""
    latencies: list[float] = []
    errors = 0
    count = 0
    deadline = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal errors, count
        i = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                n = await one(w, i)
            except Exception:  # noqa: BLE001 — a failed request is a data point, not a crash
                errors += 1
                n = 1
            elapsed = time.perf_counter() - started
            count += n
            latencies.extend([elapsed / max(1, n) * 1000] * max(1, n))
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    took = time.monotonic() - started
    return LevelResult(
        name=name, concurrency=concurrency, seconds=round(took, 2), requests=count, errors=errors,
        per_s=round(count / took, 1) if took else 0.0,
        p50_ms=round(percentile(latencies, 50), 1), p95_ms=round(percentile(latencies, 95), 1),
        p99_ms=round(percentile(latencies, 99), 1),
    )
