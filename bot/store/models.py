"""Imports every area's tables so `Base.metadata` (and Alembic) sees the whole schema."""

from bot.store import channels, conversations, handoff, notifications, security  # noqa: F401
from bot.store.db import Base

__all__ = ["Base"]
