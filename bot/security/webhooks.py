"""Signatures of platform events: hex HMAC-SHA256 of ``timestamp + "." + body``, time-boxed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Literal

__all__ = ["SignatureError", "sign_platform_body", "verify_platform_signature"]

Reason = Literal["missing", "bad_signature", "stale"]


class SignatureError(Exception):
    """The request is not a fresh, authentic platform event. ``reason`` is machine-readable."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign_platform_body(secret: str | bytes, timestamp: int | str, body: bytes | str) -> str:
    """The signature the platform sends in ``X-Platform-Signature`` (tests and the sandbox)."""
    message = _as_bytes(str(timestamp)) + b"." + _as_bytes(body)
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_platform_signature(
    secret: str | bytes,
    timestamp_header: str | None,
    body: bytes | str,
    signature_header: str | None,
    now: datetime | float,
    max_age_s: int = 300,
) -> None:
    """Raise SignatureError unless the signature is valid and the timestamp within the window.

    The timestamp is checked in both directions: a far-future one would otherwise make a
    captured request replayable until that time. Replays inside the window are the inbox's
    job (unique event_id)."""
    if not timestamp_header or not signature_header:
        raise SignatureError("missing")
    ts_text = timestamp_header.strip()
    if not ts_text.isdigit() or len(ts_text) > 12:
        raise SignatureError("bad_signature")
    signature = signature_header.strip().lower()
    expected = sign_platform_body(secret, ts_text, body)
    # Compare before looking at the clock, in constant time, so timing tells nothing.
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise SignatureError("bad_signature")
    now_s = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(now_s - int(ts_text)) > max_age_s:
        raise SignatureError("stale")
