"""Customers switch notification categories in the chat; risk warnings cannot be switched off."""

from __future__ import annotations

from pathlib import Path

from bot.app import DB
from bot.store import notifications as store
from tests.support.sandbox import running_sandbox


async def test_switch_categories_and_quiet_hours_by_buttons(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as sandbox:
        bot = await bot_server(backend_url=sandbox.base_url)
        customer = await sandbox.create_customer(name="王芳", risk_tolerance="C2")
        await bot.say("wf", f"link {customer['link_code']}")

        menu = await bot.say("wf", "/notification_settings")
        text = " ".join(r["text"] for r in menu)
        payloads = [b["payload"] for r in menu for b in r.get("buttons", [])]
        assert "Order updates" in text and any('"orders"' in p for p in payloads)
        assert not any('"risk"' in p for p in payloads), "risk warnings must not be offered as a switch"

        off = next(p for p in payloads if '"orders"' in p)
        reply = await bot.say("wf", off)
        assert "Order updates turned off" in reply[0]["text"]
        await bot.say("wf", '/notification_settings{"category": "marketing", "enabled": "true"}')
        reply = await bot.say("wf", '/notification_settings{"category": "risk", "enabled": "false"}')
        assert "keep them on" in reply[0]["text"]
        await bot.say("wf", '/notification_settings{"category": "quiet", "enabled": "true"}')

        async with bot.app[DB].begin() as session:
            conv_id = await store.conversation_id_for(session, "rest", "wf")
            assert conv_id is not None
            prefs = await store.get_prefs(session, conv_id)
        assert prefs.wants("orders") is False
        assert prefs.wants("marketing") is True  # opted in, with the consent text
        assert prefs.wants("risk") is True
        assert prefs.quiet_hours is True


async def test_unlinked_chat_is_asked_to_link_first(bot_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_sandbox(tmp_dir=tmp_path) as sandbox:
        bot = await bot_server(backend_url=sandbox.base_url)
        reply = await bot.say("stranger", '/notification_settings{"category": "orders", "enabled": "false"}')
        assert "绑定" in " ".join(r["text"] for r in reply) or "link" in " ".join(r["text"] for r in reply).lower()
