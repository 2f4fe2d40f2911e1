"""Tables and queries for the conversations area."""

from bot.store.db import Base  # noqa: F401
