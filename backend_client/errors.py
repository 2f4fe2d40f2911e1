"""Typed errors of the platform API: one class per family of `error.code`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccountNotVerified",
    "ChallengeFailed",
    "Conflict",
    "InsufficientFunds",
    "InvalidRequest",
    "LinkCodeInvalid",
    "NotFound",
    "OutsideLimits",
    "PlatformError",
    "PlatformUnavailable",
    "RiskMismatch",
    "error_for",
]


class PlatformError(Exception):
    """An answer of the platform that is not a success. `code` is machine-readable."""

    def __init__(
        self, code: str, message: str = "", status: int = 0, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} ({status}): {message}" if status else f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details: dict[str, Any] = dict(details or {})


class PlatformUnavailable(PlatformError):
    """Connection refused, timeout or 5xx: the platform did not answer usefully."""


class InvalidRequest(PlatformError):
    """Malformed request (400/413/422 validation_error): a bug or bad customer input."""


class NotFound(PlatformError):
    """Unknown customer, product, order or complaint (also another customer's order)."""


class RiskMismatch(PlatformError):
    """The product's risk level is above the customer's tolerance (details: levels)."""


class OutsideLimits(PlatformError):
    """below_minimum, above_order_limit or above_daily_limit (details: minimum / limit)."""


class AccountNotVerified(PlatformError):
    """customer_not_verified: real-name verification and a bound card are needed to trade."""


class InsufficientFunds(PlatformError):
    """insufficient_cash or insufficient_shares (details: available)."""


class ChallengeFailed(PlatformError):
    """Step-up failed: wrong_code (attempts_left), expired, already_used, locked (locked_until),
    or an order's challenge_* problem (not_found, not_verified, expired, used, mismatch)."""


class LinkCodeInvalid(PlatformError):
    """link_code_unknown, link_code_used or link_code_expired."""


class Conflict(PlatformError):
    """idempotency_conflict: the key was used before with a different order."""


_BY_CODE: dict[str, type[PlatformError]] = {
    "not_found": NotFound,
    "unknown_product": NotFound,
    "risk_mismatch": RiskMismatch,
    "customer_not_verified": AccountNotVerified,
    "below_minimum": OutsideLimits,
    "above_order_limit": OutsideLimits,
    "above_daily_limit": OutsideLimits,
    "insufficient_cash": InsufficientFunds,
    "insufficient_shares": InsufficientFunds,
    "wrong_code": ChallengeFailed,
    "expired": ChallengeFailed,
    "already_used": ChallengeFailed,
    "locked": ChallengeFailed,
    "challenge_not_found": ChallengeFailed,
    "challenge_not_verified": ChallengeFailed,
    "challenge_expired": ChallengeFailed,
    "challenge_used": ChallengeFailed,
    "challenge_mismatch": ChallengeFailed,
    "link_code_unknown": LinkCodeInvalid,
    "link_code_used": LinkCodeInvalid,
    "link_code_expired": LinkCodeInvalid,
    "idempotency_conflict": Conflict,
}


def error_for(status: int, code: str, message: str, details: dict[str, Any]) -> PlatformError:
    """The typed error for an error body; unknown codes fall back by HTTP status."""
    cls = _BY_CODE.get(code)
    if cls is None:
        if status >= 500:
            cls = PlatformUnavailable
        elif status == 404:
            cls = NotFound
        elif status in (400, 413, 415, 422):
            cls = InvalidRequest
        else:
            cls = PlatformError
    return cls(code, message, status, details)
