"""Logs: JSON lines, numbers masked in every field (nested too), secrets dropped, no locals."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from bot.logsetup import configure_logging, get_logger

PHONE = "13812345678"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    configure_logging("DEBUG", stream=buf)
    yield buf
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "finbot-json":
            root.removeHandler(handler)
    structlog.reset_defaults()


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_phone_inside_a_nested_field_is_masked(captured: io.StringIO) -> None:
    get_logger("test").info(
        f"customer {PHONE} linked",
        profile={"contact": {"phones": [f"+86 {PHONE}"]}, "id": "11010519491231002X"},
        order_id="D2026112500",
        amount="50000.00",
    )
    (line,) = _lines(captured)
    assert PHONE not in captured.getvalue() and "11010519491231002X" not in captured.getvalue()
    assert line["event"] == "customer 138****5678 linked"
    assert line["profile"] == {
        "contact": {"phones": ["+86 138****5678"]},
        "id": "**************002X",
    }
    assert line["order_id"] == "D2026112500" and line["amount"] == "50000.00"
    assert line["level"] == "info" and "timestamp" in line


def test_secret_named_keys_are_dropped(captured: io.StringIO) -> None:
    get_logger("test").warning(
        "login",
        token="tok-abc",
        password="hunter2",
        code="482913",
        link_code="7KQ4M2XD",
        headers={"Authorization": "Bearer xyz", "Cookie": "s=1", "Accept": "json"},
        client_secret="zzz",
        status_code=401,
    )
    text = captured.getvalue()
    for secret in ("tok-abc", "hunter2", "482913", "7KQ4M2XD", "Bearer xyz", "s=1", "zzz"):
        assert secret not in text
    (line,) = _lines(captured)
    assert line["headers"] == {"Accept": "json"} and line["status_code"] == 401


def test_stdlib_loggers_go_through_the_same_pipeline(captured: io.StringIO) -> None:
    logging.getLogger("aiohttp.server").error("request from %s failed", PHONE)
    logging.getLogger("telegram.ext").warning("chat 6222021234567890 blocked")
    logging.getLogger("bot.dialogue").error(
        "handler failed", extra={"conversation_id": 7, "who": f"+86{PHONE}", "token": "t0k"}
    )
    lines = _lines(captured)
    assert [line["logger"] for line in lines] == ["aiohttp.server", "telegram.ext", "bot.dialogue"]
    assert lines[2]["conversation_id"] == 7 and lines[2]["who"] == "+86138****5678"
    assert "token" not in lines[2] and "t0k" not in captured.getvalue()
    assert lines[0]["event"] == "request from 138****5678 failed"
    assert lines[1]["event"] == "chat **** **** **** 7890 blocked"


def test_exceptions_are_rendered_masked_and_without_local_variables(captured: io.StringIO) -> None:
    def fail() -> None:
        id_number = "11010519491231002X"  # a local: must not appear
        raise ValueError(f"cannot parse card 6222021234567890123 for {PHONE} ({len(id_number)})")

    try:
        fail()
    except ValueError:
        get_logger("test").exception("handler failed")
    text = captured.getvalue()
    (line,) = _lines(captured)
    assert "Traceback" in str(line["exception"])
    assert "**** **** **** 0123" in str(line["exception"])
    assert PHONE not in text and "6222021234567890123" not in text
    assert "11010519491231002X" not in text and "id_number =" not in text


def test_tokens_inside_strings_are_redacted(captured: io.StringIO) -> None:
    token = "123456789:AAHk7pQ2xYzW3vBnM4cD5eF6gH7iJ8kL9mN"
    logging.getLogger("httpx").warning(
        f"POST https://api.telegram.org/bot{token}/sendMessage failed"
    )
    logging.getLogger("aiohttp.access").info(
        '"GET /files/kmcZPJMf0f2SzhvlJ-pAkUZjzSXDeRaM HTTP/1.1" 200'
    )
    get_logger("test").info(
        "upstream said", detail="Authorization: Bearer eyJhbGciOi.J9x", url="/cb?code=482913&x=1"
    )
    text = captured.getvalue()
    for secret in (token, "kmcZPJMf0f2SzhvlJ-pAkUZjzSXDeRaM", "eyJhbGciOi.J9x", "482913"):
        assert secret not in text
    assert "bot[redacted]/sendMessage" in text and "/files/[redacted]" in text
    assert "/cb?code=[redacted]&x=1" in text
