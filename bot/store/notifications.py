"""Tables and queries for the notifications area."""

from bot.store.db import Base  # noqa: F401
