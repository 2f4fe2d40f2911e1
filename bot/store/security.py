"""Tables and queries for the security area."""

from bot.store.db import Base  # noqa: F401
