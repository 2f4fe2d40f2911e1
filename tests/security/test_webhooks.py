"""Platform event signatures: missing, wrong, stale, future and good."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.security.webhooks import SignatureError, sign_platform_body, verify_platform_signature

SECRET = "s3cret"
BODY = json.dumps({"event_id": "e1", "type": "order.status_changed"}).encode()
NOW = 1_764_590_000


def _reason(**kw: object) -> str:
    args: dict[str, object] = {
        "secret": SECRET,
        "timestamp_header": str(NOW),
        "body": BODY,
        "signature_header": sign_platform_body(SECRET, NOW, BODY),
        "now": float(NOW),
    }
    args.update(kw)
    with pytest.raises(SignatureError) as err:
        verify_platform_signature(**args)  # type: ignore[arg-type]
    return err.value.reason


def test_good_signature_passes_with_datetime_or_seconds() -> None:
    sig = sign_platform_body(SECRET, NOW, BODY)
    assert len(sig) == 64 and int(sig, 16) >= 0
    verify_platform_signature(SECRET, str(NOW), BODY, sig, float(NOW))
    verify_platform_signature(
        SECRET, str(NOW), BODY, sig.upper(), datetime.fromtimestamp(NOW + 299, UTC)
    )
    verify_platform_signature(SECRET, str(NOW), BODY.decode(), sig, NOW - 299)


def test_missing_headers() -> None:
    assert _reason(timestamp_header=None) == "missing"
    assert _reason(signature_header="") == "missing"


def test_wrong_signature_secret_or_body() -> None:
    assert _reason(signature_header="0" * 64) == "bad_signature"
    assert _reason(signature_header=sign_platform_body("other", NOW, BODY)) == "bad_signature"
    assert _reason(body=BODY + b" ") == "bad_signature"
    # The timestamp is signed: moving it invalidates the signature.
    assert _reason(timestamp_header=str(NOW + 1)) == "bad_signature"
    assert _reason(timestamp_header="abc") == "bad_signature"
    assert _reason(signature_header="签名") == "bad_signature"


def test_stale_and_future_timestamps() -> None:
    old = NOW - 301
    assert (
        _reason(timestamp_header=str(old), signature_header=sign_platform_body(SECRET, old, BODY))
        == "stale"
    )
    future = NOW + 301
    assert (
        _reason(
            timestamp_header=str(future), signature_header=sign_platform_body(SECRET, future, BODY)
        )
        == "stale"
    )
    assert _reason(now=float(NOW + 60), max_age_s=30) == "stale"
