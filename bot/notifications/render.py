"""Turns one platform event into the customer's message, in their language, masked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.locales import money, shares, translate
from bot.security.masking import mask_text
from bot.types import Button, Lang, Outgoing

KNOWN_TYPES = ("order.status_changed", "complaint.updated", "risk.warning")


@dataclass(frozen=True, slots=True)
class Rendered:
    category: str  # orders | complaints | risk
    message: Outgoing


class UnknownEvent(ValueError):
    """An event type (or status) this bot does not know how to tell a customer."""


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except (InvalidOperation, ValueError):
        return None


def _payload_button(title: str, intent: str, entities: dict[str, str]) -> Button:
    return Button(title=title, payload=f"/{intent}{json.dumps(entities, ensure_ascii=False)}")


def render(event_type: str, payload: dict[str, Any], lang: Lang, product_names: dict[str, str]) -> Rendered:
    """Raise UnknownEvent for what we cannot render (the inbox acknowledges and logs it)."""
    t = lambda key, **kw: translate(lang, key, **kw)  # noqa: E731
    if event_type == "order.status_changed":
        order_id = str(payload.get("order_id", ""))
        code = str(payload.get("product", ""))
        product = product_names.get(code, code)
        status = str(payload.get("status", ""))
        side = "redeem" if payload.get("side") == "redeem" else "subscribe"
        amount = _decimal(payload.get("amount"))
        units = _decimal(payload.get("shares"))
        kwargs = {
            "order_id": order_id, "product": product,
            "amount": money(amount, lang) if amount is not None else "—",
            "shares": shares(units) if units is not None else "—",
        }
        button = _payload_button(t("notifications.button_track"), "track_transaction", {"order_id": order_id})
        if status == "failed":
            reason = mask_text(str(payload.get("reason") or t("notifications.failed_no_reason")))
            text = t("notifications.failed", reason=reason, **kwargs)
        else:
            key = f"notifications.{side}.{status}"
            try:
                text = t(key, **kwargs)
            except KeyError:
                raise UnknownEvent(f"order status {status!r}") from None
        return Rendered("orders", Outgoing(text=text, buttons=(button,)))
    if event_type == "complaint.updated":
        complaint_id = str(payload.get("complaint_id", ""))
        status = str(payload.get("status", ""))
        result = mask_text(str(payload.get("result") or ""))
        key = f"notifications.complaint.{status}"
        try:
            text = t(key, complaint_id=complaint_id, result=result, status=status)
        except KeyError:
            text = t("notifications.complaint.other", complaint_id=complaint_id, status=status)
        button = _payload_button(t("notifications.button_complaint"), "complaint_status",
                                 {"complaint_id": complaint_id})
        return Rendered("complaints", Outgoing(text=text, buttons=(button,)))
    if event_type == "risk.warning":
        detail = mask_text(str(payload.get("detail") or payload.get("code") or ""))
        return Rendered("risk", Outgoing(text=t("notifications.risk_warning", detail=detail)))
    raise UnknownEvent(f"event type {event_type!r}")


def to_body(message: Outgoing) -> dict[str, Any]:
    """The outbox's stored form of a message (JSON, encrypted at rest)."""
    return {"text": message.text, "buttons": [[b.title, b.payload] for b in message.buttons]}


def from_body(body: dict[str, Any]) -> Outgoing:
    return Outgoing(text=str(body.get("text", "")),
                    buttons=tuple(Button(title=t, payload=p) for t, p in body.get("buttons", [])))
