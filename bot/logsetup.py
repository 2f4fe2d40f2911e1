"""Logging: structlog JSON lines on stderr, every string masked and secret-named keys dropped."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.security.masking import mask_text

__all__ = ["configure_logging", "get_logger", "redact"]

# Keys whose values are secrets whatever they hold. "code" covers one-time and link codes.
_SECRET_KEY = re.compile(
    r"token|passw|secret|authori[sz]ation|cookie|api_?key|(^|_)otp|(^|_)code$|^code|credential",
    re.IGNORECASE,
)
# Names that match the pattern above but carry no secret (HTTP status, catalog codes...).
_NOT_SECRET = frozenset(
    {
        "status_code",
        "product_code",
        "error_code",
        "reason_code",
        "exit_code",
        "risk_code",
        "http_status_code",
        "code_path",
    }
)
# Third-party loggers that are chatty or could echo request details at INFO.
_QUIET = {
    "sqlalchemy": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "asyncio": logging.WARNING,
    "httpx": logging.WARNING,
    "telegram": logging.INFO,
    "aiohttp.access": logging.INFO,
    "hpack": logging.WARNING,
}
_MAX_DEPTH = 8
_HANDLER_NAME = "finbot-json"


# Secrets that travel inside strings: Telegram bot tokens in API URLs, bearer tokens,
# one-time download links (/files/<token>) and agent console session cookies in paths.
_SECRET_TEXT = [
    (re.compile(r"bot\d{5,}:[A-Za-z0-9_-]{20,}"), "bot[redacted]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"/files/[A-Za-z0-9_-]{12,}"), "/files/[redacted]"),
    (
        re.compile(r"(?i)([?&](?:token|code|secret|password|sig(?:nature)?)=)[^&\s\"']+"),
        r"\1[redacted]",
    ),
]


def _scrub_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return mask_text(text)


def _is_secret_key(key: str) -> bool:
    return key.lower() not in _NOT_SECRET and bool(_SECRET_KEY.search(key))


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"  # raw bytes may be a key, a body or a file
    if isinstance(value, Mapping):
        return {
            str(k): _scrub(v, depth + 1) for k, v in value.items() if not _is_secret_key(str(k))
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else (exceptions, dataclasses, Decimals) is rendered once and masked as text.
    return _scrub_text(str(value))


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: drop secret-named keys, mask phone/ID/card numbers everywhere."""
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        if _is_secret_key(key):
            continue
        out[key] = _scrub(value)
    return dict(out)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str | int = "INFO", *, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging (aiohttp, sqlalchemy, telegram) into one JSON stream.

    Exceptions are rendered as plain tracebacks (no local variables, which could hold
    secrets) and then masked like every other string. Calling it again replaces the handler."""
    numeric = level if isinstance(level, int) else logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    formatter = structlog.stdlib.ProcessorFormatter(
        # stdlib `extra={...}` fields become JSON fields (and are masked like the rest).
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, floor in _QUIET.items():
        logging.getLogger(name).setLevel(max(floor, numeric))
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
