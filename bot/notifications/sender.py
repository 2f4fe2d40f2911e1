"""Outbox workers: claim due messages, pace them per channel, deliver, retry or give up."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

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
BATCH = 100
RECORD_EVERY = 20  # a crash re-sends at most this many already-sent messages


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
        self._recording = asyncio.Semaphore(2)
        self._pending_records: set[asyncio.Task[None]] = set()

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
        # After the workers: a worker that stopped mid-batch records what it had sent on its
        # way out, and those messages must be marked sent before the process exits.
        if self._pending_records:
            await asyncio.wait(set(self._pending_records), timeout=5)

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
        """Claim one batch, send it paced, record every outcome in one commit.

        A crash between a send and the commit re-sends at most this batch after the lease
        expires (at-least-once; duplicates are bounded by the batch size)."""
        async with self.db.begin() as session:
            batch = await store.claim_due(session, limit=BATCH, lease_s=LEASE_S,
                                          skip_locked=not self.db.is_sqlite,
                                          channels=self.delivery.channels())
        if not batch:
            return 0
        outcomes: list[Outcome] = []
        for message in batch:
            if self._stop.is_set():
                break  # the lease expires and another worker (or our restart) takes it
            pacer = self.pacers.get(message.channel)
            if pacer is not None:
                wait_chat = pacer.chat_ready_in(message.sender)
                if wait_chat > 0:  # reschedule instead of holding up other chats
                    outcomes.append(Outcome(message, "paced", wait_chat))
                    continue
                # One send at a time per paced channel in this process: a send delayed after
                # its slot would otherwise arrive together with the next and break the limit.
                async with pacer.sending:
                    await pacer.wait_overall()
                    outcomes.append(await self._push(message))
                    pacer.sent(message.sender)
            else:
                outcomes.append(await self._push(message))
            if len(outcomes) >= RECORD_EVERY:
                await self._record_later(outcomes)
                outcomes = []
        await self._record_later(outcomes)
        return len(batch)

    async def _record_later(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        # Record this batch while the next one is already being sent (at most two pending).
        await self._recording.acquire()
        task = asyncio.create_task(self._finish(outcomes))
        self._pending_records.add(task)
        task.add_done_callback(self._pending_records.discard)

    async def _finish(self, outcomes: list[Outcome]) -> None:
        try:
            sent = [o.message for o in outcomes if o.kind == "sent"]
            async with self.db.begin() as session:
                await store.mark_sent(session, [m.id for m in sent])
                for outcome in outcomes:
                    if outcome.kind != "sent":
                        await self._record(session, outcome)
            for message in sent:
                OUTBOX_SENT.labels(message.channel).inc()
        except Exception:  # noqa: BLE001 — unrecorded sends are retried when their lease expires
            log.exception("outbox: recording a batch failed")
        finally:
            self._recording.release()

    async def _push(self, message: store.OutboxMessage) -> Outcome:
        try:
            await self.delivery.push(message.channel, message.sender, from_body(message.body))
        except ChannelRateLimited as exc:
            pacer = self.pacers.get(message.channel)
            if pacer is not None:
                pacer.pause(exc.retry_after)
            return Outcome(message, "rate_limited", exc.retry_after)
        except ChannelBlocked:
            return Outcome(message, "blocked")
        except Exception as exc:  # noqa: BLE001 — any other failure is retried, then dead-lettered
            return Outcome(message, "error", error=type(exc).__name__)
        return Outcome(message, "sent")

    async def _record(self, session: AsyncSession, outcome: Outcome) -> None:
        message, kind = outcome.message, outcome.kind
        if kind == "paced":
            await store.mark_retry(session, message.id, error="paced", count_attempt=False,
                                   at=utcnow() + timedelta(seconds=outcome.delay))
        elif kind == "rate_limited":
            OUTBOX_FAILED.labels(message.channel, "rate_limited").inc()
            await store.mark_retry(session, message.id, error="rate limited", count_attempt=False,
                                   at=utcnow() + timedelta(seconds=outcome.delay))
        elif kind == "blocked":
            OUTBOX_FAILED.labels(message.channel, "blocked").inc()
            await store.mark_final(session, message.id, status="blocked", error="blocked by the customer")
            conversation_id = await store.conversation_id_for(session, message.channel, message.sender)
            if conversation_id is not None:
                await store.set_prefs(session, conversation_id, blocked=True)
        else:
            OUTBOX_FAILED.labels(message.channel, "error").inc()
            attempts = message.attempts + 1
            if attempts >= self.settings.outbox_max_attempts:
                await store.mark_final(session, message.id, status="dead", error=outcome.error)
                log.warning("outbox message %d dead after %d attempts (%s)", message.id, attempts,
                            outcome.error)
            else:
                await store.mark_retry(session, message.id, error=outcome.error,
                                       at=utcnow() + timedelta(seconds=backoff_seconds(attempts)))


@dataclass(frozen=True, slots=True)
class Outcome:
    message: store.OutboxMessage
    kind: str  # sent | paced | rate_limited | blocked | error
    delay: float = 0.0
    error: str = ""


SENDER = web.AppKey("outbox_sender", OutboxSender)


async def refresh_gauge(db: Database) -> None:
    async with db.begin() as session:
        counts = await store.counts(session)
    OUTBOX_PENDING.set(counts.get("pending", 0) + counts.get("sending", 0))
