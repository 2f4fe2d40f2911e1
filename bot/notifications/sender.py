"""Outbox workers: claim due messages, pace them per channel, deliver, retry or give up."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from aiohttp import web

from bot.app import Delivery
from bot.channels.errors import ChannelBlocked, ChannelRateLimited
from bot.metrics import OUTBOX_FAILED, OUTBOX_PENDING, OUTBOX_SENT
from bot.notifications.ratelimit import Pacer
from bot.notifications.render import from_body
from bot.settings import Settings
from bot.store import notifications as store
from bot.store.db import Database, utcnow

log = logging.getLogger("finbot.outbox")

LEASE_S = 30.0
BATCH = 20


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: 1 s, 2 s, 4 s ... capped at 5 minutes."""
    return random.uniform(0.5, 1.0) * min(300.0, 2.0 ** max(0, attempts))


class OutboxSender:
    """One or more workers in this process sharing the channels' pacing."""

    def __init__(self, settings: Settings, db: Database, delivery: Delivery) -> None:
        self.settings = settings
        self.db = db
        self.delivery = delivery
        self.pacers = {"telegram": Pacer(settings.telegram_rate_per_s, settings.telegram_per_chat_per_s)}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    def start(self) -> None:
        workers = max(1, self.settings.outbox_workers) if not self.db.is_sqlite else 1
        self._tasks = [asyncio.create_task(self._worker(i), name=f"outbox-{i}") for i in range(workers)]

    def wake(self) -> None:
        """Something was enqueued in this process: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        # Workers finish the message in hand and leave; cancelling one inside a database
        # transaction can hang aiosqlite, so we only cancel what does not stop in time.
        self._stop.set()
        self._wake.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _worker(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:  # noqa: BLE001 — a worker must survive a database hiccup
                log.exception("outbox worker %d: batch failed", index)
                handled = 0
            if handled == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.outbox_poll_s)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were handled."""
        async with self.db.begin() as session:
            batch = await store.claim_due(session, limit=BATCH, lease_s=LEASE_S,
                                          skip_locked=not self.db.is_sqlite,
                                          channels=self.delivery.channels())
        for message in batch:
            if self._stop.is_set():
                break  # the lease expires and another worker (or our restart) takes it
            await self._deliver(message)
        return len(batch)

    async def _deliver(self, message: store.OutboxMessage) -> None:
        pacer = self.pacers.get(message.channel)
        if pacer is not None:
            wait_chat = pacer.chat_ready_in(message.sender)
            if wait_chat > 0:  # reschedule instead of holding up other chats
                async with self.db.begin() as session:
                    await store.mark_retry(session, message.id, error="paced",
                                           at=utcnow() + timedelta(seconds=wait_chat), count_attempt=False)
                return
            await pacer.wait_overall()
        try:
            await self.delivery.push(message.channel, message.sender, from_body(message.body))
        except ChannelRateLimited as exc:
            if pacer is not None:
                pacer.pause(exc.retry_after)
            OUTBOX_FAILED.labels(message.channel, "rate_limited").inc()
            async with self.db.begin() as session:
                await store.mark_retry(session, message.id, error="rate limited", count_attempt=False,
                                       at=utcnow() + timedelta(seconds=exc.retry_after))
            return
        except ChannelBlocked:
            OUTBOX_FAILED.labels(message.channel, "blocked").inc()
            async with self.db.begin() as session:
                await store.mark_final(session, message.id, status="blocked", error="blocked by the customer")
                conversation_id = await store.conversation_id_for(session, message.channel, message.sender)
                if conversation_id is not None:
                    await store.set_prefs(session, conversation_id, blocked=True)
            return
        except Exception as exc:  # noqa: BLE001 — any other failure is retried, then dead-lettered
            OUTBOX_FAILED.labels(message.channel, "error").inc()
            attempts = message.attempts + 1
            error = type(exc).__name__
            async with self.db.begin() as session:
                if attempts >= self.settings.outbox_max_attempts:
                    await store.mark_final(session, message.id, status="dead", error=error)
                    log.warning("outbox message %d dead after %d attempts (%s)", message.id, attempts, error)
                else:
                    await store.mark_retry(session, message.id, error=error,
                                           at=utcnow() + timedelta(seconds=backoff_seconds(attempts)))
            return
        if pacer is not None:
            pacer.sent(message.sender)
        OUTBOX_SENT.labels(message.channel).inc()
        async with self.db.begin() as session:
            await store.mark_sent(session, message.id)


SENDER = web.AppKey("outbox_sender", OutboxSender)


async def refresh_gauge(db: Database) -> None:
    async with db.begin() as session:
        counts = await store.counts(session)
    OUTBOX_PENDING.set(counts.get("pending", 0) + counts.get("sending", 0))
