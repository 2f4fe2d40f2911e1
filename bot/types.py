"""Channel-neutral message types: every channel translates to and from these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Lang = Literal["zh", "en"]
ChannelName = Literal["rest", "webchat", "telegram", "terminal"]


@dataclass(frozen=True, slots=True)
class Button:
    """A clickable choice; sending ``payload`` back as a message acts as the click."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file for the customer (history export). Channels send it as a document or a link."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """One customer message as the engine sees it, whatever the channel."""

    channel: ChannelName
    sender: str  # channel-specific address: REST sender id, Telegram chat id, web chat id
    text: str
    # The channel's own message id, when it has one (Telegram: to delete a one-time code).
    message_id: str | None = None
    # Extra channel facts (e.g. {"start_param": "..."} for Telegram /start deep links).
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One bot (or agent) message to the customer."""

    text: str
    buttons: tuple[Button, ...] = ()
    attachment: Attachment | None = None
    # Set by the engine when the customer's message held a secret (one-time code) that the
    # channel should delete from the chat history where it can (Telegram).
    delete_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """Where a conversation lives: used to push messages later (agent replies, notices)."""

    channel: ChannelName
    sender: str
