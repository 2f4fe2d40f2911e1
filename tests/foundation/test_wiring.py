"""Every intent in the routing table reaches real code, and every NLU intent has a route."""

from __future__ import annotations

import importlib

import pytest

from bot.handlers.registry import TABLE

NLU_INTENTS = [
    "greet", "goodbye", "thank", "affirm", "deny", "cancel", "help", "inform", "check_balance",
    "list_products", "buy_product", "redeem_product", "track_transaction", "transaction_history",
    "file_complaint", "complaint_status", "human_handoff", "notification_settings",
    "link_account", "out_of_scope", "faq",
]


@pytest.mark.parametrize("route", TABLE, ids=lambda r: r.intent)
def test_route_target_exists(route) -> None:  # type: ignore[no-untyped-def]
    for target in filter(None, (route.handler, route.task)):
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)) or route.task, target


def test_every_nlu_intent_is_routed_or_handled_by_the_engine() -> None:
    routed = {r.intent for r in TABLE}
    # cancel, help and inform are the engine's own (task control, menu, slot answers)
    missing = [i for i in NLU_INTENTS if i not in routed and i not in {"cancel", "help", "inform"}]
    assert missing == []


def test_cli_mounts_every_area() -> None:
    from typer.testing import CliRunner

    from bot.__main__ import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "chat", "sandbox", "nlu", "keys", "audit", "agent", "db"):
        assert command in result.output
