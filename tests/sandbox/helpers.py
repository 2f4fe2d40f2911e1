"""Raw-HTTP helpers for sandbox tests: step-up and order placement in one call."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.sandbox import SandboxServer


async def call(sb: SandboxServer, method: str, path: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with sb.http.request(method, sb.base_url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def verified_challenge(sb: SandboxServer, customer: dict[str, Any], key: str,
                             **order: Any) -> str:
    action = order.get("side", "subscribe")
    body = {"action": action, "idempotency_key": key,
            **{k: v for k, v in order.items() if k != "side"}}
    status, ch = await call(sb, "POST", f"/api/v1/customers/{customer['customer_id']}/challenges",
                            body)
    assert status == 201, ch
    code = await sb.last_code(customer["phone"])
    status, out = await call(sb, "POST", f"/api/v1/challenges/{ch['challenge_id']}/verify",
                             {"code": code})
    assert status == 200, out
    return str(ch["challenge_id"])


async def place(sb: SandboxServer, customer: dict[str, Any], key: str | None = None,
                **order: Any) -> tuple[int, Any]:
    """Challenge, verify and place `order` ({"side", "product", "amount"|"shares"|"all"})."""
    key = key or uuid.uuid4().hex
    ch = await verified_challenge(sb, customer, key, **order)
    return await call(sb, "POST", f"/api/v1/customers/{customer['customer_id']}/orders",
                      {**order, "challenge_id": ch}, {"Idempotency-Key": key})
