"""Thin async client of the platform API (openapi.yaml): one typed method per operation."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import quote as urlquote

import aiohttp

from backend_client.errors import PlatformError, PlatformUnavailable, error_for
from backend_client.models import (
    Challenge,
    ChallengeVerification,
    Clock,
    Complaint,
    ComplaintPage,
    Customer,
    LinkResult,
    Order,
    OrderPage,
    Portfolio,
    Product,
    Quote,
)

__all__ = ["PlatformClient"]


def _p(segment: str) -> str:
    """Path segments come from chat input: never let them change the path."""
    return urlquote(segment, safe="")


def _money(value: Decimal | int | str | None) -> str | None:
    return None if value is None else str(value)


class PlatformClient:
    """Talks to the platform at `base_url` (e.g. http://127.0.0.1:8090).

    timeout: seconds per attempt (the platform promises answers within 2 s).
    retries: extra attempts, with backoff, for GETs, quotes and keyed orders only — never for
    operations whose repetition would be visible (SMS codes, verification, link codes).
    Use `async with PlatformClient(...) as c:` or `await c.start()` / `await c.close()`.
    """

    def __init__(self, base_url: str, timeout: float = 2.0, retries: int = 2) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout)
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> PlatformClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- transport
    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        retry: bool,
    ) -> tuple[int, Any]:
        await self.start()
        assert self._session is not None  # narrowed for mypy; start() always sets it
        attempts = 1 + (self.retries if retry else 0)
        last: PlatformError | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(min(0.1 * 2 ** (attempt - 1), 1.0))
            try:
                async with self._session.request(
                    method,
                    self.base_url + path,
                    json=body,
                    params=params,
                    headers=headers,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = PlatformUnavailable("unavailable", type(exc).__name__, 0)
                continue
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = None
            if status >= 500 or (data is None and status >= 400):
                last = PlatformUnavailable("unavailable", f"HTTP {status}", status)
                if status >= 500:
                    continue
                raise last
            if status >= 400:
                err = (data or {}).get("error") if isinstance(data, dict) else None
                if not isinstance(err, dict):
                    raise PlatformError("unknown_error", f"HTTP {status}", status)
                details = {k: v for k, v in err.items() if k not in ("code", "message")}
                raise error_for(status, str(err.get("code")), str(err.get("message", "")), details)
            return status, data
        assert last is not None
        raise last

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return (await self._request("GET", path, params=params, retry=True))[1]

    # ---------------------------------------------------------------- clock and catalog
    async def get_clock(self) -> Clock:
        return Clock.from_json(await self._get("/api/v1/clock"))

    async def list_products(self) -> list[Product]:
        data = await self._get("/api/v1/products")
        return [Product.from_json(p) for p in data["items"]]

    async def get_product(self, code: str) -> Product:
        return Product.from_json(await self._get(f"/api/v1/products/{_p(code)}"))

    # ---------------------------------------------------------------- customers
    async def redeem_link_code(self, code: str) -> LinkResult:
        """Single use: not retried (a retry after a lost answer would say link_code_used)."""
        _, data = await self._request(
            "POST", "/api/v1/link-codes/redeem", body={"code": code}, retry=False
        )
        return LinkResult.from_json(data)

    async def get_customer(self, customer_id: str) -> Customer:
        return Customer.from_json(await self._get(f"/api/v1/customers/{_p(customer_id)}"))

    async def get_portfolio(self, customer_id: str) -> Portfolio:
        return Portfolio.from_json(
            await self._get(f"/api/v1/customers/{_p(customer_id)}/portfolio")
        )

    # ---------------------------------------------------------------- trading
    async def quote(
        self,
        customer_id: str,
        side: str,
        product: str,
        amount: Decimal | None = None,
        shares: Decimal | None = None,
        all: bool = False,
    ) -> Quote:
        """Fee, estimate, suitability and dates for an order; changes nothing (so retried)."""
        body = _order_body(side, product, amount, shares, all)
        _, data = await self._request(
            "POST", f"/api/v1/customers/{_p(customer_id)}/quotes", body=body, retry=True
        )
        return Quote.from_json(data)

    async def create_challenge(
        self,
        customer_id: str,
        action: str,
        idempotency_key: str,
        product: str | None = None,
        amount: Decimal | None = None,
        shares: Decimal | None = None,
        all: bool = False,
        lang: str = "zh",
    ) -> Challenge:
        """Sends a 6-digit SMS code bound to this action, product, amount and key."""
        body: dict[str, Any] = {"action": action, "idempotency_key": idempotency_key, "lang": lang}
        if product is not None:
            body["product"] = product
        if amount is not None:
            body["amount"] = _money(amount)
        if shares is not None:
            body["shares"] = _money(shares)
        if all:
            body["all"] = True
        _, data = await self._request(
            "POST", f"/api/v1/customers/{_p(customer_id)}/challenges", body=body, retry=False
        )
        return Challenge.from_json(data)

    async def verify_challenge(self, challenge_id: str, code: str) -> ChallengeVerification:
        _, data = await self._request(
            "POST",
            f"/api/v1/challenges/{_p(challenge_id)}/verify",
            body={"code": code},
            retry=False,
        )
        return ChallengeVerification.from_json(data)

    async def place_order(
        self,
        customer_id: str,
        idempotency_key: str,
        side: str,
        product: str,
        challenge_id: str,
        amount: Decimal | None = None,
        shares: Decimal | None = None,
        all: bool = False,
    ) -> Order:
        """Places the order (or returns the original one for a repeated key); retried safely."""
        body = _order_body(side, product, amount, shares, all)
        body["challenge_id"] = challenge_id
        _, data = await self._request(
            "POST",
            f"/api/v1/customers/{_p(customer_id)}/orders",
            body=body,
            headers={"Idempotency-Key": idempotency_key},
            retry=True,
        )
        return Order.from_json(data)

    async def list_orders(
        self,
        customer_id: str,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        product_type: str | None = None,
        product: str | None = None,
        status: str | None = None,
        side: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> OrderPage:
        """Orders newest first; dates are Asia/Shanghai calendar days, both inclusive."""
        params: dict[str, str] = {"page": str(page), "page_size": str(page_size)}
        for key, value in (
            ("from", date_from.isoformat() if date_from else None),
            ("to", date_to.isoformat() if date_to else None),
            ("product_type", product_type),
            ("product", product),
            ("status", status),
            ("side", side),
        ):
            if value is not None:
                params[key] = value
        return OrderPage.from_json(
            await self._get(f"/api/v1/customers/{_p(customer_id)}/orders", params)
        )

    async def get_order(self, customer_id: str, order_id: str) -> Order:
        return Order.from_json(
            await self._get(f"/api/v1/customers/{_p(customer_id)}/orders/{_p(order_id)}")
        )

    # ---------------------------------------------------------------- complaints
    async def file_complaint(
        self,
        customer_id: str,
        category: str,
        description: str,
        order_id: str | None = None,
    ) -> Complaint:
        """Not retried: a lost answer must not open two tickets."""
        body: dict[str, Any] = {"category": category, "description": description}
        if order_id:
            body["order_id"] = order_id
        _, data = await self._request(
            "POST", f"/api/v1/customers/{_p(customer_id)}/complaints", body=body, retry=False
        )
        return Complaint.from_json(data)

    async def list_complaints(self, customer_id: str) -> ComplaintPage:
        return ComplaintPage.from_json(
            await self._get(f"/api/v1/customers/{_p(customer_id)}/complaints")
        )

    async def get_complaint(self, customer_id: str, complaint_id: str) -> Complaint:
        return Complaint.from_json(
            await self._get(
                f"/api/v1/customers/{_p(customer_id)}/complaints/{_p(complaint_id)}"
            )
        )


def _order_body(
    side: str,
    product: str,
    amount: Decimal | None,
    shares: Decimal | None,
    all_: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {"side": side, "product": product}
    if amount is not None:
        body["amount"] = _money(amount)
    if shares is not None:
        body["shares"] = _money(shares)
    if all_:
        body["all"] = True
    return body
