"""Typed delivery errors every channel raises, so callers never import a channel's library."""

from __future__ import annotations

__all__ = [
    "ChannelBlocked",
    "ChannelError",
    "ChannelRateLimited",
    "ChannelUnavailable",
    "UnknownRecipient",
]


class ChannelError(Exception):
    """A message could not be delivered through a channel."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason


class ChannelBlocked(ChannelError):
    """The customer blocked the bot (Telegram 403): stop sending to this address."""


class ChannelRateLimited(ChannelError):
    """The channel asked us to slow down; retry after ``retry_after`` seconds."""

    def __init__(self, channel: str, retry_after: float) -> None:
        super().__init__(channel, f"rate limited, retry after {retry_after:g}s")
        self.retry_after = retry_after


class ChannelUnavailable(ChannelError):
    """A transient failure (network, channel not configured): retrying later may work."""


class UnknownRecipient(ChannelError):
    """The address is not valid for this channel (e.g. not a Telegram chat id)."""
