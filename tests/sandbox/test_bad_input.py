"""Bad input to the sandbox platform always gets a 4xx with a machine-readable code."""

from __future__ import annotations

import pytest

from tests.support.sandbox import SandboxServer

pytestmark = pytest.mark.timeout(60)

BAD_AMOUNTS = ["-100", "0", "NaN", "Infinity", "1.001", "abc", "", True, None, [], {"x": 1},
               "1e30", -5, 1.005]


async def _status(sb: SandboxServer, method: str, path: str, **kw: object) -> tuple[int, dict]:
    async with sb.http.request(method, sb.base_url + path, **kw) as r:  # type: ignore[arg-type]
        body = await r.json(content_type=None)
        return r.status, body


async def test_bad_amounts_never_5xx(sandbox: SandboxServer):
    c = await sandbox.create_customer()
    cid = c["customer_id"]
    for amount in BAD_AMOUNTS:
        for path in (f"/api/v1/customers/{cid}/quotes", f"/api/v1/customers/{cid}/orders"):
            status, body = await _status(
                sandbox, "POST", path,
                json={"side": "subscribe", "product": "BOND01", "amount": amount,
                      "challenge_id": "ch_x"},
                headers={"Idempotency-Key": "k" * 16})
            assert 400 <= status < 500, (amount, status, body)
            assert body["error"]["code"] == "validation_error", (amount, body)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"', b"null"])
async def test_bad_json_bodies_are_400(sandbox: SandboxServer, raw: bytes):
    c = await sandbox.create_customer()
    for path in (f"/api/v1/customers/{c['customer_id']}/quotes", "/api/v1/link-codes/redeem",
                 f"/api/v1/customers/{c['customer_id']}/complaints", "/sandbox/customers",
                 "/sandbox/clock"):
        status, body = await _status(sandbox, "POST", path, data=raw,
                                     headers={"Content-Type": "application/json"})
        assert status == 400 and body["error"]["code"] in ("invalid_json", "validation_error")


async def test_ten_megabyte_body_is_413(sandbox: SandboxServer):
    status, body = await _status(sandbox, "POST", "/api/v1/link-codes/redeem",
                                 data=b'{"code": "' + b"A" * (10 * 1024 * 1024) + b'"}',
                                 headers={"Content-Type": "application/json"})
    assert (status, body["error"]["code"]) == (413, "body_too_large")


async def test_missing_and_wrong_fields(sandbox: SandboxServer):
    c = await sandbox.create_customer()
    cid = c["customer_id"]
    cases = [
        ("POST", f"/api/v1/customers/{cid}/quotes", {"product": "BOND01", "amount": "100"}),
        ("POST", f"/api/v1/customers/{cid}/quotes", {"side": "buy", "product": "BOND01"}),
        ("POST", f"/api/v1/customers/{cid}/quotes", {"side": "redeem", "product": "BOND01"}),
        ("POST", f"/api/v1/customers/{cid}/quotes",
         {"side": "redeem", "product": "BOND01", "shares": "1", "all": True}),
        ("POST", f"/api/v1/customers/{cid}/quotes",
         {"side": "subscribe", "product": 42, "amount": "100"}),
        ("POST", f"/api/v1/customers/{cid}/challenges", {"action": "transfer"}),
        ("POST", f"/api/v1/customers/{cid}/challenges", {"action": "view"}),
        ("POST", "/api/v1/challenges/ch_nope/verify", {"code": "123456"}),
        ("POST", "/api/v1/link-codes/redeem", {"code": 12345678}),
        ("POST", "/api/v1/link-codes/redeem", {}),
        ("POST", f"/api/v1/customers/{cid}/complaints", {"category": "weather",
                                                         "description": "x"}),
        ("POST", f"/api/v1/customers/{cid}/complaints", {"category": "product_use",
                                                         "description": "x" * 2001}),
        ("GET", f"/api/v1/customers/{cid}/orders?page=0", None),
        ("GET", f"/api/v1/customers/{cid}/orders?page_size=abc", None),
        ("GET", f"/api/v1/customers/{cid}/orders?from=yesterday", None),
        ("GET", f"/api/v1/customers/{cid}/orders/D0", None),
        ("GET", "/api/v1/customers/nobody", None),
        ("GET", "/api/v1/customers/nobody/portfolio", None),
        ("GET", "/api/v1/products/NOPE", None),
        ("GET", "/api/v1/nothing-here", None),
        ("DELETE", "/api/v1/products", None),
        ("POST", "/sandbox/customers", {"name": "x", "phone": "abc"}),
        ("POST", "/sandbox/customers", {"name": "x", "phone": "13800000000",
                                        "holdings": [{"product": "NOPE", "shares": "1"}]}),
        ("POST", "/sandbox/customers", {"name": "x", "phone": "13800000000",
                                        "risk_tolerance": "C9"}),
        ("POST", "/sandbox/clock", {"now": "tomorrow"}),
        ("POST", "/sandbox/clock", {"now": "2026-11-25T10:00:00"}),
        ("GET", "/sandbox/sms", None),
    ]
    for method, path, body in cases:
        status, out = await _status(sandbox, method, path, json=body)
        assert 400 <= status < 500, (method, path, body, status, out)
        assert isinstance(out["error"]["code"], str) and out["error"]["message"], out
