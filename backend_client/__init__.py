"""Thin client of the platform API; the contract is backend_client/openapi.yaml."""

from backend_client.client import PlatformClient
from backend_client.errors import (
    AccountNotVerified,
    ChallengeFailed,
    Conflict,
    InsufficientFunds,
    InvalidRequest,
    LinkCodeInvalid,
    NotFound,
    OutsideLimits,
    PlatformError,
    PlatformUnavailable,
    RiskMismatch,
)

__all__ = [
    "AccountNotVerified",
    "ChallengeFailed",
    "Conflict",
    "InsufficientFunds",
    "InvalidRequest",
    "LinkCodeInvalid",
    "NotFound",
    "OutsideLimits",
    "PlatformClient",
    "PlatformError",
    "PlatformUnavailable",
    "RiskMismatch",
]
