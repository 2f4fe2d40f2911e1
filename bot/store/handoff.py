"""Tables and queries for the handoff area."""

from bot.store.db import Base  # noqa: F401
