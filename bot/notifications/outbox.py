"""The transactional outbox API other areas use: enqueue in your own transaction, we deliver."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.notifications.render import to_body
from bot.store import notifications as store
from bot.types import Outgoing


async def enqueue(
    session: AsyncSession, *, channel: str, sender: str, message: Outgoing, category: str,
    dedupe_key: str | None = None, not_before: datetime | None = None,
) -> bool:
    """Add ``message`` for ``(channel, sender)`` in the caller's transaction.

    It is sent after commit by the outbox sender, with retries and the channel's rate limits;
    False when ``dedupe_key`` was used before (nothing added)."""
    return await store.add(session, channel=channel, sender=sender, category=category,
                           body=to_body(message), dedupe_key=dedupe_key, not_before=not_before)
